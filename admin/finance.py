"""Finance pages (财务管理, issue #15) over `server.finance.service` and the payments services:

- `/admin/finance`: the order overview (订单总览) — every posting that moved a wallet, filtered
  by site, channel, type, status, account and local dates, with the filter's totals, paged;
  `?format=xlsx` streams every row of the filter to Excel.

Every page reads within the staff member's scope (`?site=` outside it is a 404); money moves
only through the services, which write the operation log.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    int_arg,
    paging,
    render,
    staff_of,
    staff_required,
    xlsx_stream,
)
from server.core.excel import StreamSheet
from server.finance.service import orders

bp = admin_blueprint("admin_finance")
FINANCE = f"{PATH}/finance"


def _day(request: Request, name: str) -> date | None:
    try:
        return date.fromisoformat(arg(request, name))
    except ValueError:
        return None


def _today(request: Request) -> date:
    return datetime.now(request.app.ctx.settings.tz).date()


@bp.get(FINANCE)
@openapi.exclude()
@staff_required
async def order_overview(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await staff.scope.site_ids_of(int_arg(request, "site"))
    today = _today(request)
    given = "since" in request.args or "until" in request.args
    wanted = orders.OrderFilter.of(
        site_id=int_arg(request, "site"), channel=arg(request, "channel"),
        type=arg(request, "type"), status=arg(request, "status"),
        account=arg(request, "account"),
        since=_day(request, "since") if given else today - timedelta(days=29),
        until=_day(request, "until") if given else today,
    )  # fmt: skip
    tz = request.app.ctx.settings.tz
    if arg(request, "format") == "xlsx":
        sheet = StreamSheet(
            "订单总览", orders.EXPORT_COLUMNS, orders.export_chunks(site_ids, wanted, tz)
        )
        return await xlsx_stream(request, "订单总览.xlsx", sheet)
    page = await orders.search(site_ids, wanted, paging(request), tz)
    return render(
        request, "finance/orders.html", page=page, args=request.args, wanted=wanted,
        totals=await orders.totals(site_ids, wanted, tz), sites=await staff.scope.sites(),
        channels=orders.CHANNEL_LABELS, types=orders.TYPE_LABELS,
        statuses=orders.STATUS_LABELS, tab="orders",
    )  # fmt: skip
