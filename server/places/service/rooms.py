"""Rooms: the clerk's list (filters, search by room, tenant or account number; each row with
its open account and meter count, read in one extra query per page), a room's page with its
account and meters, create, edit and retire.

The list must serve 15,000 rooms quickly: one count, one page of rooms joined to their floor,
building and site, then one grouped query for the page's accounts and meters — never a query
per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.core.errors import Conflict, NotFound
from server.core.paging import Page, Paging, paginate
from server.places.models import Floor, Room
from server.places.service.common import (
    Status,
    by_status,
    checked_area,
    checked_name,
    name_free,
    now,
    refuse_open_accounts,
    writing,
)
from server.places.vocabulary import RoomUse

_CHUNK = 500  # room ids per accounts query (an export asks for every room of the filter)


@dataclass(frozen=True, slots=True)
class RoomFilter:
    site_ids: Sequence[int]  # the scope (or the one site chosen), already checked
    building_id: int | None = None
    floor_id: int | None = None
    use: RoomUse | None = None
    status: Status = Status.ACTIVE
    q: str = ""


@dataclass(frozen=True, slots=True)
class RoomRow:
    id: int
    name: str
    use: RoomUse
    area_m2: Decimal
    site_id: int
    site_name: str
    building_id: int
    building_name: str
    floor_id: int
    floor_name: str
    retired_at: datetime | None
    account_id: int | None = None
    account_number: str = ""
    tenant_name: str = ""


@dataclass(frozen=True, slots=True)
class AccountLine:
    id: int
    number: str
    tenant_name: str
    phone: str
    balance_fen: int
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class RoomDetail:
    room: RoomRow
    account: AccountLine | None


def _query(f: RoomFilter) -> QuerySet[Room]:
    query = by_status(Room.filter(floor__building__site_id__in=list(f.site_ids)), f.status)
    if f.building_id is not None:
        query = query.filter(floor__building_id=f.building_id)
    if f.floor_id is not None:
        query = query.filter(floor_id=f.floor_id)
    if f.use is not None:
        query = query.filter(use=f.use)
    if f.q:
        tenants = Account.filter(
            Q(tenant_name__icontains=f.q) | Q(number__icontains=f.q),
            status=AccountStatus.OPEN, site_id__in=list(f.site_ids), room_id__isnull=False,
        ).values("room_id")  # fmt: skip
        query = query.filter(Q(name__icontains=f.q) | Q(id__in=Subquery(tenants)))
    return query.select_related("floor__building__site")


def _row(room: Room, account: dict | None) -> RoomRow:
    floor = room.floor
    building = floor.building
    a = account or {}
    return RoomRow(
        room.id, room.name, room.use, room.area_m2, building.site.id, building.site.name,
        building.id, building.name, floor.id, floor.name, room.retired_at,
        a.get("id"), a.get("number", ""), a.get("tenant_name", ""),
    )  # fmt: skip


async def _accounts_of(room_ids: Sequence[int]) -> dict[int, dict]:
    """Each room's open account (one query per chunk). Its meters are metering's to count
    (`meter_counts`): the page puts the two together."""
    found: dict[int, dict] = {}
    for start in range(0, len(room_ids), _CHUNK):
        rows = await Account.filter(
            status=AccountStatus.OPEN, room_id__in=room_ids[start : start + _CHUNK]
        ).values("id", "room_id", "number", "tenant_name")
        found |= {r["room_id"]: r for r in rows}
    return found


async def list_rooms(f: RoomFilter, paging: Paging) -> Page[RoomRow]:
    """The rooms the filter selects, by site, building, floor and name."""
    query = _query(f).order_by(
        "floor__building__site__name", "floor__building__name", "floor__sort_order", "name", "id"
    )
    page = await paginate(query, paging)
    accounts = await _accounts_of([r.id for r in page.items])
    return page.map(lambda r: _row(r, accounts.get(r.id)))


async def _room(site_ids: Sequence[int], room_id: int) -> Room:
    room = await _query(RoomFilter(site_ids, status=Status.ALL)).get_or_none(id=room_id)
    if room is None:
        raise NotFound("房间不存在")
    return room


async def room_detail(site_ids: Sequence[int], room_id: int) -> RoomDetail:
    """A room and its open account (tenant); the room's meters are metering's
    (`server.metering.service.devices.meter_views.list_meters` with `room_id`)."""
    room = await _room(site_ids, room_id)
    account = await Account.filter(room_id=room.id, status=AccountStatus.OPEN).first()
    line = None
    if account is not None:
        line = AccountLine(
            account.id, account.number, account.tenant_name, account.phone,
            account.balance_fen, account.opened_at,
        )  # fmt: skip
    extra = {"id": line.id, "number": line.number, "tenant_name": line.tenant_name} if line else {}
    return RoomDetail(_row(room, extra), line)


def _taken(name: str) -> str:
    return f"该楼层已有房间“{name}”（含已停用的房间），请换一个名称"


async def create_room(
    site_ids: Sequence[int], floor_id: int, *, name: str, area_m2: str | Decimal,
    use: RoomUse, actor: str, building_id: int | None = None,
) -> int:  # fmt: skip
    """A room on a floor (of `building_id` when given: a form that named both)."""
    floors = Floor.filter(id=floor_id, building__site_id__in=list(site_ids))
    if building_id is not None:
        floors = floors.filter(building_id=building_id)
    floor = await floors.select_related("building").first()
    if floor is None:
        raise NotFound("楼层不存在")
    if floor.retired_at is not None:
        raise Conflict(f"楼层“{floor.name}”已停用，不能再添加房间")
    name = checked_name(name, "房间名称", 50)
    area = checked_area(area_m2)
    await name_free(Room.filter(floor_id=floor.id), name, _taken(name))
    async with writing(f"房间“{name}”已存在"):
        room = await Room.create(floor=floor, name=name, area_m2=area, use=use)
        await record(
            actor, "room.create", target_type="room", target_id=room.id,
            site_id=floor.building.site_id,  # type: ignore[attr-defined]
            reason=f"{floor.building.name} {floor.name} 新增房间 {name}",
            detail={"name": name, "area_m2": str(area), "use": use.value},
        )  # fmt: skip
    return room.id


async def edit_room(
    site_ids: Sequence[int], room_id: int, *, name: str, area_m2: str | Decimal,
    use: RoomUse, actor: str,
) -> None:  # fmt: skip
    room = await _room(site_ids, room_id)
    name = checked_name(name, "房间名称", 50)
    area = checked_area(area_m2)
    await name_free(Room.filter(floor_id=room.floor.id), name, _taken(name), room.id)
    before = {"name": room.name, "area_m2": str(room.area_m2), "use": room.use.value}
    after = {"name": name, "area_m2": str(area), "use": use.value}
    async with writing(f"房间“{name}”已存在"):
        await Room.filter(id=room.id).update(name=name, area_m2=area, use=use)
        await record(
            actor, "room.edit", target_type="room", target_id=room.id,
            site_id=room.floor.building.site.id, reason=f"修改房间 {room.name}",
            detail={"before": before, "after": after},
        )  # fmt: skip


async def retire_room(site_ids: Sequence[int], room_id: int, *, actor: str) -> None:
    """Retire a room; refused (naming the account) while it has an open account."""
    room = await _room(site_ids, room_id)
    if room.retired_at is not None:
        return
    await refuse_open_accounts("", room_id=room.id)
    async with writing("房间已变更，请刷新后重试"):
        await Room.filter(id=room.id).update(retired_at=now())
        await record(
            actor, "room.retire", target_type="room", target_id=room.id,
            site_id=room.floor.building.site.id,
            reason=f"停用房间 {room.floor.building.name} {room.floor.name} {room.name}",
        )  # fmt: skip
