"""The device reports: meters offline longer than N days (离线仪表) and the meter commands'
success rate per gateway (指令成功率). Reads only; the collector keeps `meter.online` and
`last_reading_at`, the durable command service (`server.metering.service.commands`) the
command rows and their states."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from server.ledger.sql import fetch, in_list
from server.metering.models import CommandStatus, MeterStatus
from server.metering.service.devices.meter_views import COMMAND_STATUS_LABELS, OP_LABELS
from server.metering.vocabulary import KIND_LABELS
from server.reports.service.common import as_time, conn

__all__ = ["COMMAND_STATUS_LABELS", "KIND_LABELS", "OP_LABELS"]


@dataclass(frozen=True, slots=True)
class OfflineMeter:
    id: int
    address: str
    kind: str
    site: str
    place: str  # building floor room, '' for a master or common-area meter
    account: str  # number and tenant, '' when vacant
    gateway: str
    last_reading_at: datetime | None
    since: datetime | None  # the last reading, or the installation when never read

    def days(self, now: datetime) -> int | None:
        return None if self.since is None else max(0, (now - self.since).days)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class OfflineReport:
    days: int
    meters: list[OfflineMeter]  # the longest offline first
    by_gateway: dict[str, int]  # how many per gateway (the chart)


async def offline_meters(
    site_ids: Sequence[int], *, days: int, now: datetime, kind: str = ""
) -> OfflineReport:
    """Active meters that are offline and have not been read for at least `days` days."""
    if not site_ids:
        return OfflineReport(days, [], {})
    c = conn()
    sites, params = in_list(c, "m.site_id", list(site_ids), 3, "int")
    where = [sites]
    if kind:
        params.append(kind)
        where.append(f"m.kind = ${2 + len(params)}")
    rows = await fetch(
        c,
        "SELECT m.id, m.address, m.kind, m.last_reading_at, m.installed_at, s.name AS site,"
        " b.name AS building, f.name AS floor, r.name AS room, a.number, a.tenant_name,"
        " g.name AS gateway, g.code AS gateway_code FROM meter m JOIN site s ON s.id = m.site_id"
        " LEFT JOIN room r ON r.id = m.room_id LEFT JOIN floor f ON f.id = r.floor_id"
        " LEFT JOIN building b ON b.id = f.building_id LEFT JOIN account a ON a.id = m.account_id"
        " LEFT JOIN gateway g ON g.id = m.gateway_id"
        f" WHERE m.status = $1 AND NOT m.online AND {' AND '.join(where)}"
        " AND COALESCE(m.last_reading_at, m.installed_at, $2) <= $2",
        [MeterStatus.ACTIVE.value, now - timedelta(days=days), *params],
    )
    meters = [
        OfflineMeter(
            int(r["id"]), r["address"], str(r["kind"]), r["site"],
            " ".join(p for p in (r["building"], r["floor"], r["room"]) if p),
            " ".join(p for p in (r["number"], r["tenant_name"]) if p),
            r["gateway"] or r["gateway_code"] or "（无网关）", as_time(r["last_reading_at"]),
            as_time(r["last_reading_at"] or r["installed_at"]),
        )
        for r in rows
    ]  # fmt: skip
    far = datetime.min.replace(tzinfo=now.tzinfo)
    meters.sort(key=lambda m: (m.since or far, m.site, m.address))
    by_gateway: dict[str, int] = {}
    for m in meters:
        by_gateway[m.gateway] = by_gateway.get(m.gateway, 0) + 1
    return OfflineReport(days, meters, dict(sorted(by_gateway.items(), key=lambda kv: -kv[1])))


_DONE = (CommandStatus.ACKED, CommandStatus.FAILED, CommandStatus.EXPIRED)


@dataclass
class GatewayRate:
    gateway: str
    site: str
    online: bool | None  # None: meters without a gateway
    counts: dict[str, int] = field(default_factory=dict)  # status → commands

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in _DONE)

    @property
    def rate_pct(self) -> Decimal | None:
        """Acknowledged of the finished commands, in percent to 0.1 (None: none finished)."""
        if not self.finished:
            return None
        pct = Decimal(self.counts.get(CommandStatus.ACKED.value, 0) * 100) / self.finished
        return pct.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class CommandRates:
    start: datetime
    end: datetime
    gateways: list[GatewayRate]
    total: GatewayRate
    errors: list[tuple[str, int]]  # the most frequent last errors of failed commands


async def command_rates(
    site_ids: Sequence[int], start: datetime, end: datetime, *, op: str = ""
) -> CommandRates:
    """Commands created in [start, end) per gateway of their meter and per state."""
    total = GatewayRate("合计", "", None)
    if not site_ids:
        return CommandRates(start, end, [], total, [])
    c = conn()
    sites, params = in_list(c, "m.site_id", list(site_ids), 3, "int")
    where = [sites]
    if op:
        params.append(op)
        where.append(f"mc.op = ${2 + len(params)}")
    base = (
        " FROM meter_command mc JOIN meter m ON m.id = mc.meter_id"
        f" WHERE mc.created_at >= $1 AND mc.created_at < $2 AND {' AND '.join(where)}"
    )
    rows = await fetch(
        c,
        "SELECT m.gateway_id, mc.status, COUNT(*) AS n"
        + base
        + " GROUP BY m.gateway_id, mc.status",
        [start, end, *params],
    )
    errors = await fetch(
        c,
        "SELECT mc.last_error AS error, COUNT(*) AS n" + base
        + f" AND mc.status = '{CommandStatus.FAILED.value}' GROUP BY mc.last_error"
        " ORDER BY n DESC, error LIMIT 10",
        [start, end, *params],
    )  # fmt: skip
    ids = sorted({int(r["gateway_id"]) for r in rows if r["gateway_id"] is not None})
    names: dict[int, dict] = {}
    if ids:
        where_ids, id_params = in_list(c, "g.id", ids, 1, "int")
        for g in await fetch(
            c,
            "SELECT g.id, g.code, g.name, g.online, s.name AS site FROM gateway g"
            f" JOIN site s ON s.id = g.site_id WHERE {where_ids}",
            id_params,
        ):
            names[int(g["id"])] = g
    found: dict[int | None, GatewayRate] = {}
    for r in rows:
        gid = None if r["gateway_id"] is None else int(r["gateway_id"])
        if gid not in found:
            g = names.get(gid) if gid is not None else None
            found[gid] = (
                GatewayRate(g["name"] or g["code"], g["site"], bool(g["online"]))
                if g else GatewayRate("（无网关）", "", None)
            )  # fmt: skip
        status, n = str(r["status"]), int(r["n"])
        found[gid].counts[status] = found[gid].counts.get(status, 0) + n
        total.counts[status] = total.counts.get(status, 0) + n
    gateways = sorted(
        found.values(), key=lambda g: (g.rate_pct is None, g.rate_pct or 0, g.gateway)
    )
    return CommandRates(
        start,
        end,
        gateways,
        total,
        [(str(e["error"] or "（无说明）"), int(e["n"])) for e in errors],
    )
