"""Room monitoring (房间监控, /admin/monitor) and a room's live panel (/admin/rooms/<id>/live).

The monitor: the scope's site → building → floor tree on the left, the rooms as tiles
coloured by state (normal / alarm / tripped / offline / vacant, `server.staff.vocabulary`)
with tenant, available balance and today's kWh; filters by state, a search (room, tenant,
account number, phone, meter address), one floor or the whole park page by page; the tiles
refresh every 30 s (htmx, `/admin/monitor/tiles`); `?format=xlsx` exports every room the
filter selects. The live panel is the room page's (`#room-panels`): tenant and accounts with
available balance and days left, each meter's live values, today's and this month's use and
money, 30 days as a chart and a table, recent records; it refreshes every minute.

Read-only pages for every role: the queries are `server.staff.service.monitor`'s, scoped to
the staff member's sites (another organisation's room answers 404, its rooms are absent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    int_arg,
    render,
    scope_ids,
    staff_of,
    staff_required,
    templates,
    xlsx,
)
from server.core.excel import Sheet
from server.core.money import yuan
from server.core.paging import MAX_PER_PAGE, Paging
from server.ledger.posting import TxKind
from server.metering.service.daily_usage import zone
from server.metering.vocabulary import MeterKind, RelayState
from server.staff.service.monitor import (
    Monitor,
    MonitorFilter,
    RoomLive,
    Tile,
    monitor,
    room_live,
    room_tiles,
)
from server.staff.vocabulary import ROOM_STATE_LABELS, ROOM_STATES, RoomState

bp = admin_blueprint("admin_monitor")
TILES_PER_PAGE = 120
STATE_TONES = {
    RoomState.NORMAL: "success",
    RoomState.ALARM: "warning",
    RoomState.TRIPPED: "danger",
    RoomState.OFFLINE: "secondary",
    RoomState.VACANT: "light",
}
KIND_LABELS = {MeterKind.ELECTRICITY: "电表", MeterKind.WATER: "水表"}
RELAY_LABELS = {RelayState.CLOSED: "合闸", RelayState.OPEN: "分闸", RelayState.UNKNOWN: "未知"}
TX_LABELS = {
    TxKind.RECHARGE: "充值",
    TxKind.CHARGE: "扣费",
    TxKind.REFUND_HOLD: "退款",
    TxKind.REFUND_SETTLE: "退款到账",
    TxKind.REFUND_VOID: "退款撤销",
    TxKind.REVERSAL: "冲正",
    TxKind.ADJUSTMENT: "调账",
}


def _local(at: datetime) -> str:
    """A stored (UTC) time as the park's local time (settings.timezone), to the minute."""
    return at.astimezone(zone()).strftime("%Y-%m-%d %H:%M")


templates.filters["local"] = _local
COMMON = {"state_labels": ROOM_STATE_LABELS, "states": ROOM_STATES, "tones": STATE_TONES}


async def _filter(request: Request) -> MonitorFilter:
    raw_state = arg(request, "state")
    return MonitorFilter(
        await staff_of(request).scope.site_ids_of(int_arg(request, "site")),
        building_id=int_arg(request, "building"), floor_id=int_arg(request, "floor"),
        state=RoomState(raw_state) if raw_state in RoomState._value2member_map_ else None,
        q=arg(request, "q"),
    )  # fmt: skip


def _paging(request: Request) -> Paging:
    """A floor shows whole (up to the page's maximum); the park pages by `TILES_PER_PAGE`."""
    page = Paging.of(request.args)
    wanted = int_arg(request, "per_page")
    per_page = min(wanted or TILES_PER_PAGE, MAX_PER_PAGE)
    return Paging(page.page, MAX_PER_PAGE if int_arg(request, "floor") else per_page)


def _context(request: Request, board: Monitor, f: MonitorFilter) -> dict[str, Any]:
    return {
        "board": board, "filter": f, "request_args": request.args, "q": f.q,
        "site_id": int_arg(request, "site"), "query": request.query_string, **COMMON,
    }  # fmt: skip


@bp.get(f"{PATH}/monitor")
@openapi.exclude()
@staff_required
async def monitor_page(request: Request) -> HTTPResponse:
    f = await _filter(request)
    if arg(request, "format") == "xlsx":
        return xlsx("房间监控.xlsx", _sheet(await room_tiles(f, Paging.everything())))
    board = await monitor(f, _paging(request))
    sites = await staff_of(request).scope.sites()
    return render(request, "monitor/monitor.html", sites=sites, **_context(request, board, f))


@bp.get(f"{PATH}/monitor/tiles")
@openapi.exclude()
@staff_required
async def monitor_tiles(request: Request) -> HTTPResponse:
    """The tiles and counts alone: what the page swaps in every 30 s."""
    f = await _filter(request)
    board = await monitor(f, _paging(request))
    return render(request, "monitor/_tiles.html", **_context(request, board, f))


HEADERS = ["站点", "楼栋", "楼层", "房间", "状态", "账户", "租户", "电话", "可用余额(元)",
           "今日用电(kWh)", "表计", "离线表计", "分闸表计", "告警级别"]  # fmt: skip


def _sheet(tiles: list[Tile]) -> Sheet:
    rows = [
        [
            t.site_name, t.building_name, t.floor_name, t.room_name, ROOM_STATE_LABELS[t.state],
            t.account_number, t.tenant_name, t.phone,
            None if t.available_fen is None else yuan(t.available_fen), t.today_kwh,
            t.meters, t.offline, t.tripped, t.alarm_level,
        ]
        for t in tiles
    ]  # fmt: skip
    widths = [16, 10, 8, 10, 8, 14, 28, 14, 12, 12, 6, 8, 8, 8]
    return Sheet("房间监控", HEADERS, rows, widths=widths)


@bp.get(f"{PATH}/rooms/<room_id:int>/live")
@openapi.exclude()
@staff_required
async def room_live_panel(request: Request, room_id: int) -> HTTPResponse:
    live = await room_live(await scope_ids(request), room_id)
    return render(
        request, "monitor/_live.html", live=live, chart=_chart(live), kinds=KIND_LABELS,
        relays=RELAY_LABELS, tx_labels=TX_LABELS,
    )  # fmt: skip


def _chart(live: RoomLive) -> dict[str, list[str]]:
    """The 30 days as the chart reads them (admin.js, data-chart='usage')."""
    return {
        "days": [d.day.strftime("%m-%d") for d in live.days],
        "electricity": [str(d.electricity_kwh) for d in live.days],
        "water": [str(d.water_m3) for d in live.days],
        "amount": [str(yuan(d.amount_fen)) for d in live.days],
    }
