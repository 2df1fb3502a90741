"""The reports as Excel sheets: Chinese headers, one row per line of the report and its
total, quantities and money as numbers (money in yuan)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sanic.response import HTTPResponse

from admin.web import xlsx
from server.core.excel import Sheet
from server.core.money import yuan
from server.reports.service.common import quantity
from server.reports.service.compare import CompareReport
from server.reports.service.energy import BY_LABELS, KIND_LABELS, Cell, EnergyReport
from server.reports.service.monthly import (
    BAND_NAMES,
    BANDS,
    CHANNEL_NAMES,
    MonthlyReport,
    ShopMonth,
)


def money(fen: int) -> Decimal:
    return yuan(fen)


def xlsx_money(filename: str, *sheets: Sheet) -> HTTPResponse:
    return xlsx(filename, *sheets)


def _monthly_row(s: ShopMonth, channels: Sequence[str]) -> list[Any]:
    a = s.account
    return [
        a.site, a.building, a.floor, a.room, a.number, a.tenant_name, money(s.opening_fen),
        *[money(s.payments_by_channel.get(c, 0)) for c in channels], money(s.payments_fen),
        quantity(s.electricity_e4),
        *[x for b in BANDS for x in (quantity(s.bands_e4.get(b, 0)), money(s.bands_fen.get(b, 0)))],
        money(s.other_band_fen), money(s.electricity_usage_fen), quantity(s.water_e4),
        money(s.water_usage_fen), money(s.electricity_fen), money(s.water_fen),
        money(s.earlier_usage_fen), money(s.late_usage_fen), money(s.fees_fen),
        money(s.shares_fen), money(s.refunds_fen), money(s.adjustments_fen),
        money(s.transfers_fen), money(s.closing_fen),
    ]  # fmt: skip


def monthly_sheet(report: MonthlyReport) -> Sheet:
    channels = report.channels
    headers = [
        "园区", "楼栋", "楼层", "房间", "户号", "租户", "期初余额(元)",
        *[f"{CHANNEL_NAMES.get(c, c)}缴费(元)" for c in channels], "缴费合计(元)",
        "用电量(kWh)",
        *[h for b in BANDS for h in (f"{BAND_NAMES[b]}电量(kWh)", f"{BAND_NAMES[b]}电费(元)")],
        "未分时电费(元)", "电费(按读数时间,元)", "用水量(m³)", "水费(按读数时间,元)",
        "本月入账电费(元)", "本月入账水费(元)", "其中上月读数本月入账(元)",
        "本月读数次月入账(元)", "其他费用(元)", "公摊与损耗(元)", "退费(元)", "调账(元)",
        "过户转入转出(元)", "期末余额(元)",
    ]  # fmt: skip
    rows = [_monthly_row(s, channels) for s in report.rows]
    rows.append(_monthly_row(report.total, channels))
    return Sheet(f"{report.month.label}综合报表", headers, rows)


def energy_sheet(report: EnergyReport) -> Sheet:
    what, unit = KIND_LABELS[report.kind]
    headers = [BY_LABELS[report.by]]
    for p in report.periods:
        headers += [f"{p} {what}({unit})", f"{p} 金额(元)"]
    headers += [f"合计{what}({unit})", "合计金额(元)"]

    def row(label: str, cells: Mapping[str, Cell], total: Cell) -> list[Any]:
        out: list[Any] = [label]
        for p in report.periods:
            cell = cells.get(p, Cell())
            out += [quantity(cell.quantity_e4), money(cell.amount_fen)]
        return [*out, quantity(total.quantity_e4), money(total.amount_fen)]

    rows = [row(r.label, r.cells, r.total) for r in report.rows]
    rows.append(row("合计", report.totals, report.total))
    return Sheet(f"{what}统计", headers, rows)


def compare_sheet(report: CompareReport) -> Sheet:
    what, unit = KIND_LABELS[report.kind]
    m = report.month
    headers = [BY_LABELS[report.by], f"{m.label}{what}({unit})", f"{m.label}金额(元)",
               f"{m.previous().label}{what}({unit})", "环比(%)",
               f"{m.year_before().label}{what}({unit})", "同比(%)"]  # fmt: skip

    def q(cell: Cell | None) -> Decimal | None:
        return None if cell is None else quantity(cell.quantity_e4)

    rows = [
        [r.label, q(r.current), None if r.current is None else money(r.current.amount_fen),
         q(r.previous), r.mom_pct, q(r.year_before), r.yoy_pct]
        for r in [*report.rows, report.total]
    ]  # fmt: skip
    return Sheet(f"{what}同比环比", headers, rows)
