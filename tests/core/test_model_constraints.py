"""The data model's constraints hold in the database itself, not only in Python."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from server.accounts.models import Account
from server.metering.models import Meter, MeterStatus
from server.places.models import Building, Floor, Room
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_meter,
    create_room,
    create_site,
)

pytestmark = pytest.mark.usefixtures("db")

DB_REFUSALS = (IntegrityError, OperationalError)


async def test_account_number_is_unique_within_a_site() -> None:
    site = await create_site()
    await create_account(site=site, number="A-101")
    with pytest.raises(IntegrityError):
        async with in_transaction():
            await create_account(site=site, number="A-101")


async def test_the_same_account_number_may_exist_in_another_site() -> None:
    await create_account(site=await create_site(), number="A-101")
    other = await create_account(site=await create_site(), number="A-101")
    assert other.number == "A-101"


async def test_a_meter_cannot_be_active_in_two_accounts() -> None:
    first = await create_account()
    second = await create_account(site=await first.site)
    await create_meter(first, address="000000000161")
    with pytest.raises(IntegrityError):
        async with in_transaction():
            await create_meter(second, address="000000000161")


async def test_a_removed_meter_frees_its_address_for_the_replacement_row() -> None:
    first = await create_account()
    second = await create_account(site=await first.site)
    old = await create_meter(first, address="000000000161")
    old.status = MeterStatus.REMOVED
    await old.save()
    new = await create_meter(second, address="000000000161")
    assert await Meter.filter(address="000000000161").count() == 2
    assert new.status == MeterStatus.ACTIVE


async def test_the_same_address_on_two_modbus_units_is_two_devices() -> None:
    account = await create_account()
    await create_meter(account, address="BOX-1", unit=1, protocol="modbus_tcp")
    await create_meter(account, address="BOX-1", unit=2, protocol="modbus_tcp")
    assert await Meter.filter(address="BOX-1").count() == 2


async def test_ct_ratio_must_be_positive() -> None:
    with pytest.raises(DB_REFUSALS):
        async with in_transaction():
            await create_meter(ct_ratio=0)


async def test_room_area_cannot_be_negative() -> None:
    floor = await create_floor()
    with pytest.raises(DB_REFUSALS):
        async with in_transaction():
            await create_room(floor, area_m2=Decimal("-1"))


async def test_deleting_an_empty_building_removes_its_floors_and_rooms() -> None:
    building = await create_building()
    floor = await create_floor(building)
    await create_room(floor)
    await create_room(floor)
    await building.delete()
    assert await Floor.filter(building_id=building.id).count() == 0
    assert await Room.filter(floor_id=floor.id).count() == 0


async def test_a_room_with_an_account_cannot_be_deleted() -> None:
    account = await create_account()
    room = await account.room
    with pytest.raises(DB_REFUSALS):
        async with in_transaction():
            await Room.filter(id=room.id).delete()
    assert await Room.exists(id=room.id)


async def test_a_building_whose_rooms_hold_accounts_cannot_be_deleted() -> None:
    account = await create_account()
    room = await Room.get(id=account.room_id).prefetch_related("floor")
    with pytest.raises(DB_REFUSALS):
        async with in_transaction():
            await Building.filter(id=room.floor.building_id).delete()
    assert await Account.exists(id=account.id)


async def test_a_reading_is_billed_once_by_the_database_itself() -> None:
    """UNIQUE (meter, reading_at) on usage_charge: the reading's idempotency key holds even if
    the service's own duplicate check were skipped (SQLite lost it once, see migration 0009).
    """
    from datetime import UTC, datetime

    from server.billing.models import UsageChargeRow

    meter = await create_meter()
    at = datetime(2026, 7, 1, 10, 15, tzinfo=UTC)
    row = {
        "meter_id": meter.id, "account_id": meter.account_id, "prev_reading_at": at,
        "reading_at": at, "quantity": "1", "exact_yuan": "1", "amount_fen": 100, "lines": [],
    }  # fmt: skip
    await UsageChargeRow.create(**row)
    with pytest.raises(DB_REFUSALS):
        await UsageChargeRow.create(**row)
