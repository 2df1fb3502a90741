"""Meters as the admin's list, detail page and forms read them: rows with their site,
gateway, room and account; the newest reading and the last commands of one meter; the rooms
a meter may be placed in. Scoped like every admin read: a meter outside the staff member's
site ids is NotFound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tortoise.expressions import Q
from tortoise.functions import Count

from server.accounts.models import Account
from server.core.errors import NotFound
from server.core.paging import Page, Paging, paginate
from server.metering.models import (
    CommandOp,
    CommandStatus,
    Gateway,
    Meter,
    MeterBilling,
    MeterCommand,
    MeterStatus,
)
from server.metering.models import Reading as StoredReading
from server.metering.vocabulary import (
    KIND_LABELS,
    PROTOCOL_LABELS,
    MeterKind,
    MeterProtocol,
    RelayState,
)
from server.places.models import Room

BILLING_LABELS = {MeterBilling.PLATFORM: "平台计费", MeterBilling.METER: "表端计费"}
STATUS_LABELS = {
    MeterStatus.ACTIVE: "在用", MeterStatus.REMOVED: "已拆除", MeterStatus.SPARE: "备用"
}  # fmt: skip
RELAY_LABELS = {RelayState.CLOSED: "合闸", RelayState.OPEN: "断开", RelayState.UNKNOWN: "未知"}
OP_LABELS = {
    CommandOp.TRIP: "跳闸/关阀", CommandOp.CLOSE: "合闸/开阀", CommandOp.CLOSE_ALLOWED: "允许合闸",
    CommandOp.PROTECT_ON: "保电", CommandOp.PROTECT_OFF: "解除保电", CommandOp.RECHARGE: "表端充值",
    CommandOp.READ: "点抄", CommandOp.PRICES: "下发电价", CommandOp.ALARM_AMOUNTS: "下发报警金额",
}  # fmt: skip
COMMAND_STATUS_LABELS = {
    CommandStatus.QUEUED: "排队中", CommandStatus.SENT: "已发送", CommandStatus.ACKED: "已确认",
    CommandStatus.FAILED: "失败", CommandStatus.EXPIRED: "已过期",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class MeterRow:
    """A meter as the list shows it."""

    id: int
    site_id: int
    site_name: str
    kind: MeterKind
    protocol: MeterProtocol
    address: str
    unit: int
    model: str
    ct_ratio: int
    pt_ratio: int
    billing: MeterBilling
    status: MeterStatus
    gateway_id: int | None
    gateway_code: str
    room_id: int | None
    room: str  # "1号楼 3F 0301"
    account_id: int | None
    account: str  # "H000123 张伟"
    online: bool
    relay_state: RelayState
    last_reading_at: datetime | None

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def protocol_label(self) -> str:
        return PROTOCOL_LABELS[self.protocol]

    @property
    def billing_label(self) -> str:
        return BILLING_LABELS[self.billing]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def relay_label(self) -> str:
        return RELAY_LABELS[self.relay_state]


@dataclass(frozen=True, slots=True)
class LastReading:
    taken_at: datetime
    total: Decimal  # the register, before CT×PT
    source: str


@dataclass(frozen=True, slots=True)
class CommandRow:
    id: int
    op: str
    status: str
    actor: str
    reason: str
    created_at: datetime
    finished_at: datetime | None
    last_error: str

    @property
    def op_label(self) -> str:
        return OP_LABELS.get(CommandOp(self.op), self.op)

    @property
    def status_label(self) -> str:
        return COMMAND_STATUS_LABELS[CommandStatus(self.status)]


@dataclass(frozen=True, slots=True)
class MeterDetail:
    meter: MeterRow
    last_reading: LastReading | None
    commands: list[CommandRow]


@dataclass(frozen=True, slots=True)
class MeterFilter:
    """The list's filters; None / '' is no filter."""

    site_id: int | None = None
    gateway_id: int | None = None
    kind: str = ""
    protocol: str = ""
    online: str = ""  # "online" | "offline"
    status: str = MeterStatus.ACTIVE.value  # "" for every status
    q: str = ""  # address, room or account
    room_id: int | None = None


