"""换表 as the admin pages need it, around `replacement.replace_meter` (which does the swap):

- `ReplacementInput.of(form)`: the new meter's wire identity (checked per protocol with
  `vocabulary.address_problem`, on the old meter's gateway), ratios and model, the old
  meter's final reading and the new meter's start reading — or a ValidationFailed in words
  for staff; `check_free` refuses an address an active meter already answers at;
- `request_read` / `read_state`: 点抄 of the old meter through the command service (a READ
  command) and what the meter answered, so its final reading can be read rather than typed;
- `meter_chain` / `chain_days`: the meters one installation had, oldest first (each new meter
  `replaces` the old one), and their daily usage as one continuous series for the meter
  page's 30-day chart and table.

Every function takes the staff member's site ids: a meter outside them is NotFound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from server.core.errors import Conflict, NotFound, ValidationFailed
from server.metering import daily
from server.metering.models import (
    CommandOp,
    CommandStatus,
    DailyUsage,
    Gateway,
    Meter,
    MeterCommand,
    MeterStatus,
)
from server.metering.service.commands import queue_command
from server.metering.service.devices.meter_views import COMMAND_STATUS_LABELS
from server.metering.vocabulary import (
    PROTOCOL_GATEWAYS,
    PROTOCOL_LABELS,
    MeterKind,
    MeterProtocol,
    address_problem,
)

MODBUS = (MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP)
_MAX_READING = Decimal("9999999999")
_CHAIN_LIMIT = 50  # a guard against a cycle no code makes


def reading_value(text: str, what: str) -> Decimal:
    """A register reading typed by staff: a number ≥ 0 with at most 4 decimals."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    exponent = value.as_tuple().exponent
    if (
        not value.is_finite()
        or value < 0
        or value > _MAX_READING
        or (isinstance(exponent, int) and exponent < -4)
    ):
        raise ValidationFailed(f"{what}应为不小于 0 的数字，最多 4 位小数")
    return value


def _ratio(text: str, what: str) -> int:
    text = (text or "1").strip()
    if not text.isdecimal() or not 0 < int(text) < 100_000:
        raise ValidationFailed(f"{what}应为正整数")
    return int(text)


@dataclass(frozen=True, slots=True)
class ReplacementInput:
    protocol: MeterProtocol
    address: str
    unit: int
    ct_ratio: int
    pt_ratio: int
    model: str
    old_final: Decimal
    new_first: Decimal

    @classmethod
    def of(cls, form: Mapping[str, str], kind: MeterKind) -> ReplacementInput:
        raw = form.get("protocol", "")
        if raw not in MeterProtocol._value2member_map_:
            raise ValidationFailed("请选择新表的通讯协议")
        protocol = MeterProtocol(raw)
        address = form.get("address", "").strip()
        unit_text = form.get("unit", "").strip() or "0"
        unit = int(unit_text) if unit_text.isdecimal() and len(unit_text) < 4 else -1
        if protocol not in MODBUS:
            unit = 0
        problem = address_problem(kind, protocol, address, unit)
        if problem:
            raise ValidationFailed(problem)
        return cls(
            protocol, address, unit,
            _ratio(form.get("ct_ratio", ""), "电流互感器倍率 CT"),
            _ratio(form.get("pt_ratio", ""), "电压互感器倍率 PT"),
            form.get("model", "").strip()[:32],
            reading_value(form.get("old_final", ""), "旧表最终读数"),
            reading_value(form.get("new_first", ""), "新表起始读数"),
        )  # fmt: skip

    def new_meter(self) -> dict[str, Any]:
        """The `new_meter` argument of `replace_meter`."""
        return {
            "address": self.address, "protocol": self.protocol, "unit": self.unit,
            "ct_ratio": self.ct_ratio, "pt_ratio": self.pt_ratio, "model": self.model,
        }  # fmt: skip

    @property
    def protocol_label(self) -> str:
        return PROTOCOL_LABELS[self.protocol]


async def _meter(site_ids: Sequence[int], meter_id: int) -> Meter:
    meter = await Meter.filter(id=meter_id, site_id__in=list(site_ids)).first()
    if meter is None:
        raise NotFound("仪表不存在")
    return meter


async def check_free(site_ids: Sequence[int], meter_id: int, data: ReplacementInput) -> None:
    """The old meter can be replaced by `data`: it is active, the new protocol runs on its
    gateway, and no other active meter answers at the new address (or Modbus unit)."""
    old = await _meter(site_ids, meter_id)
    if old.status != MeterStatus.ACTIVE:
        raise Conflict("仪表已拆除，不能再换表")
    if old.gateway_id is not None:  # type: ignore[attr-defined]
        gw = await Gateway.get(id=old.gateway_id)  # type: ignore[attr-defined]
        if PROTOCOL_GATEWAYS[data.protocol] != gw.kind:
            raise ValidationFailed(
                f"网关 {gw.code} 不能接 {data.protocol_label} 仪表；更换网关请拆除旧表后登记新表"
            )
    same = Meter.filter(status=MeterStatus.ACTIVE).exclude(id=old.id)
    taken = await same.filter(
        site_id=old.site_id, protocol=data.protocol, address=data.address, unit=data.unit
    ).first()
    if taken is None and data.protocol in MODBUS and old.gateway_id is not None:  # type: ignore[attr-defined]
        taken = await same.filter(gateway_id=old.gateway_id, unit=data.unit).first()  # type: ignore[attr-defined]
    if taken is not None:
        raise Conflict(f"表地址 {data.address} 已被在用仪表 #{taken.id} 使用")


