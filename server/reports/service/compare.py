"""Year-on-year (同比) and period-on-period (环比) per site, building or account, from
`daily_usage`: a month against the month before and the same month a year before, and the
scope's twelve months of this year against last year's for the chart. A period without any
daily-usage row is *missing* (None, shown "—"), not zero: a park that was not on the
platform last year has no year-on-year figure rather than an infinite rise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from server.ledger.sql import fetch, in_list
from server.reports.periods import Grain, Month, change_pct
from server.reports.service.common import conn, day_param
from server.reports.service.energy import _DIMENSIONS, By, Cell, _bucket_sql

COMPARE_BY = (By.SITE, By.BUILDING, By.ACCOUNT)


@dataclass
class CompareRow:
    label: str
    current: Cell | None
    previous: Cell | None  # the month before (环比)
    year_before: Cell | None  # the same month a year before (同比)

    @property
    def mom_pct(self) -> Decimal | None:
        return _pct(self.current, self.previous)

    @property
    def yoy_pct(self) -> Decimal | None:
        return _pct(self.current, self.year_before)


def _pct(now: Cell | None, before: Cell | None) -> Decimal | None:
    if now is None or before is None:
        return None
    return change_pct(now.quantity_e4, before.quantity_e4)


@dataclass
class CompareReport:
    kind: str
    by: By
    month: Month
    rows: list[CompareRow]
    total: CompareRow
    this_year: list[int | None]  # quantity e4 per month Jan…Dec of month.year (None: no data)
    last_year: list[int | None]


async def compare_report(
    site_ids: Sequence[int], *, kind: str, by: By, month: Month
) -> CompareReport:
    months = (month, month.previous(), month.year_before())
    empty = CompareRow("合计", None, None, None)
    report = CompareReport(kind, by, month, [], empty, [None] * 12, [None] * 12)
    if not site_ids:
        return report
    c = conn()
    key, label, joins = _DIMENSIONS[by]
    sites, params = in_list(c, "m.site_id", list(site_ids), 8, "int")
    ranges = " OR ".join(f"(du.day >= ${2 + 2 * i} AND du.day < ${3 + 2 * i})" for i in range(3))
    bounds = [day_param(c, d) for m in months for d in (m.first, m.next().first)]
    bucket = _bucket_sql(c, Grain.MONTH)
    rows = await fetch(
        c,
        f"SELECT {key} AS k, MIN({label}) AS label, {bucket} AS period,"
        " SUM(du.quantity_e4) AS q, SUM(COALESCE(du.amount_fen, 0)) AS fen"
        f" FROM daily_usage du JOIN meter m ON m.id = du.meter_id{joins}"
        f" WHERE m.kind = $1 AND ({ranges}) AND {sites} GROUP BY {key}, period",
        [kind, *bounds, *params],
    )
    names = [str(m) for m in months]
    found: dict[Any, dict[str, Any]] = {}
    for r in rows:
        entry = found.setdefault(r["k"], {"label": str(r["label"] or "—")})
        entry[str(r["period"])] = Cell(int(r["q"]), int(r["fen"]))
    report.rows = sorted(
        (CompareRow(e["label"], *(e.get(n) for n in names)) for e in found.values()),
        key=lambda row: row.label,
    )
    report.total = CompareRow("合计", *(_sum(report.rows, i) for i in range(3)))
    await _year_lines(report, site_ids)
    return report


def _sum(rows: Sequence[CompareRow], i: int) -> Cell | None:
    cells = [(r.current, r.previous, r.year_before)[i] for r in rows]
    present = [cell for cell in cells if cell is not None]
    if not present:
        return None
    return Cell(sum(x.quantity_e4 for x in present), sum(x.amount_fen for x in present))


async def _year_lines(report: CompareReport, site_ids: Sequence[int]) -> None:
    """The scope's months of this year and last year (the chart), None where no data."""
    c = conn()
    sites, params = in_list(c, "m.site_id", list(site_ids), 4, "int")
    year = report.month.year
    first, end = Month(year - 1, 1).first, report.month.next().first
    rows = await fetch(
        c,
        f"SELECT {_bucket_sql(c, Grain.MONTH)} AS period, SUM(du.quantity_e4) AS q"
        " FROM daily_usage du JOIN meter m ON m.id = du.meter_id"
        f" WHERE m.kind = $1 AND du.day >= $2 AND du.day < $3 AND {sites}"
        " GROUP BY period",
        [report.kind, day_param(c, first), day_param(c, end), *params],
    )
    for r in rows:
        y, m = (int(x) for x in str(r["period"]).split("-"))
        (report.this_year if y == year else report.last_year)[m - 1] = int(r["q"])
