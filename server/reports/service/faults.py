"""Alarm and fault records (告警与故障记录) over a range of local days: the tenants' balance
alarms (the alarm service's records, listed by `metering.service.alarm_records`), the
readings held for review as implausible (`metering.service.held`), and the meter commands
that failed or expired (the durable command service's rows) — with a count per day of each
for the chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from server.core.paging import Paging
from server.ledger.sql import fetch, in_list
from server.metering.models import CommandStatus
from server.metering.service.alarm_records import AlarmFilter, AlarmRow, list_alarms
from server.metering.service.devices.meter_views import COMMAND_STATUS_LABELS, OP_LABELS
from server.metering.service.held import HeldFilter, HeldRow, list_held
from server.metering.vocabulary import MeterKind
from server.reports.periods import local_start
from server.reports.service.common import as_time, conn

MAX_DAYS = 92
SERIES = {"alarms": "余额告警", "held": "异常读数", "commands": "指令失败"}


@dataclass(frozen=True, slots=True)
class FailedCommand:
    id: int
    at: datetime
    site: str
    meter: str
    place: str
    op: str
    status: str
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class FaultReport:
    since: date
    until: date
    days: list[str]
    per_day: dict[str, list[int]]  # SERIES key → count per day
    alarms: list[AlarmRow]
    held: list[HeldRow]
    commands: list[FailedCommand]


async def fault_report(
    site_ids: Sequence[int], since: date, until: date, tz: ZoneInfo
) -> FaultReport:
    if until < since:
        raise ValueError("结束日期早于开始日期")
    if (until - since).days + 1 > MAX_DAYS:
        raise ValueError(f"最多 {MAX_DAYS} 天")
    start, end = local_start(since, tz), local_start(until + timedelta(days=1), tz)
    every = Paging.everything()
    alarms = (await list_alarms(site_ids, every, AlarmFilter(start=since, end=until), tz=tz)).items
    held_filter = HeldFilter(status="", held_from=start, held_before=end)
    held = (await list_held(site_ids, every, held_filter)).items
    commands = await _failed_commands(site_ids, start, end)
    days = [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    per_day = {key: [0] * len(days) for key in SERIES}
    for key, times in (("alarms", [a.created_at for a in alarms]),
                       ("held", [h.created_at for h in held]),
                       ("commands", [c.at for c in commands])):  # fmt: skip
        for at in times:
            i = index.get(at.astimezone(tz).date().isoformat())
            if i is not None:
                per_day[key][i] += 1
    return FaultReport(since, until, days, per_day, list(alarms), list(held), commands)


async def _failed_commands(
    site_ids: Sequence[int], start: datetime, end: datetime
) -> list[FailedCommand]:
    if not site_ids:
        return []
    c = conn()
    sites, params = in_list(c, "m.site_id", list(site_ids), 5, "int")
    rows = await fetch(
        c,
        "SELECT mc.id, mc.op, mc.status, mc.attempts, mc.last_error, mc.finished_at, m.kind,"
        " m.address, s.name AS site, b.name AS building, f.name AS floor, r.name AS room"
        " FROM meter_command mc JOIN meter m ON m.id = mc.meter_id JOIN site s ON s.id = m.site_id"
        " LEFT JOIN room r ON r.id = m.room_id LEFT JOIN floor f ON f.id = r.floor_id"
        " LEFT JOIN building b ON b.id = f.building_id"
        " WHERE mc.status IN ($3, $4) AND mc.finished_at >= $1 AND mc.finished_at < $2"
        f" AND {sites} ORDER BY mc.finished_at DESC, mc.id DESC",
        [start, end, CommandStatus.FAILED.value, CommandStatus.EXPIRED.value, *params],
    )
    return [
        FailedCommand(
            int(r["id"]), as_time(r["finished_at"]), r["site"], r["address"],  # type: ignore[arg-type]
            " ".join(p for p in (r["building"], r["floor"], r["room"]) if p),
            _op_label(str(r["op"]), str(r["kind"])),
            COMMAND_STATUS_LABELS.get(CommandStatus(r["status"]), str(r["status"])),
            int(r["attempts"]), r["last_error"] or "",
        )
        for r in rows
    ]  # fmt: skip


def _op_label(op: str, kind: str) -> str:
    label = next((v for k, v in OP_LABELS.items() if k.value == op), op)
    if "/" in label:  # 跳闸/关阀: the electricity word or the water word
        label = label.split("/")[kind == MeterKind.WATER.value]
    return label
