"""The reports (报表, /admin/reports…) over server/reports/service: each one a filter form, a
chart where people would rather look (with its table), a print view (`?view=print`, print
CSS, no navigation) and an Excel export (`?format=xlsx`, Chinese headers, money as numbers
shown ¥0.00). Every figure is scoped to the staff member's sites (`?site=` narrows it; a site
outside the scope is 404). Reading reports needs no action: every role may look."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from admin.report_sheets import monthly_sheet, xlsx_money
from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    int_arg,
    render,
    staff_of,
    staff_required,
    templates,
)
from server.core.errors import ValidationFailed
from server.core.money import yuan
from server.reports.periods import Month
from server.reports.service.common import quantity
from server.reports.service.monthly import BAND_NAMES, BANDS, CHANNEL_NAMES, monthly_report

bp = admin_blueprint("admin_reports")
templates.filters["e4"] = lambda units: f"{quantity(units):,.2f}"  # 0.0001 units → kWh / m³

REPORTS = [
    (
        "/admin/reports/monthly",
        "月度综合报表",
        "每户每月：分时电量与电费、费用、分摊、缴费、退费、期初期末",
    ),
]


def _tz(request: Request) -> Any:
    return request.app.ctx.settings.tz


def _month(request: Request) -> Month:
    text = arg(request, "month")
    if not text:
        return Month.of(datetime.now(_tz(request)).date())
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise ValidationFailed("月份格式应为 YYYY-MM，如 2026-11") from exc


async def _sites(request: Request) -> tuple[list[Any], int | None, list[int]]:
    """The scope's sites, the chosen one (checked: outside the scope is 404) and the ids."""
    staff = staff_of(request)
    site_id = int_arg(request, "site")
    ids = await staff.scope.site_ids_of(site_id)
    return await staff.scope.sites(), site_id, ids


def _page(request: Request, name: str, **context: Any) -> HTTPResponse:
    if arg(request, "view") == "print":  # the report alone: no navigation bar
        context["staff"] = None
        return render(request, name, printing=True, args=request.args, **context)
    return render(request, name, printing=False, args=request.args, **context)


@bp.get(f"{PATH}/reports")
@openapi.exclude()
@staff_required
async def reports_index(request: Request) -> HTTPResponse:
    return render(request, "reports/index.html", reports=REPORTS)


@bp.get(f"{PATH}/reports/monthly")
@openapi.exclude()
@staff_required
async def monthly(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    month = _month(request)
    report = await monthly_report(ids, month, _tz(request))
    if arg(request, "format") == "xlsx":
        return xlsx_money(f"月度综合报表-{month}.xlsx", monthly_sheet(report))
    t = report.total
    chart = {
        "kind": "bar",
        "categories": [f"{BAND_NAMES[b]}时段" for b in BANDS] + ["未分时"],
        "series": [
            {"name": "电量 (kWh)", "data": [str(quantity(t.bands_e4.get(b, 0))) for b in BANDS]
             + ["0"]},
            {"name": "电费 (元)", "axis": 1,
             "data": [str(yuan(t.bands_fen.get(b, 0))) for b in BANDS]
             + [str(yuan(t.other_band_fen))]},
        ],
        "axes": ["kWh", "元"],
    }  # fmt: skip
    return _page(
        request, "reports/monthly.html", report=report, month=month, sites=sites,
        site_id=site_id, bands=BANDS, band_names=BAND_NAMES, channel_names=CHANNEL_NAMES,
        chart=chart,
    )  # fmt: skip
