"""Buildings and floors: a building's page (its floors and rooms as a grid), the generator that
lays out N floors of M rooms in one transaction, edit and retire of either.

Room names come from a pattern: `{floor}` the floor's number, `{nn}` the room's number on the
floor in two digits, `{n}` the same without padding — "{floor}{nn}" gives 101, 102, … 1520.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.places.models import Building, Floor, Room, Site
from server.places.service.common import (
    checked_area,
    checked_name,
    name_free,
    now,
    refuse_open_accounts,
    retire_floors,
    writing,
)
from server.places.vocabulary import RoomUse

MAX_FLOORS = 200
MAX_ROOMS_PER_FLOOR = 200
MAX_ROOMS = 5_000  # one generator run
_TOKEN = re.compile(r"\{(floor|nn|n)\}")


@dataclass(frozen=True, slots=True)
class Layout:
    """What the generator lays out: floors first_floor… with rooms_per_floor rooms each."""

    floors: int = 0
    rooms_per_floor: int = 0
    first_floor: int = 1
    pattern: str = "{floor}{nn}"
    area_m2: Decimal = Decimal(0)
    use: RoomUse = RoomUse.OFFICE


@dataclass(frozen=True, slots=True)
class RoomCell:
    id: int
    name: str
    use: RoomUse
    area_m2: Decimal
    retired: bool
    account_number: str | None


@dataclass(frozen=True, slots=True)
class FloorView:
    id: int
    name: str
    sort_order: int
    retired_at: datetime | None
    rooms: list[RoomCell] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BuildingView:
    id: int
    name: str
    site_id: int
    site_name: str
    retired_at: datetime | None
    floors: list[FloorView]

    @property
    def rooms_in_use(self) -> int:
        return sum(1 for f in self.floors for r in f.rooms if not r.retired)


def floor_name(number: int) -> str:
    return f"{number}层"


def room_names(pattern: str, floor: int, count: int) -> list[str]:
    """The names of a floor's `count` rooms; a pattern without a room number is refused
    (every room of the floor would have the same name)."""
    if not set(_TOKEN.findall(pattern)) & {"nn", "n"}:
        raise ValidationFailed("房号格式须包含 {nn} 或 {n}（房间序号），如 {floor}{nn}")
    rest = _TOKEN.sub("", pattern)
    if "{" in rest or "}" in rest:
        raise ValidationFailed("房号格式只能使用 {floor}、{nn}、{n}")
    names = []
    for i in range(1, count + 1):
        values = {"floor": str(floor), "nn": f"{i:02d}", "n": str(i)}
        name = _TOKEN.sub(lambda m, v=values: v[m.group(1)], pattern)
        names.append(checked_name(name, "房间名称", 50))
    return names


def _checked(layout: Layout) -> Layout:
    if not 1 <= layout.first_floor <= MAX_FLOORS:
        raise ValidationFailed(f"起始楼层须在 1 到 {MAX_FLOORS} 之间")
    if not 0 <= layout.floors <= MAX_FLOORS or layout.first_floor + layout.floors - 1 > 999:
        raise ValidationFailed(f"楼层数须在 0 到 {MAX_FLOORS} 之间")
    if not 0 <= layout.rooms_per_floor <= MAX_ROOMS_PER_FLOOR:
        raise ValidationFailed(f"每层房间数须在 0 到 {MAX_ROOMS_PER_FLOOR} 之间")
    if layout.floors * layout.rooms_per_floor > MAX_ROOMS:
        raise ValidationFailed(f"一次最多生成 {MAX_ROOMS} 个房间")
    checked_area(layout.area_m2)
    return layout


async def _lay_out(building: Building, layout: Layout) -> int:
    """Inside the caller's transaction: the floors and their rooms; a floor that exists
    already is a Conflict, which rolls back everything laid out before it. Returns rooms."""
    rooms = 0
    for number in range(layout.first_floor, layout.first_floor + layout.floors):
        name = floor_name(number)
        if await Floor.exists(building_id=building.id, name=name):
            raise Conflict(f"{building.name} 已有“{name}”，没有生成任何楼层或房间")
        floor = await Floor.create(building=building, name=name, sort_order=number)
        names = room_names(layout.pattern, number, layout.rooms_per_floor)
        await Room.bulk_create([
            Room(floor=floor, name=n, area_m2=layout.area_m2, use=layout.use) for n in names
        ])  # fmt: skip
        rooms += len(names)
    return rooms


async def _building(site_ids: Sequence[int], building_id: int) -> Building:
    building = await Building.get_or_none(id=building_id, site_id__in=list(site_ids))
    if building is None:
        raise NotFound("楼栋不存在")
    return building


def _taken(name: str) -> str:
    return f"楼栋“{name}”已存在（含已停用的楼栋），请换一个名称"


def _in_use(obj: Site | Building | Floor, what: str) -> None:
    if obj.retired_at is not None:
        raise Conflict(f"{what}“{obj.name}”已停用，不能再添加")


async def create_building(
    site_ids: Sequence[int], site_id: int, *, name: str, layout: Layout, actor: str
) -> int:
    """A building with `layout`'s floors and rooms, all or nothing."""
    site = await Site.get_or_none(id=site_id, id__in=list(site_ids))
    if site is None:
        raise NotFound("站点不存在")
    _in_use(site, "站点")
    name = checked_name(name, "楼栋名称", 100)
    layout = _checked(layout)
    await name_free(Building.filter(site_id=site.id), name, _taken(name))
    async with writing(f"楼栋“{name}”已存在"):
        building = await Building.create(site=site, name=name)
        rooms = await _lay_out(building, layout)
        await record(
            actor, "building.create", target_type="building", target_id=building.id,
            site_id=site.id, reason=f"新建楼栋 {name}（{layout.floors} 层，{rooms} 个房间）",
            detail={"name": name, "floors": layout.floors, "rooms": rooms,
                    "pattern": layout.pattern, "area_m2": str(layout.area_m2)},
        )  # fmt: skip
    return building.id