# -- 点抄 of the old meter ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReadState:
    command_id: int
    status: str
    total: Decimal | None  # what the meter answered (acked)
    error: str
    finished: bool

    @property
    def status_label(self) -> str:
        return COMMAND_STATUS_LABELS[CommandStatus(self.status)]


async def request_read(site_ids: Sequence[int], meter_id: int, *, actor: str) -> int:
    """Queue a READ of the meter (its final reading before 换表); the command's id."""
    meter = await _meter(site_ids, meter_id)
    if meter.status != MeterStatus.ACTIVE:
        raise Conflict("仪表已拆除，不能点抄")
    cmd = await queue_command(
        meter.id, CommandOp.READ, actor=actor, reason="换表：读取旧表最终读数"
    )
    return cmd.id


async def read_state(site_ids: Sequence[int], meter_id: int, command_id: int) -> ReadState:
    """A READ command of this meter and, once acked, the register it read."""
    await _meter(site_ids, meter_id)
    cmd = await MeterCommand.filter(id=command_id, meter_id=meter_id, op=CommandOp.READ).first()
    if cmd is None:
        raise NotFound("点抄命令不存在")
    total = None
    if cmd.status == CommandStatus.ACKED and "total" in (cmd.result or {}):
        total = Decimal(str(cmd.result["total"]))
    finished = cmd.status in (CommandStatus.ACKED, CommandStatus.FAILED, CommandStatus.EXPIRED)
    return ReadState(cmd.id, cmd.status, total, cmd.last_error, finished)


# -- the chain and its days ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChainLink:
    id: int
    address: str
    status: str
    installed_at: datetime | None
    removed_at: datetime | None
    multiplier: int


def _link(m: Meter) -> ChainLink:
    return ChainLink(m.id, m.address, m.status, m.installed_at, m.removed_at, m.multiplier)


async def meter_chain(site_ids: Sequence[int], meter_id: int) -> list[ChainLink]:
    """The installation's meters, oldest first: those this one replaced, itself, those that
    replaced it (one query per link; chains are short)."""
    meter = await _meter(site_ids, meter_id)
    back: list[Meter] = []
    cursor = meter
    while cursor.replaces_id is not None and len(back) < _CHAIN_LIMIT:  # type: ignore[attr-defined]
        prev = await Meter.filter(id=cursor.replaces_id).first()  # type: ignore[attr-defined]
        if prev is None:
            break
        back.append(prev)
        cursor = prev
    forward: list[Meter] = []
    cursor = meter
    while len(forward) < _CHAIN_LIMIT:
        nxt = await Meter.filter(replaces_id=cursor.id).order_by("id").first()
        if nxt is None:
            break
        forward.append(nxt)
        cursor = nxt
    return [_link(m) for m in [*reversed(back), meter, *forward]]


@dataclass(frozen=True, slots=True)
class ChainDay:
    day: date
    quantity: Decimal  # kWh / m³, CT×PT applied, summed over the chain's meters
    amount_fen: int | None  # None: the platform charged nothing that day
    meters: tuple[str, ...]  # the addresses that measured something that day


async def chain_days(chain: Sequence[ChainLink], *, end: date, days: int = 30) -> list[ChainDay]:
    """Every day of the `days` up to `end` (zero-filled), the chain's meters summed: the
    day of a swap adds the old meter's last hours to the new meter's first."""
    start = end - timedelta(days=days - 1)
    names = {m.id: m.address for m in chain}
    rows = await DailyUsage.filter(meter_id__in=list(names), day__gte=start, day__lte=end).order_by(
        "day", "meter_id"
    )
    by_day: dict[date, list[DailyUsage]] = {}
    for r in rows:
        by_day.setdefault(r.day, []).append(r)
    out: list[ChainDay] = []
    for i in range(days):
        day = start + timedelta(days=i)
        these = by_day.get(day, [])
        money = [r.amount_fen for r in these if r.amount_fen is not None]
        out.append(
            ChainDay(
                day,
                daily.from_units(sum(r.quantity_e4 for r in these)),
                sum(money) if money else None,
                tuple(names[r.meter_id] for r in these if r.quantity_e4),  # type: ignore[attr-defined]
            )
        )
    return out
