"""The reports (报表, /admin/reports…) over server/reports/service: each one a filter form, a
chart where people would rather look (with its table), a print view (`?view=print`, print
CSS, no navigation) and an Excel export (`?format=xlsx`, Chinese headers, money as numbers
shown ¥0.00). Every figure is scoped to the staff member's sites (`?site=` narrows it; a site
outside the scope is 404). Reading reports needs no action: every role may look."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from admin.report_sheets import compare_sheet, energy_sheet, monthly_sheet, xlsx_sheets
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
from server.reports.periods import GRAIN_LABELS, Grain, Month
from server.reports.service.common import quantity
from server.reports.service.compare import COMPARE_BY, compare_report
from server.reports.service.energy import BY_LABELS, KIND_LABELS, By, energy_report
from server.reports.service.monthly import BAND_NAMES, BANDS, CHANNEL_NAMES, monthly_report

bp = admin_blueprint("admin_reports")
templates.filters["e4"] = lambda units: f"{quantity(units):,.2f}"  # 0.0001 units → kWh / m³

REPORTS = [
    (
        "/admin/reports/monthly",
        "月度综合报表",
        "每户每月：分时电量与电费、费用、分摊、缴费、退费、期初期末",
    ),
    (
        "/admin/reports/energy",
        "能耗统计",
        "用电/用水量与金额：按日、月、年，按仪表、账户、楼层、楼栋、园区",
    ),
    (
        "/admin/reports/compare",
        "同比环比",
        "按园区、楼栋、账户：本月与上月、去年同月比较，全年走势",
    ),
    (
        "/admin/reports/combined",
        "能耗财务综合表",
        "按月：期初期末余额、缴费、扣费、退费，用电用水量与金额",
    ),
    ("/admin/finance/income", "收入概况", "按渠道与按构成的收入（财务管理）"),
    ("/admin/reports/ranking", "充值排行", "所选月份缴费最多的账户，按渠道"),
    ("/admin/reports/arrears", "欠费账户", "可用余额为负的账户、欠费金额与天数"),
    ("/admin/reports/offline", "离线仪表", "离线超过 N 天的仪表，按网关"),
    ("/admin/reports/faults", "告警与故障记录", "余额告警、异常读数、指令失败，按日"),
    ("/admin/reports/commands", "指令成功率", "各网关的表计指令确认、失败、过期与成功率"),
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
        return await xlsx_sheets(request, f"月度综合报表-{month}.xlsx", monthly_sheet(report))
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


def _choice(request: Request, name: str, choices: Any, default: Any) -> Any:
    value = arg(request, name)
    if not value:
        return default
    try:
        return choices(value)
    except ValueError as exc:
        raise ValidationFailed(f"参数 {name} 的值无效") from exc


def _date(request: Request, name: str, default: date) -> date:
    value = arg(request, name)
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed("日期格式应为 YYYY-MM-DD") from exc


def _kind(request: Request) -> str:
    kind = arg(request, "kind") or "electricity"
    if kind not in KIND_LABELS:
        raise ValidationFailed("类型应为用电或用水")
    return kind


@bp.get(f"{PATH}/reports/energy")
@openapi.exclude()
@staff_required
async def energy(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    today = datetime.now(_tz(request)).date()
    grain = _choice(request, "grain", Grain, Grain.DAY)
    by = _choice(request, "by", By, By.BUILDING)
    kind = _kind(request)
    until = _date(request, "until", today)
    since = _date(request, "since", until - timedelta(days=29) if grain is Grain.DAY
                  else Month.of(until).first.replace(month=1))  # fmt: skip
    try:
        report = await energy_report(ids, kind=kind, grain=grain, by=by, since=since, until=until)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    if arg(request, "format") == "xlsx":
        return await xlsx_sheets(request, f"能耗统计-{since}-{until}.xlsx", energy_sheet(report))
    what, unit = KIND_LABELS[kind]
    chart = {
        "kind": "bar", "axes": [unit, "元"], "categories": report.periods,
        "series": [
            {"name": f"{what} ({unit})",
             "data": [str(quantity(report.totals[p].quantity_e4)) for p in report.periods]},
            {"name": "金额 (元)", "type": "line", "axis": 1,
             "data": [str(yuan(report.totals[p].amount_fen)) for p in report.periods]},
        ],
    }  # fmt: skip
    return _page(
        request, "reports/energy.html", report=report, sites=sites, site_id=site_id,
        chart=chart, what=what, unit=unit, grains=GRAIN_LABELS, bys=BY_LABELS,
        kinds=KIND_LABELS,
    )  # fmt: skip


@bp.get(f"{PATH}/reports/compare")
@openapi.exclude()
@staff_required
async def compare(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    month = _month(request)
    by = _choice(request, "by", By, By.SITE)
    if by not in COMPARE_BY:
        raise ValidationFailed("同比环比按园区、楼栋或账户统计")
    kind = _kind(request)
    report = await compare_report(ids, kind=kind, by=by, month=month)
    if arg(request, "format") == "xlsx":
        return await xlsx_sheets(request, f"同比环比-{month}.xlsx", compare_sheet(report))
    what, unit = KIND_LABELS[kind]

    def line(values: list[int | None]) -> list[str | None]:
        return [None if v is None else str(quantity(v)) for v in values]

    chart = {
        "kind": "line", "axes": [unit], "categories": [f"{m}月" for m in range(1, 13)],
        "series": [
            {"name": f"{month.year}年", "data": line(report.this_year)},
            {"name": f"{month.year - 1}年", "data": line(report.last_year)},
        ],
    }  # fmt: skip
    return _page(
        request, "reports/compare.html", report=report, sites=sites, site_id=site_id,
        month=month, chart=chart, what=what, unit=unit, kinds=KIND_LABELS,
        bys={b: BY_LABELS[b] for b in COMPARE_BY},
    )  # fmt: skip