def room_label(room: Room | None) -> str:
    if room is None:
        return ""
    return f"{room.floor.building.name} {room.floor.name} {room.name}"  # type: ignore[attr-defined]


def _row(m: Meter) -> MeterRow:
    account: Account | None = m.account  # type: ignore[assignment]
    gateway: Gateway | None = m.gateway  # type: ignore[assignment]
    return MeterRow(
        m.id, m.site_id, m.site.name, MeterKind(m.kind), MeterProtocol(m.protocol),  # type: ignore[attr-defined]
        m.address, m.unit, m.model, m.ct_ratio, m.pt_ratio, MeterBilling(m.billing),
        MeterStatus(m.status), m.gateway_id, gateway.code if gateway else "",  # type: ignore[attr-defined]
        m.room_id, room_label(m.room), m.account_id,  # type: ignore[attr-defined]
        f"{account.number} {account.tenant_name}" if account else "",
        m.online, RelayState(m.relay_state), m.last_reading_at,
    )  # fmt: skip


def _scoped(site_ids: Sequence[int]):  # type: ignore[no-untyped-def]
    return Meter.filter(site_id__in=list(site_ids)).select_related(
        "site", "gateway", "account", "room__floor__building"
    )


async def list_meters(site_ids: Sequence[int], paging: Paging, f: MeterFilter) -> Page[MeterRow]:
    """Meters of the scope by address, filtered; `q` matches the address, the room's number
    or the account's number or tenant."""
    query = _scoped(site_ids)
    if f.site_id is not None:
        query = query.filter(site_id=f.site_id)
    if f.gateway_id is not None:
        query = query.filter(gateway_id=f.gateway_id)
    if f.room_id is not None:
        query = query.filter(room_id=f.room_id)
    if f.kind in MeterKind._value2member_map_:
        query = query.filter(kind=f.kind)
    if f.protocol in MeterProtocol._value2member_map_:
        query = query.filter(protocol=f.protocol)
    if f.online in ("online", "offline"):
        query = query.filter(online=f.online == "online")
    if f.status in MeterStatus._value2member_map_:
        query = query.filter(status=f.status)
    if f.q:
        query = query.filter(
            Q(address__icontains=f.q)
            | Q(room__name__icontains=f.q)
            | Q(account__number__icontains=f.q)
            | Q(account__tenant_name__icontains=f.q)
        )
    page = await paginate(query.order_by("address", "id"), paging)
    return page.map(_row)


async def meter_detail(
    site_ids: Sequence[int], meter_id: int, *, commands: int = 10
) -> MeterDetail:
    """A meter, its newest accepted reading and the last `commands` commands it received."""
    meter = await _scoped(site_ids).filter(id=meter_id).first()
    if meter is None:
        raise NotFound("仪表不存在")
    last = await StoredReading.filter(meter_id=meter.id).order_by("-taken_at").first()
    sent = await MeterCommand.filter(meter_id=meter.id).order_by("-id").limit(commands)
    rows = [
        CommandRow(
            c.id, c.op, c.status, c.actor, c.reason, c.created_at, c.finished_at, c.last_error
        )
        for c in sent
    ]
    reading = LastReading(last.taken_at, last.total, last.source) if last else None
    return MeterDetail(_row(meter), reading, rows)


async def meter_counts(room_ids: Sequence[int]) -> dict[int, int]:
    """Active meters per room, for the room lists (one grouped query)."""
    if not room_ids:
        return {}
    rows = (
        await Meter.filter(room_id__in=list(room_ids), status=MeterStatus.ACTIVE)
        .annotate(n=Count("id"))
        .group_by("room_id")
        .values_list("room_id", "n")
    )
    return {room_id: n for room_id, n in rows}


async def room_choices(site_ids: Sequence[int]) -> list[tuple[int, int, str]]:
    """Every room of the scope as (site id, room id, "1号楼 3F 0301"), in building order, for
    the meter form's select."""
    rooms = (
        await Room.filter(floor__building__site_id__in=list(site_ids))
        .select_related("floor__building")
        .order_by("floor__building__name", "floor__sort_order", "floor__name", "name")
    )
    return [(r.floor.building.site_id, r.id, room_label(r)) for r in rooms]  # type: ignore[attr-defined]
