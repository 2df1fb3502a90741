"""Room monitoring (/admin/monitor) and a room's live panel (/admin/rooms/<id>/live): the
state of each room from the core's tables, the filters and the search, the Excel export,
the scope (another organisation's rooms are absent, its room's panel answers 404), the
continuous chart across a 换表, and a fixed number of queries whatever the number of rooms."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openpyxl import load_workbook

from server.core.paging import Paging
from server.ledger import service as ledger
from server.ledger.posting import Channel
from server.metering.models import (
    AccountAlarmState,
    DailyUsage,
    LiveValues,
    Meter,
    MeterStatus,
)
from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState
from server.places.models import Room, Site
from server.staff.models import StaffRole
from server.staff.service import monitor as service
from server.staff.service.monitor import MonitorFilter, local_today
from server.staff.vocabulary import RoomState, classify
from tests.admin.conftest import AdminApp, create_staff, signed_in
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_meter,
    create_organisation,
    create_room,
    create_site,
)


# -- the rule, on its own ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("facts", "state"),
    [
        ({"occupied": True, "meters": 2, "offline": 0, "tripped": 0, "alarm_level": 0}, "normal"),
        ({"occupied": True, "meters": 1, "offline": 0, "tripped": 0, "alarm_level": 2}, "alarm"),
        ({"occupied": True, "meters": 2, "offline": 1, "tripped": 1, "alarm_level": 2}, "tripped"),
        ({"occupied": True, "meters": 2, "offline": 1, "tripped": 0, "alarm_level": 1}, "offline"),
        ({"occupied": False, "meters": 1, "offline": 0, "tripped": 1, "alarm_level": 0}, "vacant"),
        ({"occupied": False, "meters": 1, "offline": 1, "tripped": 0, "alarm_level": 0}, "offline"),
        ({"occupied": False, "meters": 0, "offline": 0, "tripped": 0, "alarm_level": 0}, "vacant"),
        ({"occupied": True, "meters": 0, "offline": 0, "tripped": 0, "alarm_level": 0}, "normal"),
    ],
)
def test_the_state_rule_puts_a_tripped_tenant_first(facts: dict, state: str) -> None:
    assert classify(**facts) is RoomState(state)


# -- a small park ---------------------------------------------------------------------------
@dataclass
class Park:
    site: Site
    rooms: dict[str, Room]  # by state: normal, alarm, tripped, offline, vacant, empty
    other_site: Site
    other_room: Room


async def a_park() -> Park:
    """Org A: one building, two floors; a room in each state (and an empty one, vacant too).
    Org B: one room whose tenant is 别家租户."""
    now = datetime.now(UTC)
    today = local_today()
    site = await create_site(await create_organisation(), name="监控园区")
    building = await create_building(site, name="A栋")
    first = await create_floor(building, name="1F", sort_order=1)
    second = await create_floor(building, name="2F", sort_order=2)
    rooms: dict[str, Room] = {}
    specs = {  # state: floor, tenant, meter facts, alarm level
        "normal": (first, "正常便利店", {}, 0),
        "alarm": (first, "告警茶饮店", {}, 2),
        "tripped": (first, "断电快餐店", {"relay_state": RelayState.OPEN}, 0),
        "offline": (second, "离线书店", {"online": False}, 1),
    }
    for state, (floor, tenant, facts, level) in specs.items():
        room = await create_room(floor, name=f"{state[:3].upper()}01")
        account = await create_account(
            room, site, tenant_name=tenant, number=f"M-{state}", phone=f"1390000{len(rooms):04d}"
        )
        meter = await create_meter(
            account, address=f"7700000000{len(rooms):02d}",
            **{"online": True, "relay_state": RelayState.CLOSED, **facts},
        )  # fmt: skip
        await AccountAlarmState.create(account=account, state={"level": level}, daily_use_fen="250")
        await ledger.recharge(account.id, Channel.CASH, 10_000, key=f"m:{state}", actor="staff:1")
        await DailyUsage.create(
            meter=meter, account=account, day=today, quantity_e4=125_000, amount_fen=900,
            updated_at=now,
        )  # fmt: skip
        rooms[state] = room
    rooms["vacant"] = await create_room(second, name="VAC01")
    await Meter.create(
        site=site, room=rooms["vacant"], kind=MeterKind.ELECTRICITY, protocol=MeterProtocol.DLT645,
        address="770000009999", online=True, relay_state=RelayState.OPEN,
    )  # fmt: skip
    rooms["empty"] = await create_room(second, name="EMP01")
    other_site = await create_site(await create_organisation(), name="别家园区")
    other = await create_account(site=other_site, tenant_name="别家租户", number="M-other")
    await create_meter(other, online=True, relay_state=RelayState.OPEN)
    return Park(site, rooms, other_site, await Room.get(id=other.room_id))  # type: ignore[attr-defined]


def tiles(page: httpx.Response) -> dict[int, str]:
    """Room id → state of the tiles on the page."""
    found = re.findall(r'data-room="(\d+)" data-state="(\w+)"', page.text)
    return {int(room): state for room, state in found}


def count(page: httpx.Response, state: str) -> int:
    found = re.search(rf'data-count="{state}">(\d+)<', page.text)
    assert found, state
    return int(found.group(1))


async def test_each_room_shows_its_state_and_the_filters_find_them(admin_app: AdminApp) -> None:
    park = await a_park()
    org = await park.site.organisation
    await create_staff("watcher", StaffRole.VIEWER, org, sites=[park.site])
    ids = {state: room.id for state, room in park.rooms.items()}
    async with signed_in(admin_app, "watcher") as browser:
        page = await browser.get("/admin/monitor")
        tripped = await browser.get("/admin/monitor?state=tripped")
        floor = await browser.get(f"/admin/monitor?floor={park.rooms['vacant'].floor_id}")  # type: ignore[attr-defined]
        found = {
            q: tiles(await browser.get("/admin/monitor", params={"q": q}))
            for q in ("告警茶饮", "m-offline", "13900000002", "770000000000", "vac", "别家租户")
        }
        partial = await browser.get("/admin/monitor/tiles?state=alarm")
        outside = await browser.get(f"/admin/monitor?site={park.other_site.id}")
        room_page = await browser.get(f"/admin/rooms/{ids['alarm']}")
    assert page.status_code == 200 and "房间监控" in page.text
    expected = {ids[s]: s for s in ("normal", "alarm", "tripped", "offline", "vacant")}
    assert tiles(page) == expected | {ids["empty"]: "vacant"}
    assert {s: count(page, s) for s in ("tripped", "alarm", "offline", "vacant", "normal")} == {
        "tripped": 1, "alarm": 1, "offline": 1, "vacant": 2, "normal": 1,
    }  # fmt: skip
    assert "告警茶饮店" in page.text and "¥100.00" in page.text and "12.5 kWh" in page.text
    assert "别家" not in page.text
    assert tiles(tripped) == {ids["tripped"]: "tripped"}
    assert set(tiles(floor)) == {ids["offline"], ids["vacant"], ids["empty"]}
    assert found == {
        "告警茶饮": {ids["alarm"]: "alarm"},
        "m-offline": {ids["offline"]: "offline"},
        "13900000002": {ids["tripped"]: "tripped"},
        "770000000000": {ids["normal"]: "normal"},
        "vac": {ids["vacant"]: "vacant"},
        "别家租户": {},
    }
    assert "<html" not in partial.text and tiles(partial) == {ids["alarm"]: "alarm"}
    assert 'hx-trigger="every 30s"' in partial.text
    assert outside.status_code == 404
    # The room page's card shows the available balance, and loads the live panel.
    assert "可用余额" in room_page.text and f"/admin/rooms/{ids['alarm']}/live" in room_page.text


async def test_the_export_holds_every_room_the_filter_selects(admin_app: AdminApp) -> None:
    park = await a_park()
    await create_staff("boss", StaffRole.ORG_ADMIN, await park.site.organisation)
    async with signed_in(admin_app, "boss") as browser:
        answer = await browser.get("/admin/monitor?format=xlsx&state=vacant")
        everything = await browser.get("/admin/monitor?format=xlsx")
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("站点", "楼栋", "楼层", "房间", "状态")
    assert sorted(r[3] for r in rows[1:]) == ["EMP01", "VAC01"]
    assert {r[4] for r in rows[1:]} == {"空置"}
    every = list(load_workbook(io.BytesIO(everything.content)).active.iter_rows(values_only=True))
    tripped = next(r for r in every if r[3] == "TRI01")
    assert tripped[4:9] == ("已断电", "M-tripped", "断电快餐店", "13900000002", 100)
    assert len(every) == 1 + 6


async def test_the_live_panel_sums_a_replaced_meter_and_stays_in_scope(
    admin_app: AdminApp,
) -> None:
    park = await a_park()
    room = park.rooms["normal"]
    meter = await Meter.get(room_id=room.id)
    now = datetime.now(UTC)
    today = local_today()
    # 换表 ten days ago: the old meter removed, its days kept; the new one reads today.
    old = await Meter.create(
        site_id=meter.site_id, account_id=meter.account_id, room_id=room.id,
        kind=MeterKind.ELECTRICITY, protocol=MeterProtocol.DLT645, address="660000000001",
        status=MeterStatus.REMOVED, removed_at=now - timedelta(days=10),
    )  # fmt: skip
    await DailyUsage.create(
        meter=old, account_id=meter.account_id, day=today - timedelta(days=12),
        quantity_e4=70_000, amount_fen=500, updated_at=now,
    )  # fmt: skip
    await LiveValues.create(
        meter=meter, read_at=now, total="1234.5600", relay_state=RelayState.CLOSED,
        instant_at=now, voltage="229.8", current="3.25", power="0.712", power_factor="0.96",
        updated_at=now,
    )  # fmt: skip
    await create_staff("boss", StaffRole.ORG_ADMIN, await park.site.organisation)
    async with signed_in(admin_app, "boss") as browser:
        panel = await browser.get(f"/admin/rooms/{room.id}/live")
        vacant = await browser.get(f"/admin/rooms/{park.rooms['vacant'].id}/live")
        foreign = await browser.get(f"/admin/rooms/{park.other_room.id}/live")
    assert panel.status_code == 200 and "<html" not in panel.text
    text = panel.text
    assert "正常便利店" in text and "¥100.00" in text and "40.0 天" in text  # ¥100 at ¥2.50/day
    assert "229.8" in text and "3.25" in text and "0.712" in text and "0.96" in text
    chart = json.loads(re.search(r'data-chart-data="usage">([^<]*)<', text).group(1))
    assert len(chart["days"]) == 30 and chart["electricity"][-1] == "12.5000"
    assert chart["electricity"][-13] == "7.0000"  # the removed meter's day, on the room's chart
    assert "660000000001" not in text  # … but it is no longer listed among the live meters
    assert "充值" in text  # the recent records: the recharge
    assert vacant.status_code == 200 and "空置" in vacant.text
    assert foreign.status_code == 404 and "别家租户" not in foreign.text


async def _queries(caplog: pytest.LogCaptureFixture, work: Awaitable[object]) -> int:
    caplog.set_level(logging.DEBUG, logger="tortoise.db_client")
    caplog.clear()
    await work
    return len([r for r in caplog.records if r.name == "tortoise.db_client"])


async def test_a_page_of_tiles_costs_the_same_few_queries_whatever_the_rooms(
    db: None, caplog: pytest.LogCaptureFixture
) -> None:
    small, large = await create_site(), await create_site()
    for site, n in ((small, 2), (large, 12)):
        floor = await create_floor(await create_building(site))
        for i in range(n):
            account = await create_account(await create_room(floor), site)
            await create_meter(account, online=i % 3 != 0)
            await AccountAlarmState.create(account=account, state={"level": i % 2})
    few = await _queries(caplog, service.monitor(MonitorFilter([small.id]), Paging()))
    many = await _queries(caplog, service.monitor(MonitorFilter([large.id], q="H"), Paging()))
    assert few == many == 6  # tree, counts, page, wallets, meters, today's use
    room = await Room.filter(floor__building__site_id=large.id).first()
    assert room is not None
    live = await _queries(caplog, service.room_live([large.id], room.id))
    assert live == 6  # room and accounts, wallets, meters, records, room meters, 30 days
