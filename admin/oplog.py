"""The operation-log page (/admin/oplog): who did what, to what, where and when, newest
first; searched by actor, action, target, site and date range; exported to Excel. Only roles
with the AUDIT action read it, and each reads only its own scope's rows (the service)."""

from __future__ import annotations

from datetime import date

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from admin.web import (
    PATH,
    NotAllowed,
    admin_blueprint,
    arg,
    int_arg,
    paging,
    render,
    staff_of,
    staff_required,
    xlsx,
)
from server.core.excel import Sheet
from server.core.paging import Paging
from server.staff.service.oplog import LogFilter, search_log
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_oplog")


def _day(request: Request, name: str) -> date | None:
    try:
        return date.fromisoformat(arg(request, name))
    except ValueError:
        return None


@bp.get(f"{PATH}/oplog")
@openapi.exclude()
@staff_required
async def oplog(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    if not staff.may(Action.AUDIT):
        raise NotAllowed(Action.AUDIT)
    wanted = LogFilter(
        actor=arg(request, "actor")[:64], action=arg(request, "action")[:64],
        target=arg(request, "target")[:100], site_id=int_arg(request, "site"),
        since=_day(request, "since"), until=_day(request, "until"),
    )  # fmt: skip
    export = arg(request, "format") == "xlsx"
    tz = request.app.ctx.settings.tz
    found = await search_log(staff, wanted, Paging.everything() if export else paging(request), tz)
    if export:
        rows = [
            (r.at, r.actor_name or r.actor, r.action, r.reason, r.target, r.site, r.ip)
            for r in found.items
        ]
        headers = ["时间", "操作人", "操作", "说明", "对象", "园区", "IP"]
        return xlsx("操作日志.xlsx", Sheet("操作日志", headers, rows, widths=(20, 24, 20, 50)))
    return render(
        request, "oplog.html", page=found, args=request.args, wanted=wanted,
        sites=await staff.scope.sites(),
    )  # fmt: skip
