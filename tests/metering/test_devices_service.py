"""Gateways and meters as staff set them up: scope, validation in words for staff, conflicts,
the start reading as the first reading, removal that keeps history, and the operation log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.audit.models import OperationLog
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.paging import Paging
from server.metering.models import (
    CommandOp,
    CommandStatus,
    Meter,
    MeterCommand,
    MeterStatus,
    Reading,
    ReadingSource,
)
from server.metering.reading import Reading as Registers
from server.metering.service.devices.gateways import (
    GatewayInput,
    create_gateway,
    edit_gateway,
    gateway_detail,
    list_gateways,
    retire_gateway,
)
from server.metering.service.devices.meter_views import MeterFilter, list_meters, meter_detail
from server.metering.service.devices.meters import (
    MeterInput,
    edit_meter,
    register_meter,
    remove_meter,
)
from server.metering.service.readings import IncomingReading, ingest
from server.metering.service.replacement import replace_meter
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_room,
    create_site,
)

ACTOR = "staff:1"


def tcp(code: str = "DTU-1", **kw: str) -> GatewayInput:
    return GatewayInput.of({"code": code, "kind": "tcp", "host": "10.0.0.5", "port": "8899", **kw})


def dlt645(gateway_id: int, address: str = "000000000101", **kw: str) -> MeterInput:
    form = {"kind": "electricity", "protocol": "dlt645", "address": address,
            "gateway_id": str(gateway_id), **kw}  # fmt: skip
    return MeterInput.of(form)


async def a_site_with_bus():  # type: ignore[no-untyped-def]
    site = await create_site()
    gw = await create_gateway([site.id], site.id, tcp(f"DTU-{site.id}"), actor=ACTOR)
    return site, gw


async def test_a_gateway_is_created_edited_and_retired_with_a_log(db: None) -> None:
    site = await create_site()
    gw = await create_gateway([site.id], site.id, tcp(name="1号楼配电房"), actor=ACTOR)
    row = await gateway_detail([site.id], gw)
    assert (row.code, row.address, row.meters) == ("DTU-1", "10.0.0.5:8899", 0)
    await edit_gateway([site.id], gw, tcp(port="9000", name="1号楼配电房"), actor=ACTOR)
    assert (await gateway_detail([site.id], gw)).port == 9000
    await retire_gateway([site.id], gw, actor=ACTOR)
    assert (await gateway_detail([site.id], gw)).retired_at is not None
    assert (await list_gateways([site.id], Paging())).total == 0  # retired: asked for only
    assert (await list_gateways([site.id], Paging(), retired=True)).total == 1
    log = await OperationLog.filter(target_type="gateway").order_by("id")
    assert [r.action for r in log] == ["gateway.create", "gateway.edit", "gateway.retire"]
    assert log[1].detail == {"port": ["8899", "9000"]} and log[1].site_id == site.id
    assert log[1].reason == "修改网关 DTU-1：端口"


async def test_gateway_validation_and_conflicts(db: None) -> None:
    site, other = await create_site(), await create_site()
    with pytest.raises(ValidationFailed, match="端口"):
        tcp(port="70000")
    with pytest.raises(ValidationFailed, match="IP"):
        tcp(host="")
    with pytest.raises(ValidationFailed, match="MQTT"):
        GatewayInput.of({"code": "gw/1", "kind": "mqtt"})
    mqtt = GatewayInput.of({"code": "GW-A", "kind": "mqtt", "host": "ignored", "port": "1"})
    assert (mqtt.host, mqtt.port) == ("", 0)
    await create_gateway([site.id], site.id, tcp(), actor=ACTOR)
    with pytest.raises(Conflict, match="DTU-1"):
        await create_gateway([site.id], site.id, tcp(), actor=ACTOR)
    with pytest.raises(NotFound):  # a site outside the scope does not exist
        await create_gateway([site.id], other.id, tcp("DTU-2"), actor=ACTOR)


async def test_a_gateway_with_meters_keeps_its_kind_and_is_not_retired(db: None) -> None:
    site, gw = await a_site_with_bus()
    await register_meter([site.id], dlt645(gw), actor=ACTOR)
    with pytest.raises(Conflict, match="类型"):
        await edit_gateway(
            [site.id], gw, GatewayInput.of({"code": "X", "kind": "mqtt"}), actor=ACTOR
        )
    with pytest.raises(Conflict, match="1 块在用仪表"):
        await retire_gateway([site.id], gw, actor=ACTOR)
    assert (await gateway_detail([site.id], gw)).meters == 1


async def test_a_meter_in_an_occupied_room_lands_on_its_open_account(db: None) -> None:
    account = await create_account()
    site_id = account.site_id
    gw = await create_gateway([site_id], site_id, tcp(), actor=ACTOR)
    vacant = await create_room(await create_floor(await create_building(await account.site)))
    occupied = await register_meter(
        [site_id],
        dlt645(gw, room_id=str(account.room_id), ct_ratio="20"),
        actor=ACTOR,  # type: ignore[attr-defined]
    )
    empty = await register_meter(
        [site_id], dlt645(gw, "000000000102", room_id=str(vacant.id)), actor=ACTOR
    )
    a, b = await Meter.get(id=occupied), await Meter.get(id=empty)
    assert (a.account_id, a.room_id, a.multiplier) == (account.id, account.room_id, 20)  # type: ignore[attr-defined]
    assert (b.account_id, b.room_id) == (None, vacant.id)  # type: ignore[attr-defined]
    rows = await list_meters([site_id], Paging(), MeterFilter(q=vacant.name))
    assert [r.id for r in rows.items] == [empty] and vacant.name in rows.items[0].room
    by_tenant = await list_meters([site_id], Paging(), MeterFilter(q=account.number))
    assert [r.id for r in by_tenant.items] == [occupied]


async def test_addresses_are_checked_per_protocol_and_once_per_site(db: None) -> None:
    site, gw = await a_site_with_bus()
    with pytest.raises(ValidationFailed, match="12 位数字"):
        dlt645(gw, "12345")
    with pytest.raises(ValidationFailed, match="1 到 247"):
        MeterInput.of({"kind": "electricity", "protocol": "modbus_tcp", "address": "SN1",
                       "unit": "300", "gateway_id": str(gw)})  # fmt: skip
    with pytest.raises(ValidationFailed, match="网关"):  # a DL/T 645 meter on a Modbus box
        modbus = GatewayInput.of({"code": "MB-1", "kind": "modbus_tcp", "host": "h", "port": "502"})
        box = await create_gateway([site.id], site.id, modbus, actor=ACTOR)
        await register_meter([site.id], dlt645(box), actor=ACTOR)
    first = await register_meter([site.id], dlt645(gw), actor=ACTOR)
    with pytest.raises(Conflict, match=f"#{first}"):
        await register_meter([site.id], dlt645(gw), actor=ACTOR)
    await remove_meter([site.id], first, actor=ACTOR)
    await register_meter([site.id], dlt645(gw), actor=ACTOR)  # the address is free again
    unit = {"kind": "electricity", "protocol": "modbus_tcp", "unit": "7", "gateway_id": str(box)}
    await register_meter([site.id], MeterInput.of({**unit, "address": "SN1"}), actor=ACTOR)
    with pytest.raises(Conflict, match="从站地址 7"):
        await register_meter([site.id], MeterInput.of({**unit, "address": "SN2"}), actor=ACTOR)


async def test_the_start_reading_is_the_baseline_the_first_poll_bills_from(db: None) -> None:
    account = await create_account()
    site_id = account.site_id
    gw = await create_gateway([site_id], site_id, tcp(), actor=ACTOR)
    meter_id = await register_meter(
        [site_id],
        dlt645(gw, room_id=str(account.room_id), start_reading="1234.5"),
        actor=ACTOR,  # type: ignore[attr-defined]
    )
    first = await Reading.get(meter_id=meter_id)
    assert (first.total, first.source, first.outcome) == (
        Decimal("1234.5"),
        ReadingSource.MANUAL,
        "baseline",
    )
    later = Registers(first.taken_at + timedelta(hours=1), Decimal("1236.5"), {})
    report = await ingest([IncomingReading(meter_id, later)], now=datetime.now(UTC))
    assert report.bills[0].prev.total == Decimal("1234.5")  # 2 kWh to bill, from the start
    detail = await meter_detail([site_id], meter_id)
    assert detail.last_reading is not None and detail.last_reading.total == Decimal("1236.5")
    with pytest.raises(ValidationFailed, match="起始读数"):
        dlt645(gw, start_reading="-1")


async def test_edit_and_remove_keep_history_and_fail_queued_commands(db: None) -> None:
    site, gw = await a_site_with_bus()
    meter_id = await register_meter([site.id], dlt645(gw, start_reading="10"), actor=ACTOR)
    await edit_meter([site.id], meter_id, dlt645(gw, "000000000199", model="DDSY1352"), actor=ACTOR)
    meter = await Meter.get(id=meter_id)
    assert (meter.address, meter.model) == ("000000000199", "DDSY1352")
    with pytest.raises(Conflict, match="类型"):
        water = {"kind": "water", "protocol": "cjt188", "address": "12345678901234",
                 "gateway_id": str(gw)}  # fmt: skip
        await edit_meter([site.id], meter_id, MeterInput.of(water), actor=ACTOR)
    now = datetime.now(UTC)
    queued = await MeterCommand.create(
        meter_id=meter_id, op=CommandOp.TRIP, actor=ACTOR, next_attempt_at=now,
        expires_at=now + timedelta(hours=1),
    )  # fmt: skip
    await remove_meter([site.id], meter_id, actor=ACTOR)
    meter = await Meter.get(id=meter_id)
    assert meter.status == MeterStatus.REMOVED and meter.removed_at is not None
    assert (await MeterCommand.get(id=queued.id)).status == CommandStatus.FAILED
    assert await Reading.filter(meter_id=meter_id).count() == 1  # history stays
    detail = await meter_detail([site.id], meter_id)
    assert detail.commands[0].status == CommandStatus.FAILED
    with pytest.raises(Conflict, match="已拆除"):
        await remove_meter([site.id], meter_id, actor=ACTOR)
    actions = await OperationLog.filter(target_type="meter", target_id=str(meter_id)).values_list(
        "action", flat=True
    )
    assert {"meter.register", "meter.edit", "meter.remove", "command.failed"} <= set(actions)


async def test_objects_outside_the_scope_are_not_found(db: None) -> None:
    site, gw = await a_site_with_bus()
    other, their_gw = await a_site_with_bus()
    theirs = await register_meter([other.id], dlt645(their_gw), actor=ACTOR)
    mine = [site.id]
    for call in (
        gateway_detail(mine, their_gw),
        edit_gateway(mine, their_gw, tcp("Z"), actor=ACTOR),
        retire_gateway(mine, their_gw, actor=ACTOR),
        meter_detail(mine, theirs),
        edit_meter(mine, theirs, dlt645(gw), actor=ACTOR),
        remove_meter(mine, theirs, actor=ACTOR),
        register_meter(mine, dlt645(their_gw, "000000000555"), actor=ACTOR),
    ):
        with pytest.raises(NotFound):
            await call
    assert (await list_meters(mine, Paging(), MeterFilter())).total == 0
    assert (await list_gateways(mine, Paging())).total == 1


async def test_a_replaced_meter_hands_its_room_to_the_new_one(db: None) -> None:
    site = await create_site()
    room = await create_room(await create_floor(await create_building(site)))
    gw = await create_gateway([site.id], site.id, tcp(), actor=ACTOR)
    old = await register_meter([site.id], dlt645(gw, room_id=str(room.id)), actor=ACTOR)
    swap = await replace_meter(
        old, new_meter={"address": "000000000808"}, old_final_reading=Decimal(5),
        new_first_reading=Decimal(0), actor=ACTOR, at=datetime.now(UTC),
    )  # fmt: skip
    assert (await Meter.get(id=swap.new_meter_id)).room_id == room.id  # type: ignore[attr-defined]


async def test_an_edit_keeps_the_account_unless_the_room_changes(db: None) -> None:
    account = await create_account()
    site_id = account.site_id
    gw = await create_gateway([site_id], site_id, tcp(), actor=ACTOR)
    meter_id = await register_meter([site_id], dlt645(gw), actor=ACTOR)
    await Meter.filter(id=meter_id).update(account_id=account.id)  # a meter from before rooms
    await edit_meter([site_id], meter_id, dlt645(gw, ct_ratio="5"), actor=ACTOR)
    assert (await Meter.get(id=meter_id)).account_id == account.id  # type: ignore[attr-defined]
    vacant = await create_room(await create_floor(await create_building(await account.site)))
    await edit_meter([site_id], meter_id, dlt645(gw, room_id=str(vacant.id)), actor=ACTOR)
    moved = await Meter.get(id=meter_id)
    assert (moved.room_id, moved.account_id) == (vacant.id, None)  # type: ignore[attr-defined]
