"""Floors one at a time: a floor's page, add one floor to a building, edit, retire."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.places.models import Building, Floor
from server.places.service.common import (
    checked_name,
    name_free,
    now,
    refuse_open_accounts,
    retire_floors,
    writing,
)


@dataclass(frozen=True, slots=True)
class FloorFacts:
    id: int
    name: str
    sort_order: int
    retired_at: datetime | None
    building_id: int
    building_name: str
    site_id: int
    site_name: str


async def _floor(site_ids: Sequence[int], floor_id: int) -> Floor:
    floor = await Floor.get_or_none(
        id=floor_id, building__site_id__in=list(site_ids)
    ).select_related("building__site")
    if floor is None:
        raise NotFound("楼层不存在")
    return floor


async def floor_facts(site_ids: Sequence[int], floor_id: int) -> FloorFacts:
    floor = await _floor(site_ids, floor_id)
    b = floor.building
    return FloorFacts(
        floor.id, floor.name, floor.sort_order, floor.retired_at,
        b.id, b.name, b.site.id, b.site.name,
    )  # fmt: skip


def _taken(name: str) -> str:
    return f"该楼栋已有楼层“{name}”（含已停用的楼层），请换一个名称"


def _order(sort_order: int) -> int:
    if not -99 <= sort_order <= 999:
        raise ValidationFailed("楼层顺序须在 -99 到 999 之间")
    return sort_order


async def add_floor(
    site_ids: Sequence[int], building_id: int, *, name: str, sort_order: int, actor: str
) -> int:
    building = await Building.get_or_none(id=building_id, site_id__in=list(site_ids))
    if building is None:
        raise NotFound("楼栋不存在")
    if building.retired_at is not None:
        raise Conflict(f"楼栋“{building.name}”已停用，不能再添加楼层")
    name = checked_name(name, "楼层名称", 50)
    await name_free(Floor.filter(building_id=building.id), name, _taken(name))
    async with writing(f"楼层“{name}”已存在"):
        floor = await Floor.create(building=building, name=name, sort_order=_order(sort_order))
        await record(
            actor, "floor.create", target_type="floor", target_id=floor.id,
            site_id=building.site_id,  # type: ignore[attr-defined]
            reason=f"{building.name} 新增楼层 {name}", detail={"name": name},
        )  # fmt: skip
    return floor.id


async def edit_floor(
    site_ids: Sequence[int], floor_id: int, *, name: str, sort_order: int, actor: str
) -> None:
    floor = await _floor(site_ids, floor_id)
    name = checked_name(name, "楼层名称", 50)
    await name_free(Floor.filter(building_id=floor.building.id), name, _taken(name), floor.id)
    before = {"name": floor.name, "sort_order": floor.sort_order}
    async with writing(f"楼层“{name}”已存在"):
        await Floor.filter(id=floor.id).update(name=name, sort_order=_order(sort_order))
        await record(
            actor, "floor.edit", target_type="floor", target_id=floor.id,
            site_id=floor.building.site.id, reason=f"修改楼层 {floor.building.name} {floor.name}",
            detail={"before": before, "after": {"name": name, "sort_order": sort_order}},
        )  # fmt: skip


async def retire_floor(site_ids: Sequence[int], floor_id: int, *, actor: str) -> None:
    """Retire a floor with its rooms; refused while one of them has an open account."""
    floor = await _floor(site_ids, floor_id)
    if floor.retired_at is not None:
        return
    await refuse_open_accounts(f"楼层 {floor.name} ", room__floor_id=floor.id)
    async with writing("楼层已变更，请刷新后重试"):
        await retire_floors(now(), id=floor.id)
        await record(
            actor, "floor.retire", target_type="floor", target_id=floor.id,
            site_id=floor.building.site.id,
            reason=f"停用楼层 {floor.building.name} {floor.name}（含其房间）",
        )  # fmt: skip
