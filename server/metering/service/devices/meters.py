"""Meters (仪表) as staff register and look after them: register, edit, remove (the reads
the pages show are in `meter_views`).

A meter is registered on a gateway (bus) of its site, with its wire address checked per
protocol (`vocabulary.address_problem`), optionally in a room — and so on the room's open
account, if it has one. A start reading (the register on the meter's face at installation)
is stored as the meter's first reading, the baseline its first polled delta is billed from.
The collector reads the meter rows at every round and the gateway link looks addresses up
afresh, so a registration or an edit takes effect without a restart.

A meter is never deleted: removing it marks it REMOVED (its history stays) and fails the
commands still queued for it. Every change writes the operation log in its transaction;
every function takes the staff member's site ids, and a meter outside them is NotFound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.metering.models import (
    Gateway,
    Meter,
    MeterBilling,
    MeterStatus,
    ReadingSource,
)
from server.metering.models import Reading as StoredReading
from server.metering.reading import Reading
from server.metering.service.commands import fail_queued
from server.metering.service.readings import IncomingReading, ingest
from server.metering.vocabulary import (
    KIND_LABELS,
    PROTOCOL_GATEWAYS,
    PROTOCOL_LABELS,
    MeterKind,
    MeterProtocol,
    address_problem,
)
from server.places.models import Room

MODBUS = (MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP)
_MAX_READING = Decimal("9999999999")
# What an edit may change (and the log compares), in the log's words for staff.
_EDITABLE = {
    "kind": "类型", "protocol": "协议", "address": "表地址", "unit": "从站地址",
    "gateway_id": "网关", "room_id": "房间", "account_id": "账户", "model": "型号",
    "ct_ratio": "CT 倍率", "pt_ratio": "PT 倍率", "billing": "计费方式",
}  # fmt: skip


def _int(form: Mapping[str, str], name: str, default: int, problem: str) -> int:
    text = (form.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed(problem)
    return int(text)


@dataclass(frozen=True, slots=True)
class MeterInput:
    """What staff type in the meter form, checked on its own (the rows it names are checked
    against the scope by `register_meter` / `edit_meter`)."""

    kind: MeterKind
    protocol: MeterProtocol
    address: str
    unit: int
    gateway_id: int
    room_id: int | None
    model: str
    ct_ratio: int
    pt_ratio: int
    billing: MeterBilling
    start_reading: Decimal | None = None

    @classmethod
    def of(cls, form: Mapping[str, str]) -> MeterInput:
        try:
            kind = MeterKind(form.get("kind") or "")
        except ValueError:
            raise ValidationFailed("请选择仪表类型（电表或水表）") from None
        try:
            protocol = MeterProtocol(form.get("protocol") or "")
        except ValueError:
            raise ValidationFailed("请选择通讯协议") from None
        address = (form.get("address") or "").strip()
        unit = _int(form, "unit", 0, "Modbus 从站地址应在 1 到 247 之间")
        if protocol not in MODBUS:
            unit = 0
        problem = address_problem(kind, protocol, address, unit)
        if problem:
            raise ValidationFailed(problem)
        gateway_id = _int(form, "gateway_id", 0, "请选择网关")
        if not gateway_id:
            raise ValidationFailed("请选择仪表所在的网关（总线）")
        room_id = _int(form, "room_id", 0, "房间不存在") or None
        ct = _int(form, "ct_ratio", 1, "电流互感器倍率（CT）应为正整数")
        pt = _int(form, "pt_ratio", 1, "电压互感器倍率（PT）应为正整数")
        if ct < 1 or pt < 1:
            raise ValidationFailed("互感器倍率（CT、PT）应为正整数")
        try:
            billing = MeterBilling(form.get("billing") or MeterBilling.PLATFORM)
        except ValueError:
            raise ValidationFailed("请选择计费方式") from None
        model = (form.get("model") or "").strip()
        if len(model) > 32:
            raise ValidationFailed("型号最长 32 个字符")
        return cls(
            kind, protocol, address, unit, gateway_id, room_id, model, ct, pt, billing,
            _start_reading(form.get("start_reading") or ""),
        )  # fmt: skip


def _start_reading(text: str) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value > _MAX_READING or value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValidationFailed("起始读数应为不小于 0 的数字，最多 4 位小数")
    return value


async def _place(site_ids: Sequence[int], data: MeterInput, site_id: int | None) -> dict[str, Any]:
    """The gateway, room and account `data` names, checked against the scope and each other:
    {site_id, gateway_id, room_id, account_id}."""
    gw = await Gateway.filter(id=data.gateway_id, site_id__in=list(site_ids)).first()
    if gw is None:
        raise NotFound("网关不存在")
    if gw.retired_at is not None:
        raise ValidationFailed(f"网关 {gw.code} 已退役，请选择在用的网关")
    if site_id is not None and gw.site_id != site_id:
        raise ValidationFailed("仪表只能换到本站点的网关")
    if PROTOCOL_GATEWAYS[data.protocol] != gw.kind:
        raise ValidationFailed(
            f"网关 {gw.code} 不能接 {PROTOCOL_LABELS[data.protocol]} 仪表，请选择对应类型的网关"
        )
    place: dict[str, Any] = {"site_id": gw.site_id, "gateway_id": gw.id}
    place |= {"room_id": None, "account_id": None}
    if data.room_id is not None:
        room = await Room.filter(id=data.room_id, floor__building__site_id=gw.site_id).first()
        if room is None:
            raise NotFound("房间不存在（仪表和网关须在同一站点）")
        account = await Account.filter(room_id=room.id, status=AccountStatus.OPEN).first()
        place |= {"room_id": room.id, "account_id": account.id if account else None}
    return place


async def _check_free(data: MeterInput, site_id: int, gateway_id: int, meter_id: int = 0) -> None:
    """An active meter already answers at this address (or Modbus unit on this bus)."""
    same = Meter.filter(status=MeterStatus.ACTIVE).exclude(id=meter_id)
    taken = await same.filter(
        site_id=site_id, protocol=data.protocol, address=data.address, unit=data.unit
    ).first()
    if taken is None and data.protocol in MODBUS:
        taken = await same.filter(gateway_id=gateway_id, unit=data.unit).first()
    if taken is None and data.protocol is MeterProtocol.MQTT_GATEWAY:
        taken = await same.filter(gateway_id=gateway_id, address=data.address).first()
    if taken is not None:
        where = f"从站地址 {data.unit}" if data.protocol in MODBUS else f"表地址 {data.address}"
        raise Conflict(f"{where} 已被在用仪表 #{taken.id} 使用")


def _values(data: MeterInput, place: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "kind": data.kind, "protocol": data.protocol, "address": data.address,
        "unit": data.unit, "model": data.model, "ct_ratio": data.ct_ratio,
        "pt_ratio": data.pt_ratio, "billing": data.billing, **place,
    }  # fmt: skip


def _logged(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if k in _EDITABLE}


async def register_meter(site_ids: Sequence[int], data: MeterInput, *, actor: str) -> int:
    """A new active meter (see the module docstring); returns its id."""
    now = datetime.now(UTC)
    async with in_transaction():
        place = await _place(site_ids, data, None)
        await _check_free(data, place["site_id"], place["gateway_id"])
        values = _values(data, place)
        meter = await Meter.create(
            **values, status=MeterStatus.ACTIVE, installed_at=now,
            online=data.start_reading is not None,  # read by a person just now
        )  # fmt: skip
        if data.start_reading is not None:
            first = Reading(now, data.start_reading, {})
            await ingest([IncomingReading(meter.id, first, ReadingSource.MANUAL)], now=now)
        start = f"，起始读数 {data.start_reading}" if data.start_reading is not None else ""
        await record(
            actor, "meter.register", target_type="meter", target_id=meter.id,
            site_id=meter.site_id,
            reason=f"登记{KIND_LABELS[data.kind]} {data.address}"
            f"（{PROTOCOL_LABELS[data.protocol]}）{start}",
            detail=_logged(values) | {"start_reading": str(data.start_reading)},
        )  # fmt: skip
    return meter.id


async def _locked(site_ids: Sequence[int], meter_id: int) -> Meter:
    meter = await Meter.filter(id=meter_id, site_id__in=list(site_ids)).select_for_update().first()
    if meter is None:
        raise NotFound("仪表不存在")
    if meter.status == MeterStatus.REMOVED:
        raise Conflict("仪表已拆除，不能再修改")
    return meter


async def edit_meter(
    site_ids: Sequence[int], meter_id: int, data: MeterInput, *, actor: str
) -> None:
    """Change a meter in service (its site stays; its kind only while it has no reading).
    Its account changes only with its room: moved to another room, it serves that room's
    open account (or none)."""
    async with in_transaction():
        meter = await _locked(site_ids, meter_id)
        place = await _place(site_ids, data, meter.site_id)
        if data.room_id == meter.room_id:  # type: ignore[attr-defined]
            place["account_id"] = meter.account_id  # type: ignore[attr-defined]
        await _check_free(data, meter.site_id, place["gateway_id"], meter.id)
        if data.kind != meter.kind and await StoredReading.exists(meter_id=meter.id):
            raise Conflict("已有读数的仪表不能改变类型，请拆除后重新登记")
        values = _values(data, place)
        before = _logged({k: getattr(meter, k) for k in values})
        after = _logged(values)
        changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        if not changed:
            return
        for k, v in values.items():
            setattr(meter, k, v)
        await meter.save(update_fields=[k for k in values if k != "site_id"])
        await record(
            actor, "meter.edit", target_type="meter", target_id=meter.id, site_id=meter.site_id,
            reason=f"修改仪表 {meter.address}：{'、'.join(_EDITABLE[k] for k in changed)}",
            detail=changed,
        )  # fmt: skip


async def remove_meter(site_ids: Sequence[int], meter_id: int, *, actor: str) -> None:
    """Take a meter out of service: REMOVED (history stays), its queued commands failed."""
    now = datetime.now(UTC)
    async with in_transaction():
        meter = await _locked(site_ids, meter_id)
        meter.status, meter.removed_at, meter.online = MeterStatus.REMOVED, now, False
        await meter.save(update_fields=["status", "removed_at", "online"])
        await fail_queued(meter.id, now, "电表已拆除")
        await record(
            actor, "meter.remove", target_type="meter", target_id=meter.id,
            site_id=meter.site_id, reason=f"拆除仪表 {meter.address}",
        )  # fmt: skip
