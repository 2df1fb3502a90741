"""Preview and commit of a park workbook on the database: what would be created, clashes
with the site, all or nothing, the operation log, and a 2,000-room park in one go."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.audit.service import verify_chain
from server.core.errors import Conflict
from server.imports.service.park import ImportRefused, commit, preview, sha256
from server.imports.service.workbook import METERS, ROOMS, TENANTS
from server.metering.models import GatewayKind, Meter, Reading
from server.places.models import Building, Floor, Room, RoomUse, Site
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_gateway,
    create_meter,
    create_room,
    create_site,
)
from tests.imports.books import book, meter, park, room, tenant

ACTOR = "staff:1"
pytestmark = pytest.mark.usefixtures("db")


async def a_site() -> Site:
    site = await create_site()
    await create_gateway(site, code="GW-T", kind=GatewayKind.TCP_TRANSPARENT)
    await create_gateway(site, code="GW-MQ", kind=GatewayKind.MQTT)
    return site


async def test_preview_counts_and_writes_nothing() -> None:
    site = await a_site()
    data = book(
        [room(), room(number="102"), room("B栋", "2", "201")],
        [tenant(), tenant("201", "B201", "B栋", kind="个人")],
        [meter(), meter("000000000201", number="201", building="B栋", start="")],
    )
    seen = await preview(site.id, data)
    assert seen.problems == []
    assert seen.counts == {
        "buildings": 2, "floors": 2, "rooms": 3, "accounts": 2, "meters": 2, "readings": 1,
    }  # fmt: skip
    assert await Room.all().count() == 0 and await Account.all().count() == 0


async def test_commit_creates_the_park_with_zero_balances_and_baselines() -> None:
    site = await a_site()
    data = book(
        [room(), room(number="102", area=""), room("A栋", "2", "201", use="")],
        [tenant(), tenant("102", "A102", phone="")],
        [meter(start="123.45"), meter("000000000102", number="102", ct=20, start=""),
         meter("000000000201", number="201"),
         meter("10000000000001", kind="水表", protocol="CJ/T 188", number="", building="")],
    )  # fmt: skip
    counts = await commit(site.id, data, file_name="园区.xlsx", actor=ACTOR)
    assert counts["rooms"] == 3 and counts["meters"] == 4 and counts["readings"] == 3
    building = await Building.get(site_id=site.id, name="A栋")
    floors = (
        await Floor.filter(building=building)
        .order_by("sort_order")
        .values_list("name", "sort_order")
    )
    assert floors == [("1", 1), ("2", 2)]
    r101 = await Room.get(floor__building=building, name="101")
    assert (r101.area_m2, r101.use) == (Decimal("56.30"), RoomUse.SHOP)
    assert (await Room.get(floor__building=building, name="201")).use is RoomUse.OFFICE
    a101 = await Account.get(site_id=site.id, number="A101")
    assert (a101.room_id, a101.balance_fen, a101.tenant_name, a101.phone) == (  # type: ignore[attr-defined]
        r101.id, 0, "深圳市某某商贸有限公司", "13800138000",
    )  # fmt: skip
    m101 = await Meter.get(address="000000000101")
    assert m101.account_id == a101.id and m101.gateway_id is not None  # type: ignore[attr-defined]
    (first,) = await Reading.filter(meter=m101)
    assert (first.total, first.outcome, first.billing) == (Decimal("123.45"), "baseline", "none")
    m102 = await Meter.get(address="000000000102")
    assert m102.ct_ratio == 20 and await Reading.filter(meter=m102).count() == 0
    water = await Meter.get(address="10000000000001")
    assert water.account_id is None and water.room_id is None  # type: ignore[attr-defined]
    vacant = await Meter.get(address="000000000201")
    r201 = await Room.get(floor__building=building, name="201")
    assert (vacant.account_id, vacant.room_id) == (None, r201.id)  # type: ignore[attr-defined]
    assert m101.room_id == r101.id  # type: ignore[attr-defined]
    log = await OperationLog.get(action="import.park")
    assert (log.actor, log.site_id, log.detail["file"], log.detail["sha256"]) == (
        ACTOR, site.id, "园区.xlsx", sha256(data),
    )  # fmt: skip
    assert log.detail["rooms"] == 3 and "园区.xlsx" in log.reason
    assert await verify_chain() == []


async def test_clashes_with_the_site_and_inside_the_file() -> None:
    site = await a_site()
    existing = await create_room(
        await create_floor(await create_building(site, name="A栋"), name="1"), name="101"
    )
    taken = await create_account(existing, site, number="A101")
    await create_meter(taken, address="000000000555")
    other = await create_site()
    await create_gateway(other, code="GW-ELSEWHERE", kind=GatewayKind.TCP_TRANSPARENT)
    data = book(
        [room(), room(number="102"), room(number="102"), room("B栋", "1", "102")],
        [
            tenant(),  # room 101 already has A101
            tenant("102", "A101"),  # number taken in the site
            tenant("102", "X1", building=""),  # 102 in two buildings
            tenant("103", "X2"),  # no such room
            tenant("102", "X3", building="B栋"),
            tenant("102", "X4", building="B栋"),  # second tenant for one room
        ],
        [
            meter("000000000555", number="101"),  # already in the site
            meter("000000000201", gateway="GW-NONE"),
            meter("000000000202", gateway="GW-ELSEWHERE"),  # another site's gateway
            meter("000000000203", gateway="GW-MQ"),  # MQTT gateway cannot carry DL/T 645
            meter("000000000204", number="102", building="B栋"),
            meter("000000000204", number="102", building="B栋"),  # twice in the file
            meter("000000000205", number="102", building="A栋"),  # a vacant room: fine
        ],
    )
    seen = await preview(site.id, data)
    assert [(p.sheet, p.row, p.column) for p in seen.problems] == [
        (ROOMS, 2, "房号"), (ROOMS, 4, "房号"),
        (TENANTS, 2, "房号"), (TENANTS, 2, "户号"), (TENANTS, 3, "户号"), (TENANTS, 4, "房号"),
        (TENANTS, 5, "房号"), (TENANTS, 7, "房号"),
        (METERS, 2, "表号/地址"), (METERS, 3, "网关编号"), (METERS, 4, "网关编号"),
        (METERS, 5, "网关编号"), (METERS, 7, "表号/地址"),
    ]  # fmt: skip
    text = {(p.sheet, p.row): p.message for p in seen.problems if p.column != "户号"}
    assert text[(ROOMS, 2)] == "本站点已有房间 A栋 101"
    assert text[(ROOMS, 4)].startswith("与第 3 行重复")
    assert text[(TENANTS, 2)] == "该房间已有租户（户号 A101），请先销户"
    assert "多个楼栋" in text[(TENANTS, 4)] and "找不到房间" in text[(TENANTS, 5)]
    assert "GW-ELSEWHERE" in text[(METERS, 4)] and "本站点没有" in text[(METERS, 4)]
    assert text[(TENANTS, 7)] == "第 6 行已为该房间开户（一个房间一个户）"
    with pytest.raises(ImportRefused) as refused:
        await commit(site.id, data, file_name="x.xlsx", actor=ACTOR)
    assert len(refused.value.problems) == len(seen.problems)
    assert await Room.filter(floor__building__site_id=site.id).count() == 1


async def test_a_tenant_or_meter_may_name_a_room_the_site_already_has() -> None:
    site = await a_site()
    existing = await create_room(
        await create_floor(await create_building(site, name="A栋"), name="1"), name="101"
    )
    data = book([], [tenant()], [meter()])
    counts = await commit(site.id, data, file_name="x.xlsx", actor=ACTOR)
    assert counts["accounts"] == 1 and counts["rooms"] == 0 and counts["buildings"] == 0
    account = await Account.get(number="A101")
    assert account.room_id == existing.id  # type: ignore[attr-defined]
    assert (await Meter.get(address="000000000101")).account_id == account.id  # type: ignore[attr-defined]


async def test_an_error_in_the_last_meter_row_writes_nothing() -> None:
    site = await a_site()
    data = park(30)
    good = await preview(site.id, data)
    assert good.problems == []
    from server.core.excel import read_xlsx
    from server.imports.service.workbook import METER_COLUMNS

    sheets = read_xlsx(data)
    sheets[METERS][-1][list(METER_COLUMNS).index("表号/地址")] = "12345"
    from server.core.excel import Sheet, write_xlsx

    bad = write_xlsx(*(Sheet(name, rows[0], rows[1:]) for name, rows in sheets.items()))
    with pytest.raises(ImportRefused) as refused:
        await commit(site.id, bad, file_name="x.xlsx", actor=ACTOR)
    assert [(p.sheet, p.row) for p in refused.value.problems] == [(METERS, 31)]
    for model in (Building, Floor, Room, Account, Meter, Reading):
        assert await model.all().count() == 0, model
    assert await OperationLog.filter(action="import.park").count() == 0


@pytest.mark.postgres  # the SQLite run imports the smaller parks above; one big park is enough
async def test_two_thousand_rooms_in_one_go() -> None:
    site = await a_site()
    data = park(2000)
    started = time.perf_counter()
    counts = await commit(site.id, data, file_name="2000.xlsx", actor=ACTOR)
    elapsed = time.perf_counter() - started
    print(f"\n2,000-room import committed in {elapsed:.2f} s")
    assert counts == {
        "buildings": 10, "floors": 200, "rooms": 2000, "accounts": 2000, "meters": 2000,
        "readings": 2000,
    }  # fmt: skip
    assert await Room.filter(floor__building__site_id=site.id).count() == 2000
    assert await Meter.filter(site_id=site.id, account_id__isnull=False).count() == 2000
    assert await Reading.all().count() == 2000
    again = await preview(site.id, data)
    assert (
        len(again.problems) == 2000 * 4
    )  # each room; its tenant (room taken, number taken); meter


async def test_one_mistake_one_message() -> None:
    """A room or tenant row with a problem of its own is still known to the rows naming it."""
    site = await a_site()
    data = book([room(area="很大")], [tenant(phone="123")], [meter()])
    seen = await preview(site.id, data)
    assert [(p.sheet, p.row, p.column) for p in seen.problems] == [
        (ROOMS, 2, "面积㎡"), (TENANTS, 2, "手机"),
    ]  # fmt: skip


async def test_retired_structure_is_read_from_the_site() -> None:
    site = await a_site()
    old = await create_building(site, name="A栋", retired_at=datetime(2026, 6, 1, tzinfo=UTC))
    await create_room(await create_floor(old, name="1"), name="101")
    seen = await preview(site.id, book([room(number="102")], [tenant()], []))
    assert [p.message for p in seen.problems] == [
        "楼栋 A栋 已停用，不能再添加房间", "房间 A栋 101 已停用",  # a room of a retired building
    ]  # fmt: skip
    await Site.filter(id=site.id).update(retired_at=datetime(2026, 6, 1, tzinfo=UTC))
    with pytest.raises(Conflict, match="站点已停用"):
        await preview(site.id, book([room("B栋", "1", "101")]))


async def test_a_retired_gateway_takes_no_meter() -> None:
    site = await a_site()
    await create_gateway(site, code="GW-OLD", kind=GatewayKind.TCP_TRANSPARENT,
                         retired_at=datetime(2026, 6, 1, tzinfo=UTC))  # fmt: skip
    seen = await preview(site.id, book(meters=[meter(gateway="GW-OLD", number="", building="")]))
    assert [(p.column, p.message) for p in seen.problems] == [
        ("网关编号", "本站点没有编号为 GW-OLD 的网关，请先登记网关")
    ]