async def add_floors(
    site_ids: Sequence[int], building_id: int, *, layout: Layout, actor: str
) -> int:
    """More floors (with rooms) in a building, all or nothing; returns the rooms made."""
    building = await _building(site_ids, building_id)
    _in_use(building, "楼栋")
    layout = _checked(layout)
    async with writing("楼层或房间已存在，没有生成任何楼层或房间"):
        rooms = await _lay_out(building, layout)
        await record(
            actor, "floor.generate", target_type="building", target_id=building.id,
            site_id=building.site_id,  # type: ignore[attr-defined]
            reason=f"{building.name} 生成 {layout.floors} 层、{rooms} 个房间",
            detail={"first_floor": layout.first_floor, "floors": layout.floors,
                    "rooms": rooms, "pattern": layout.pattern},
        )  # fmt: skip
    return rooms


async def building_view(site_ids: Sequence[int], building_id: int) -> BuildingView:
    """A building's floors (by order) with their rooms and each room's open account."""
    building = await _building(site_ids, building_id)
    site = await Site.get(id=building.site_id)  # type: ignore[attr-defined]
    floors = await Floor.filter(building_id=building.id).order_by("sort_order", "name")
    rooms = await Room.filter(floor__building_id=building.id).order_by("name")
    accounts = dict(
        await Account.filter(
            status=AccountStatus.OPEN, room__floor__building_id=building.id
        ).values_list("room_id", "number")
    )
    cells: dict[int, list[RoomCell]] = {f.id: [] for f in floors}
    for r in sorted(rooms, key=lambda r: (len(r.name), r.name)):
        cells[r.floor_id].append(  # type: ignore[attr-defined]
            RoomCell(r.id, r.name, r.use, r.area_m2, r.retired_at is not None, accounts.get(r.id))
        )
    views = [FloorView(f.id, f.name, f.sort_order, f.retired_at, cells[f.id]) for f in floors]
    return BuildingView(building.id, building.name, site.id, site.name, building.retired_at, views)


async def edit_building(
    site_ids: Sequence[int], building_id: int, *, name: str, actor: str
) -> None:
    building = await _building(site_ids, building_id)
    name = checked_name(name, "楼栋名称", 100)
    site_id = building.site_id  # type: ignore[attr-defined]
    await name_free(Building.filter(site_id=site_id), name, _taken(name), building.id)
    async with writing(f"楼栋“{name}”已存在"):
        await Building.filter(id=building.id).update(name=name)
        await record(
            actor, "building.edit", target_type="building", target_id=building.id,
            site_id=site_id, reason=f"楼栋 {building.name} 改名为 {name}",
            detail={"before": building.name, "after": name},
        )  # fmt: skip


async def retire_building(site_ids: Sequence[int], building_id: int, *, actor: str) -> None:
    """Retire a building with its floors and rooms; refused while a room has an open account."""
    building = await _building(site_ids, building_id)
    if building.retired_at is not None:
        return
    await refuse_open_accounts(f"楼栋 {building.name} ", room__floor__building_id=building.id)
    at = now()
    async with writing("楼栋已变更，请刷新后重试"):
        await retire_floors(at, building_id=building.id)
        await Building.filter(id=building.id).update(retired_at=at)
        await record(
            actor, "building.retire", target_type="building", target_id=building.id,
            site_id=building.site_id,  # type: ignore[attr-defined]
            reason=f"停用楼栋 {building.name}（含其楼层、房间）",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class BuildingRef:
    id: int
    name: str
    site_id: int


async def building_choices(site_ids: Sequence[int]) -> list[BuildingRef]:
    """The buildings in use of the scope, for a list's filter."""
    rows = (
        await Building.filter(site_id__in=list(site_ids), retired_at__isnull=True)
        .order_by("site__name", "name")
        .values_list("id", "name", "site_id")
    )
    return [BuildingRef(*row) for row in rows]
