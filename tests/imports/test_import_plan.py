"""The import's checks against a site's state, as values (no database): retired structure
takes no new rooms, tenants or meters."""

from __future__ import annotations

from server.core.excel import read_xlsx
from server.imports.service.plan import Gateway, SiteState, plan
from server.imports.service.workbook import METERS, ROOMS, TENANTS, parse
from tests.imports.books import book, meter, room, tenant


def test_retired_buildings_floors_and_rooms_take_nothing_new() -> None:
    site = SiteState(
        1,
        buildings={"A栋": 1, "B栋": 2},
        floors={("A栋", "1"): 1, ("B栋", "3"): 2},
        rooms={("A栋", "101"): 1},
        gateways={"GW-T": Gateway(1, "tcp")},
        retired_buildings={"A栋"},
        retired_floors={("B栋", "3")},
        retired_rooms={("A栋", "101")},
    )
    data = book(
        [room("A栋", "2", "201"), room("B栋", "3", "301"), room("B栋", "4", "401")],
        [tenant("101", "A101")],
        [meter(number="101")],
    )
    checked = plan(parse(read_xlsx(data)), site)
    assert [(p.sheet, p.row, p.column, p.message) for p in checked.problems] == [
        (ROOMS, 2, "楼栋", "楼栋 A栋 已停用，不能再添加房间"),
        (ROOMS, 3, "楼层", "B栋 3 层已停用，不能再添加房间"),
        (TENANTS, 2, "房号", "房间 A栋 101 已停用"),
        (METERS, 2, "房号", "房间 A栋 101 已停用"),
    ]
    assert [r.room for r in checked.rooms] == ["401"] and checked.floors == [("B栋", "4")]
