"""The other reports (报表, /admin/reports/…), each from a service of server/reports/service
drawn by one template (reports/listing.html: filters, figure cards, an ECharts chart and the
tables) with the print view (`?view=print`) and a streamed Excel of the same tables
(`?format=xlsx`):

- combined   能耗财务综合表: month by month, opening and closing balances, money in and out,
             energy and its money (the monthly comprehensive report's totals);
- ranking    充值排行: who paid in the most over a range of months;
- arrears    欠费账户: open accounts whose available balance is negative, since when;
- offline    离线仪表: meters offline and unread for at least N days;
- faults     告警与故障记录: balance alarms, held readings and failed commands per day;
- commands   指令成功率: meter commands per gateway and state.

Income by channel and composition is the finance page (/admin/finance/income), linked from
the reports' index. Scope as admin/reports.py: the staff member's sites, `?site=` narrows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from admin.report_sheets import (
    DT,
    M,
    N,
    T,
    Table,
    compare_sheet,
    energy_sheet,
    monthly_sheet,
    xlsx_tables,
)
from admin.reports import _page, _sites, _tz
from admin.web import PATH, admin_blueprint, arg, staff_required, templates
from server.core.errors import ValidationFailed
from server.core.excel import Column, StreamSheet
from server.core.money import parse_yuan, yuan
from server.reports.periods import Grain, Month, local_start
from server.reports.service.arrears import ArrearsReport, arrears_report
from server.reports.service.combined import CombinedReport, combined_report
from server.reports.service.common import quantity
from server.reports.service.compare import compare_report
from server.reports.service.devices import (
    KIND_LABELS,
    OP_LABELS,
    CommandRates,
    OfflineReport,
    command_rates,
    offline_meters,
)
from server.reports.service.energy import By, energy_report
from server.reports.service.faults import SERIES, FaultReport, fault_report
from server.reports.service.monthly import CHANNEL_NAMES, monthly_report
from server.reports.service.ranking import Ranking, recharge_ranking

bp = admin_blueprint("admin_report_pages")
REPORTS = f"{PATH}/reports"


def _num(value: Any) -> str:
    if isinstance(value, Decimal) and value.as_tuple().exponent < -2:  # type: ignore[operator]
        return f"{value:,.2f}"
    return f"{value:,}"


templates.filters["num"] = _num


def _listing(request: Request, report: str, **context: Any) -> HTTPResponse:
    context.setdefault("note", "")
    context.setdefault("cards", [])
    context.setdefault("chart", None)
    context.setdefault("footnote", "")
    return _page(request, "reports/listing.html", report=report, action=f"{REPORTS}/{report}",
                 **context)  # fmt: skip


def _month_arg(request: Request, name: str, default: Month) -> Month:
    if not arg(request, name):
        return default
    try:
        return Month.parse(arg(request, name))
    except ValueError as exc:
        raise ValidationFailed("月份格式应为 YYYY-MM，如 2026-11") from exc


def _date_arg(request: Request, name: str, default: date) -> date:
    if not arg(request, name):
        return default
    try:
        return date.fromisoformat(arg(request, name))
    except ValueError as exc:
        raise ValidationFailed("日期格式应为 YYYY-MM-DD") from exc


def _int_arg(request: Request, name: str, default: int, low: int, high: int, label: str) -> int:
    text = arg(request, name)
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValidationFailed(f"{label}应为 {low}–{high} 的整数")
    return int(text)


def _today(request: Request) -> date:
    return datetime.now(_tz(request)).date()


def _local(now: datetime, at: datetime | None) -> datetime | None:
    """`at` in the zone of `now` (the park's)."""
    return None if at is None else at.astimezone(now.tzinfo)


def _field(name: str, label: str, value: Any, kind: str = "text", **more: Any) -> dict[str, Any]:
    return {"name": name, "label": label, "value": value, "type": kind, **more}


# -- the tables (the page's and its Excel's, and `shuidian report`'s) ----------
def combined_table(report: CombinedReport) -> Table:
    columns = [Column("月份", T), Column("账户数", N), Column("期初余额(元)", M),
               Column("缴费(元)", M), Column("扣费(元)", M), Column("退费(元)", M),
               Column("调账与过户(元)", M), Column("期末余额(元)", M), Column("用电量(kWh)", N),
               Column("电费(按读数时间,元)", M), Column("用水量(m³)", N),
               Column("水费(按读数时间,元)", M)]  # fmt: skip

    def row(label: str, m: Any) -> list[Any]:
        return [label, m.accounts, m.opening_fen, m.payments_fen, m.charges_fen, m.refunds_fen,
                m.other_fen, m.closing_fen, quantity(m.electricity_e4), m.electricity_usage_fen,
                quantity(m.water_e4), m.water_usage_fen]  # fmt: skip

    return Table("能耗财务综合表", columns, [row(m.month.label, m) for m in report.months],
                  row("合计", report.total), wide={0})  # fmt: skip


def ranking_table(found: Ranking) -> Table:
    columns = [Column("名次", N), Column("园区", T), Column("户号", T), Column("租户", T),
               Column("房间", T), *[Column(f"{CHANNEL_NAMES.get(c, c)}(元)", M)
                                    for c in found.channels],
               Column("缴费合计(元)", M), Column("缴费月数", N)]  # fmt: skip
    rows = [[i, p.account.site, p.account.number, p.account.tenant_name, p.account.place,
             *[p.by_channel.get(c, 0) for c in found.channels], p.payments_fen, p.months]
            for i, p in enumerate(found.payers, 1)]  # fmt: skip
    return Table("充值排行", columns, rows, wide={2, 4}, empty="所选期间没有缴费")


def arrears_table(report: ArrearsReport, now: datetime) -> Table:
    columns = [Column("园区", T), Column("楼栋", T), Column("楼层", T), Column("房间", T),
               Column("户号", T), Column("租户", T), Column("欠费(元)", M),
               Column("钱包余额(元)", M), Column("欠费起始", DT), Column("欠费天数", N),
               Column("最近缴费", DT)]  # fmt: skip
    rows = [[d.account.site, d.account.building, d.account.floor, d.account.room,
             d.account.number, d.account.tenant_name, d.owed_fen, d.wallet_fen,
             _local(now, d.since), d.days(now), _local(now, d.last_payment_at)]
            for d in report.debtors]  # fmt: skip
    total = ["合计", "", "", "", f"{len(rows)} 户", "", report.owed_fen,
             sum(d.wallet_fen for d in report.debtors), None, None, None]  # fmt: skip
    return Table("欠费账户", columns, rows, total, empty="没有欠费账户", wide={4, 8, 10})


def offline_table(report: OfflineReport, now: datetime) -> Table:
    days = report.days
    columns = [Column("园区", T), Column("表地址", T), Column("类型", T), Column("位置", T),
               Column("账户", T), Column("网关", T), Column("最后抄表", DT),
               Column("离线天数", N)]  # fmt: skip
    rows = [[m.site, m.address, m.kind_label, m.place, m.account, m.gateway,
             _local(now, m.last_reading_at), m.days(now)] for m in report.meters]  # fmt: skip
    return Table(f"离线超过{days}天的仪表", columns, rows, empty="没有离线仪表", wide={1, 6})


def fault_tables(report: FaultReport, tz: ZoneInfo) -> list[Table]:
    now = datetime.now(tz)
    alarms = Table(
        "余额告警",
        [Column("时间", DT), Column("园区", T), Column("户号", T), Column("租户", T),
         Column("房间", T), Column("类型", T), Column("级别", T), Column("当时余额(元)", M),
         Column("内容", T)],
        [[_local(now, a.created_at), a.site_name, a.account_number, a.tenant_name, a.room,
          a.kind_label, a.level_label, a.balance_fen, a.message] for a in report.alarms],
        wide={0},
    )  # fmt: skip
    held = Table(
        "异常读数",
        [Column("时间", DT), Column("园区", T), Column("表地址", T), Column("类型", T),
         Column("房间", T), Column("账户", T), Column("读数", N), Column("类别", T),
         Column("说明", T), Column("处理", T)],
        [[_local(now, h.created_at), h.site_name, h.meter_address, h.kind_label, h.room,
          h.account, h.total, h.reason_label, h.reason, h.status_label] for h in report.held],
        wide={0},
    )  # fmt: skip
    commands = Table(
        "指令失败",
        [Column("时间", DT), Column("园区", T), Column("表地址", T), Column("位置", T),
         Column("指令", T), Column("状态", T), Column("尝试次数", N), Column("错误", T)],
        [[_local(now, c.at), c.site, c.meter, c.place, c.op, c.status, c.attempts, c.error]
         for c in report.commands],
        wide={0},
    )  # fmt: skip
    return [alarms, held, commands]


def command_tables(found: CommandRates) -> tuple[Table, Table]:
    states = ("acked", "failed", "expired", "queued", "sent")
    columns = [Column("网关", T), Column("园区", T), Column("在线", T), Column("指令数", N),
               Column("已确认", N), Column("失败", N), Column("过期", N), Column("排队中", N),
               Column("已发送", N), Column("成功率(%)", N)]  # fmt: skip

    def row(g: Any) -> list[Any]:
        online = "" if g.online is None else ("在线" if g.online else "离线")
        return [g.gateway, g.site, online, g.total, *[g.counts.get(s, 0) for s in states],
                g.rate_pct]  # fmt: skip

    table = Table("指令成功率", columns, [row(g) for g in found.gateways], row(found.total),
                  empty="所选期间没有指令", wide={0})  # fmt: skip
    errors = Table("失败原因", [Column("错误", T), Column("次数", N)],
                   [list(e) for e in found.errors], empty="没有失败的指令")  # fmt: skip
    return table, errors


# -- energy + finance -----------------------------------------------------------------------------
@bp.get(f"{REPORTS}/combined")
@openapi.exclude()
@staff_required
async def combined(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    until = _month_arg(request, "until", Month.of(_today(request)))
    since = _month_arg(request, "since", Month(until.year, 1))
    try:
        report = await combined_report(ids, since, until, _tz(request))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    table = combined_table(report)
    if arg(request, "format") == "xlsx":
        return await xlsx_tables(request, f"能耗财务综合表-{since}-{until}.xlsx", table)
    t = report.total
    chart = {
        "kind": "bar", "axes": ["元", "kWh"],
        "categories": [m.month.label for m in report.months],
        "series": [
            {"name": "缴费 (元)", "data": [str(yuan(m.payments_fen)) for m in report.months]},
            {"name": "扣费 (元)", "data": [str(yuan(m.charges_fen)) for m in report.months]},
            {"name": "期末余额 (元)", "type": "line",
             "data": [str(yuan(m.closing_fen)) for m in report.months]},
            {"name": "用电量 (kWh)", "type": "line", "axis": 1,
             "data": [str(quantity(m.electricity_e4)) for m in report.months]},
        ],
    }  # fmt: skip
    money = templates.filters["money"]
    return _listing(
        request, "combined", title=f"能耗财务综合表 · {since.label}至{until.label}",
        note="金额按记账时间（与月度综合报表、账本一致），用量按读数时间；每月期末即次月期初",
        sites=sites, site_id=site_id, tables=[table], chart=chart,
        filters=[_field("since", "从", str(since), "month"),
                 _field("until", "至", str(until), "month")],
        cards=[("期初余额", money(t.opening_fen)), ("缴费", money(t.payments_fen)),
               ("扣费", money(t.charges_fen)), ("期末余额", money(t.closing_fen)),
               ("用电量", f"{quantity(t.electricity_e4):,.2f} kWh"),
               ("用水量", f"{quantity(t.water_e4):,.2f} m³")],
    )  # fmt: skip


# -- recharge ranking -----------------------------------------------------------------------------
@bp.get(f"{REPORTS}/ranking")
@openapi.exclude()
@staff_required
async def ranking(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    until = _month_arg(request, "until", Month.of(_today(request)))
    since = _month_arg(request, "since", until)
    top = _int_arg(request, "top", 20, 1, 500, "名次数")
    try:
        found = await recharge_ranking(ids, since, until, _tz(request), top=top)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    table = ranking_table(found)
    if arg(request, "format") == "xlsx":
        return await xlsx_tables(request, f"充值排行-{since}-{until}.xlsx", table)
    shown = found.payers[:20]
    chart = {
        "kind": "bar", "axes": ["元"],
        "categories": [f"{p.account.number} {p.account.tenant_name}" for p in shown],
        "series": [{"name": "缴费 (元)", "data": [str(yuan(p.payments_fen)) for p in shown]}],
    }  # fmt: skip
    money = templates.filters["money"]
    return _listing(
        request, "ranking", title=f"充值排行 · {since.label}至{until.label}",
        note="缴费按记账时间、扣除冲正，与月度综合报表的缴费一致", sites=sites, site_id=site_id,
        tables=[table], chart=chart if shown else None,
        filters=[_field("since", "从", str(since), "month"),
                 _field("until", "至", str(until), "month"),
                 _field("top", "前几名", top, "number", max=500)],
        cards=[("缴费户数", f"{found.payer_count}"), ("缴费合计", money(found.total_fen)),
               (f"前 {len(found.payers)} 名合计",
                money(sum(p.payments_fen for p in found.payers)))],
    )  # fmt: skip


# -- accounts in arrears --------------------------------------------------------------------------
@bp.get(f"{REPORTS}/arrears")
@openapi.exclude()
@staff_required
async def arrears(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    text = arg(request, "min") or "0.01"
    try:
        min_fen = parse_yuan(text)
    except (ValueError, ArithmeticError):
        raise ValidationFailed("欠费下限应为金额（元）") from None
    report = await arrears_report(ids, min_owed_fen=min_fen)
    now = datetime.now(_tz(request))
    table = arrears_table(report, now)
    if arg(request, "format") == "xlsx":
        return await xlsx_tables(request, "欠费账户.xlsx", table)
    chart = {
        "kind": "bar", "axes": ["元"], "categories": list(report.by_building),
        "series": [{"name": "欠费 (元)",
                    "data": [str(yuan(v)) for v in report.by_building.values()]}],
    }  # fmt: skip
    money = templates.filters["money"]
    return _listing(
        request, "arrears", title="欠费账户",
        note="可用余额（钱包与表端余额）为负的在用账户，欠费多的在前；欠费起始为钱包最近一次转负的时间",
        sites=sites, site_id=site_id, tables=[table], chart=chart if table.rows else None,
        filters=[_field("min", "欠费不少于（元）", text)],
        cards=[("欠费户数", f"{len(table.rows)}"), ("欠费合计", money(report.owed_fen))],
    )  # fmt: skip


# -- meters offline -------------------------------------------------------------------------------
@bp.get(f"{REPORTS}/offline")
@openapi.exclude()
@staff_required
async def offline(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    days = _int_arg(request, "days", 3, 1, 3650, "离线天数")
    kind = arg(request, "kind")
    if kind and kind not in KIND_LABELS:
        raise ValidationFailed("类型应为电表或水表")
    now = datetime.now(_tz(request))
    report = await offline_meters(ids, days=days, now=now, kind=kind)
    table = offline_table(report, now)
    if arg(request, "format") == "xlsx":
        return await xlsx_tables(request, f"离线仪表-{days}天.xlsx", table)
    chart = {
        "kind": "bar", "axes": ["台"], "categories": list(report.by_gateway),
        "series": [{"name": "离线仪表 (台)", "data": [str(n) for n in report.by_gateway.values()]}],
    }  # fmt: skip
    return _listing(
        request, "offline", title=f"离线超过 {days} 天的仪表",
        note="在用、当前离线且最后一次抄表（从未抄到则为安装时间）早于所选天数的仪表",
        sites=sites, site_id=site_id, tables=[table], chart=chart if table.rows else None,
        filters=[_field("days", "离线天数 ≥", days, "number", max=3650),
                 _field("kind", "类型", kind, options={"": "全部", **{
                     k.value: v for k, v in KIND_LABELS.items()}})],
        cards=[("离线仪表", f"{len(table.rows)} 台"), ("涉及网关", f"{len(report.by_gateway)} 个")],
    )  # fmt: skip


# -- alarm and fault records ----------------------------------------------------------------------
def _day_range(request: Request) -> tuple[date, date]:
    until = _date_arg(request, "until", _today(request))
    return _date_arg(request, "since", until - timedelta(days=29)), until


@bp.get(f"{REPORTS}/faults")
@openapi.exclude()
@staff_required
async def faults(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    since, until = _day_range(request)
    try:
        report = await fault_report(ids, since, until, _tz(request))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    tables = fault_tables(report, _tz(request))
    if arg(request, "format") == "xlsx":
        return await xlsx_tables(request, f"告警与故障记录-{since}-{until}.xlsx", *tables)
    chart = {
        "kind": "bar", "axes": ["条"], "categories": [d[5:] for d in report.days],
        "series": [{"name": label, "data": [str(n) for n in report.per_day[key]]}
                   for key, label in SERIES.items()],
    }  # fmt: skip
    return _listing(
        request, "faults", title=f"告警与故障记录 · {since} 至 {until}",
        note="余额告警（告警服务发出）、待复核或已处理的异常读数、失败或过期的表计指令",
        sites=sites, site_id=site_id, tables=tables, chart=chart,
        filters=[_field("since", "从", since, "date"), _field("until", "至", until, "date")],
        cards=[(t.title, f"{len(t.rows)} 条") for t in tables],
    )  # fmt: skip


# -- command success rates per gateway ------------------------------------------------------------
@bp.get(f"{REPORTS}/commands")
@openapi.exclude()
@staff_required
async def commands(request: Request) -> HTTPResponse:
    sites, site_id, ids = await _sites(request)
    since, until = _day_range(request)
    if until < since or (until - since).days > 366:
        raise ValidationFailed("日期范围无效（最多 366 天）")
    op = arg(request, "op")
    ops = {k.value: v for k, v in OP_LABELS.items()}
    if op and op not in ops:
        raise ValidationFailed("指令类型无效")
    tz = _tz(request)
    found = await command_rates(
        ids, local_start(since, tz), local_start(until + timedelta(days=1), tz), op=op
    )
    table, errors = command_tables(found)
    if arg(request, "format") == "xlsx":
        return await xlsx_tables(request, f"指令成功率-{since}-{until}.xlsx", table, errors)
    chart = {
        "kind": "bar", "axes": ["条", "%"], "categories": [g.gateway for g in found.gateways],
        "series": [
            {"name": "已确认", "data": [str(g.counts.get("acked", 0)) for g in found.gateways]},
            {"name": "失败或过期", "data": [
                str(g.counts.get("failed", 0) + g.counts.get("expired", 0))
                for g in found.gateways]},
            {"name": "成功率 (%)", "type": "line", "axis": 1,
             "data": [None if g.rate_pct is None else str(g.rate_pct) for g in found.gateways]},
        ],
    }  # fmt: skip
    t = found.total
    return _listing(
        request, "commands", title=f"指令成功率 · {since} 至 {until}",
        note="按仪表所属网关统计所选期间创建的指令；成功率 = 已确认 ÷（已确认 + 失败 + 过期）",
        sites=sites, site_id=site_id, tables=[table, errors],
        chart=chart if found.gateways else None,
        filters=[_field("since", "从", since, "date"), _field("until", "至", until, "date"),
                 _field("op", "指令", op, options={"": "全部", **ops})],
        cards=[("指令数", f"{t.total}"), ("已确认", f"{t.counts.get('acked', 0)}"),
               ("成功率", "—" if t.rate_pct is None else f"{t.rate_pct}%")],
    )  # fmt: skip


# -- the command line: `shuidian report <name> --site … --month …` ------------------------------
EXPORTS = {
    "monthly": "月度综合报表", "energy": "能耗统计", "compare": "同比环比",
    "combined": "能耗财务综合表", "ranking": "充值排行", "arrears": "欠费账户",
    "offline": "离线仪表", "faults": "告警与故障记录", "commands": "指令成功率",
}  # fmt: skip


async def export(
    name: str,
    site_ids: Sequence[int],
    month: Month,
    tz: ZoneInfo,
    *,
    days: int = 3,
    top: int = 20,
    kind: str = "electricity",
) -> tuple[str, list[StreamSheet]]:
    """The Excel sheets of report `name` for `month` (energy, faults and commands: its days;
    combined: January to it; arrears and offline: now), as the page exports them."""
    now = datetime.now(tz)
    first, last = month.first, month.next().first - timedelta(days=1)
    title = f"{EXPORTS[name]} {month}"
    if name == "monthly":
        return title, [monthly_sheet(await monthly_report(site_ids, month, tz))]
    if name == "energy":
        report = await energy_report(site_ids, kind=kind, grain=Grain.DAY, by=By.ACCOUNT,
                                     since=first, until=last)  # fmt: skip
        return title, [energy_sheet(report)]
    if name == "compare":
        report = await compare_report(site_ids, kind=kind, by=By.BUILDING, month=month)
        return title, [compare_sheet(report)]
    if name == "combined":
        tables = [combined_table(await combined_report(site_ids, Month(month.year, 1), month, tz))]
    elif name == "ranking":
        tables = [ranking_table(await recharge_ranking(site_ids, month, month, tz, top=top))]
    elif name == "arrears":
        tables, title = [arrears_table(await arrears_report(site_ids), now)], EXPORTS[name]
    elif name == "offline":
        found = await offline_meters(site_ids, days=days, now=now)
        tables, title = [offline_table(found, now)], f"{EXPORTS[name]} ≥{days}天"
    elif name == "faults":
        tables = fault_tables(await fault_report(site_ids, first, last, tz), tz)
    elif name == "commands":
        start, end = month.bounds(tz)
        tables = list(command_tables(await command_rates(site_ids, start, end)))
    else:
        raise ValueError(f"no report {name!r}")
    return title, [t.sheet() for t in tables]
