"""The structure services: scoped reads, the generator's all-or-nothing transaction, retire
refused while a room has an open account, every change in the operation log."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.audit.models import OperationLog
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.paging import Paging
from server.metering.service.devices.meter_views import meter_counts
from server.places.models import Building, Floor, Room, RoomUse
from server.places.service import buildings, floors, rooms, sites
from server.places.service.buildings import Layout, room_names
from server.places.service.common import Status
from tests.factories import create_account, create_meter, create_organisation, create_site

ACTOR = "staff:1"


def test_room_names_follow_the_pattern() -> None:
    assert room_names("{floor}{nn}", 3, 3) == ["301", "302", "303"]
    assert room_names("A-{floor}-{n}", 12, 2) == ["A-12-1", "A-12-2"]
    with pytest.raises(ValidationFailed):
        room_names("{floor}", 1, 2)  # every room of the floor would be named alike
    with pytest.raises(ValidationFailed):
        room_names("{floor.__class__}{nn}", 1, 2)


async def test_a_building_with_floors_and_rooms_in_one_go(db: None) -> None:
    site = await create_site()
    layout = Layout(floors=3, rooms_per_floor=4, area_m2=Decimal("45.50"), use=RoomUse.SHOP)
    building_id = await buildings.create_building(
        [site.id], site.id, name="A座", layout=layout, actor=ACTOR
    )
    view = await buildings.building_view([site.id], building_id)
    assert [f.name for f in view.floors] == ["1层", "2层", "3层"]
    assert [r.name for r in view.floors[2].rooms] == ["301", "302", "303", "304"]
    assert view.rooms_in_use == 12
    room = await Room.get(name="204")
    assert (room.area_m2, room.use) == (Decimal("45.50"), RoomUse.SHOP)
    log = await OperationLog.get(action="building.create")
    assert (log.site_id, log.actor) == (site.id, ACTOR) and "12 个房间" in log.reason


async def test_a_floor_clash_rolls_back_everything_laid_out_before_it(db: None) -> None:
    site = await create_site()
    building_id = await buildings.create_building(
        [site.id], site.id, name="B座", layout=Layout(floors=0), actor=ACTOR
    )
    await floors.add_floor([site.id], building_id, name="3层", sort_order=3, actor=ACTOR)
    with pytest.raises(Conflict, match="3层"):
        await buildings.add_floors(
            [site.id], building_id, layout=Layout(floors=5, rooms_per_floor=10), actor=ACTOR
        )
    assert await Floor.filter(building_id=building_id).count() == 1
    assert await Room.filter(floor__building_id=building_id).count() == 0
    assert not await OperationLog.exists(action="floor.generate")


async def test_names_are_unique_with_a_conflict_in_words(db: None) -> None:
    site = await create_site()
    await buildings.create_building([site.id], site.id, name="C座", layout=Layout(), actor=ACTOR)
    with pytest.raises(Conflict, match="C座"):
        await buildings.create_building(
            [site.id], site.id, name="C座", layout=Layout(floors=2, rooms_per_floor=2), actor=ACTOR
        )
    assert await Building.filter(site_id=site.id).count() == 1
    with pytest.raises(Conflict):
        await sites.create_site(
            organisation_id=site.organisation_id,  # type: ignore[attr-defined]
            name=site.name,
            address="",
            actor=ACTOR,
        )


async def test_other_sites_are_not_found(db: None) -> None:
    mine, theirs = await create_site(), await create_site()
    building_id = await buildings.create_building(
        [theirs.id], theirs.id, name="D座", layout=Layout(floors=1, rooms_per_floor=1), actor=ACTOR
    )
    room = await Room.get(floor__building_id=building_id)
    with pytest.raises(NotFound):
        await buildings.building_view([mine.id], building_id)
    with pytest.raises(NotFound):
        await rooms.room_detail([mine.id], room.id)
    with pytest.raises(NotFound):
        await rooms.retire_room([mine.id], room.id, actor=ACTOR)
    with pytest.raises(NotFound):
        await sites.site_detail([mine.id], theirs.id)
    page = await rooms.list_rooms(rooms.RoomFilter([mine.id]), Paging())
    assert page.total == 0


async def test_retire_is_refused_while_a_room_has_an_open_account(db: None) -> None:
    site = await create_site()
    building_id = await buildings.create_building(
        [site.id], site.id, name="E座", layout=Layout(floors=1, rooms_per_floor=2), actor=ACTOR
    )
    room = await Room.get(name="101")
    account = await create_account(room=room, number="H000777", tenant_name="某某茶行")
    for retire, target in [
        (rooms.retire_room, room.id),
        (floors.retire_floor, room.floor_id),  # type: ignore[attr-defined]
        (buildings.retire_building, building_id),
        (sites.retire_site, site.id),
    ]:
        with pytest.raises(Conflict, match="H000777（某某茶行）"):
            await retire([site.id], target, actor=ACTOR)
    await rooms.retire_room([site.id], (await Room.get(name="102")).id, actor=ACTOR)
    account.status = "closed"
    await account.save()
    await buildings.retire_building([site.id], building_id, actor=ACTOR)
    assert await Room.filter(retired_at__isnull=True).count() == 0
    assert await Floor.filter(retired_at__isnull=True).count() == 0
    assert [log.action for log in await OperationLog.all().order_by("id")][-2:] == [
        "room.retire", "building.retire",
    ]  # fmt: skip


async def test_the_room_list_filters_searches_and_counts_meters(db: None) -> None:
    org = await create_organisation()
    site = await create_site(org)
    await buildings.create_building(
        [site.id], site.id, name="F座", layout=Layout(floors=2, rooms_per_floor=3), actor=ACTOR
    )
    room = await Room.get(name="203")
    account = await create_account(room=room, number="H000888", tenant_name="星光咖啡")
    await create_meter(account)
    await create_meter(account)
    every = await rooms.list_rooms(rooms.RoomFilter([site.id]), Paging())
    assert [r.name for r in every.items] == ["101", "102", "103", "201", "202", "203"]
    row = every.items[-1]
    assert (row.account_number, row.tenant_name) == ("H000888", "星光咖啡")
    assert await meter_counts([r.id for r in every.items]) == {room.id: 2}  # metering counts
    for q in ("星光", "H000888", "203"):
        found = await rooms.list_rooms(rooms.RoomFilter([site.id], q=q), Paging())
        assert [r.name for r in found.items] == ["203"], q
    await rooms.edit_room(
        [site.id], room.id, name="203", area_m2="88", use=RoomUse.APARTMENT, actor=ACTOR
    )
    shops = await rooms.list_rooms(rooms.RoomFilter([site.id], use=RoomUse.APARTMENT), Paging())
    assert [r.name for r in shops.items] == ["203"]
    await rooms.retire_room([site.id], (await Room.get(name="101")).id, actor=ACTOR)
    retired = await rooms.list_rooms(rooms.RoomFilter([site.id], status=Status.RETIRED), Paging())
    assert [r.name for r in retired.items] == ["101"]
    second = await rooms.list_rooms(rooms.RoomFilter([site.id]), Paging(page=2, per_page=2))
    assert (second.total, [r.name for r in second.items]) == (5, ["201", "202"])
    detail = await rooms.room_detail([site.id], room.id)
    assert detail.account is not None and detail.account.number == "H000888"
    assert detail.room.use is RoomUse.APARTMENT
