"""Energy (kWh / m³) and money by day, month or year, per meter, account, floor, building or
site, from `daily_usage` (never the raw readings): one GROUP BY over the days asked for.
Money is what the platform billed for that use (by reading time); meter-billed meters and
master meters have use and no money. Floors and buildings are those of the meter's room."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from server.ledger.sql import fetch, in_list, is_pg
from server.reports.periods import Grain, bucket
from server.reports.service.common import conn, day_param


class By(StrEnum):
    METER = "meter"
    ACCOUNT = "account"
    FLOOR = "floor"
    BUILDING = "building"
    SITE = "site"


BY_LABELS = {By.METER: "仪表", By.ACCOUNT: "账户", By.FLOOR: "楼层", By.BUILDING: "楼栋",
             By.SITE: "园区"}  # fmt: skip
KIND_LABELS = {"electricity": ("用电", "kWh"), "water": ("用水", "m³")}
MAX_DAYS = {Grain.DAY: 92, Grain.MONTH: 366 * 3, Grain.YEAR: 366 * 10}

# Per dimension: the key, the label's columns, the joins it needs.
_PLACE = (" LEFT JOIN room r ON r.id = m.room_id LEFT JOIN floor f ON f.id = r.floor_id"
          " LEFT JOIN building b ON b.id = f.building_id")  # fmt: skip
_DIMENSIONS: dict[By, tuple[str, str, str]] = {
    By.METER: ("m.id", "m.address || ' ' || COALESCE(r.name, '')", _PLACE),
    By.ACCOUNT: ("du.account_id", "COALESCE(a.number || ' ' || a.tenant_name, '（空置）')",
                 " LEFT JOIN account a ON a.id = du.account_id"),
    By.FLOOR: ("f.id", "COALESCE(b.name || ' ' || f.name, '（未分配房间）')", _PLACE),
    By.BUILDING: ("b.id", "COALESCE(b.name, '（未分配房间）')", _PLACE),
    By.SITE: ("m.site_id", "s.name", " JOIN site s ON s.id = m.site_id"),
}  # fmt: skip


@dataclass
class Cell:
    quantity_e4: int = 0
    amount_fen: int = 0

    def add(self, q: int, fen: int) -> None:
        self.quantity_e4 += q
        self.amount_fen += fen


@dataclass
class EnergyRow:
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)
    total: Cell = field(default_factory=Cell)


@dataclass
class EnergyReport:
    kind: str
    grain: Grain
    by: By
    since: date
    until: date  # inclusive
    periods: list[str]
    rows: list[EnergyRow]
    totals: dict[str, Cell]
    total: Cell


def check_range(grain: Grain, since: date, until: date) -> None:
    """Refuses a reversed range, or more days than the grain shows on one page."""
    if until < since:
        raise ValueError("结束日期早于开始日期")
    if (until - since).days + 1 > MAX_DAYS[grain]:
        raise ValueError(
            f"按{'日' if grain is Grain.DAY else '月或年'}统计最多 {MAX_DAYS[grain]} 天"
        )


def _bucket_sql(c: Any, grain: Grain) -> str:
    width = {Grain.DAY: 10, Grain.MONTH: 7, Grain.YEAR: 4}[grain]
    if is_pg(c):
        return f"to_char(du.day, '{'YYYY-MM-DD'[:width]}')"
    return f"substr(du.day, 1, {width})"


async def energy_report(
    site_ids: Sequence[int], *, kind: str, grain: Grain, by: By, since: date, until: date
) -> EnergyReport:
    """Use and money of `kind` meters per `by` and per `grain` period, `since`…`until`."""
    check_range(grain, since, until)
    periods = sorted({bucket(date.fromordinal(d), grain)
                      for d in range(since.toordinal(), until.toordinal() + 1)})  # fmt: skip
    report = EnergyReport(kind, grain, by, since, until, periods, [], defaultdict(Cell), Cell())
    if not site_ids:
        return report
    c = conn()
    key, label, joins = _DIMENSIONS[by]
    sites, params = in_list(c, "m.site_id", list(site_ids), 4, "int")
    rows = await fetch(
        c,
        f"SELECT {key} AS k, MIN({label}) AS label, {_bucket_sql(c, grain)} AS period,"
        " SUM(du.quantity_e4) AS q, SUM(COALESCE(du.amount_fen, 0)) AS fen"
        f" FROM daily_usage du JOIN meter m ON m.id = du.meter_id{joins}"
        f" WHERE du.day >= $1 AND du.day <= $2 AND m.kind = $3 AND {sites}"
        f" GROUP BY {key}, period ORDER BY label, period",
        [day_param(c, since), day_param(c, until), kind, *params],
    )
    found: dict[Any, EnergyRow] = {}
    for r in rows:
        row = found.setdefault(r["k"], EnergyRow(str(r["label"] or "—")))
        q, fen = int(r["q"]), int(r["fen"])
        row.cells.setdefault(str(r["period"]), Cell()).add(q, fen)
        row.total.add(q, fen)
        report.totals[str(r["period"])].add(q, fen)
        report.total.add(q, fen)
    report.rows = sorted(found.values(), key=lambda row: row.label)
    return report
