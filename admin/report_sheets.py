"""The reports as Excel sheets, streamed (server.core.excel `stream_xlsx`): Chinese headers,
one row per line of the report and its total, quantities as numbers, money as numbers in
yuan shown ¥0.00.

`Table` is one table of a report page: its columns (header and kind) and rows, rendered by
reports/_table.html and exported as the same sheet, so the page and its Excel never differ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from admin.web import xlsx_stream
from server.core.excel import Column, Kind, StreamSheet
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

T, M, N, DT = Kind.TEXT, Kind.MONEY, Kind.NUMBER, Kind.DATETIME


@dataclass
class Table:
    """One table of a report: `rows` then the bold `total` row (if any). Money cells are fen,
    datetimes already in the park's zone."""

    title: str
    columns: Sequence[Column]
    rows: list[Sequence[Any]]
    total: Sequence[Any] | None = None
    empty: str = "没有记录"
    wide: set[int] = field(default_factory=set)  # columns shown without wrapping

    def sheet(self) -> StreamSheet:
        rows = [*self.rows, *([self.total] if self.total is not None else [])]
        return StreamSheet(self.title, self.columns, rows, chunked=False)


async def xlsx_tables(request: Request, filename: str, *tables: Table) -> HTTPResponse:
    return await xlsx_stream(request, filename, *(t.sheet() for t in tables))


async def xlsx_sheets(request: Request, filename: str, *sheets: StreamSheet) -> HTTPResponse:
    return await xlsx_stream(request, filename, *sheets)


def _columns(spec: Sequence[tuple[str, Kind]]) -> list[Column]:
    return [Column(header, kind) for header, kind in spec]


def _monthly_row(s: ShopMonth, channels: Sequence[str]) -> list[Any]:
    a = s.account
    return [
        a.site, a.building, a.floor, a.room, a.number, a.tenant_name, s.opening_fen,
        *[s.payments_by_channel.get(c, 0) for c in channels], s.payments_fen,
        quantity(s.electricity_e4),
        *[x for b in BANDS for x in (quantity(s.bands_e4.get(b, 0)), s.bands_fen.get(b, 0))],
        s.other_band_fen, s.electricity_usage_fen, quantity(s.water_e4), s.water_usage_fen,
        s.electricity_fen, s.water_fen, s.earlier_usage_fen, s.late_usage_fen, s.fees_fen,
        s.shares_fen, s.refunds_fen, s.adjustments_fen, s.transfers_fen, s.closing_fen,
    ]  # fmt: skip


def monthly_sheet(report: MonthlyReport) -> StreamSheet:
    channels = report.channels
    spec = [
        ("园区", T), ("楼栋", T), ("楼层", T), ("房间", T), ("户号", T), ("租户", T),
        ("期初余额(元)", M), *[(f"{CHANNEL_NAMES.get(c, c)}缴费(元)", M) for c in channels],
        ("缴费合计(元)", M), ("用电量(kWh)", N),
        *[h for b in BANDS for h in ((f"{BAND_NAMES[b]}电量(kWh)", N),
                                     (f"{BAND_NAMES[b]}电费(元)", M))],
        ("未分时电费(元)", M), ("电费(按读数时间,元)", M), ("用水量(m³)", N),
        ("水费(按读数时间,元)", M), ("本月入账电费(元)", M), ("本月入账水费(元)", M),
        ("其中上月读数本月入账(元)", M), ("本月读数次月入账(元)", M), ("其他费用(元)", M),
        ("公摊与损耗(元)", M), ("退费(元)", M), ("调账(元)", M), ("过户转入转出(元)", M),
        ("期末余额(元)", M),
    ]  # fmt: skip
    rows = [_monthly_row(s, channels) for s in report.rows]
    rows.append(_monthly_row(report.total, channels))
    return StreamSheet(f"{report.month.label}综合报表", _columns(spec), rows, chunked=False)


def energy_sheet(report: EnergyReport) -> StreamSheet:
    what, unit = KIND_LABELS[report.kind]
    spec: list[tuple[str, Kind]] = [(BY_LABELS[report.by], T)]
    for p in report.periods:
        spec += [(f"{p} {what}({unit})", N), (f"{p} 金额(元)", M)]
    spec += [(f"合计{what}({unit})", N), ("合计金额(元)", M)]

    def row(label: str, cells: Mapping[str, Cell], total: Cell) -> list[Any]:
        out: list[Any] = [label]
        for p in report.periods:
            cell = cells.get(p, Cell())
            out += [quantity(cell.quantity_e4), cell.amount_fen]
        return [*out, quantity(total.quantity_e4), total.amount_fen]

    rows = [row(r.label, r.cells, r.total) for r in report.rows]
    rows.append(row("合计", report.totals, report.total))
    return StreamSheet(f"{what}统计", _columns(spec), rows, chunked=False)


def compare_sheet(report: CompareReport) -> StreamSheet:
    what, unit = KIND_LABELS[report.kind]
    m = report.month
    spec = [(BY_LABELS[report.by], T), (f"{m.label}{what}({unit})", N), (f"{m.label}金额(元)", M),
            (f"{m.previous().label}{what}({unit})", N), ("环比(%)", N),
            (f"{m.year_before().label}{what}({unit})", N), ("同比(%)", N)]  # fmt: skip

    def q(cell: Cell | None) -> Decimal | None:
        return None if cell is None else quantity(cell.quantity_e4)

    rows = [
        [r.label, q(r.current), None if r.current is None else r.current.amount_fen,
         q(r.previous), r.mom_pct, q(r.year_before), r.yoy_pct]
        for r in [*report.rows, report.total]
    ]  # fmt: skip
    return StreamSheet(f"{what}同比环比", _columns(spec), rows, chunked=False)
