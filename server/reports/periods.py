"""Report periods, pure: calendar months in the park's zone, their UTC bounds, and the
comparisons staff ask for (同比 year-on-year, 环比 period-on-period). No database, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo


class Grain(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


GRAIN_LABELS = {Grain.DAY: "日", Grain.MONTH: "月", Grain.YEAR: "年"}


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """'2026-11' → Month(2026, 11); ValueError for anything else."""
        year, _, month = text.strip().partition("-")
        if not (year.isdigit() and month.isdigit() and len(year) == 4 and len(month) <= 2):
            raise ValueError(f"not a month: {text!r}")
        value = cls(int(year), int(month))
        if not 1 <= value.month <= 12 or value.year < 2000:
            raise ValueError(f"not a month: {text!r}")
        return value

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def year_before(self) -> Month:
        return Month(self.year - 1, self.month)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) of the month in `tz`, as UTC instants."""
        return local_start(self.first, tz), local_start(self.next().first, tz)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{self.year}年{self.month}月"


def local_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant the local day `day` begins in `tz`."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


def bucket(day: date, grain: Grain) -> str:
    """The period a day falls in, as the report labels it: '2026-11-05', '2026-11', '2026'."""
    if grain is Grain.DAY:
        return day.isoformat()
    if grain is Grain.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    return f"{day.year:04d}"


def change_pct(current: int, before: int | None) -> Decimal | None:
    """(current − before) / before in percent, to 0.1; None when there is nothing to compare
    with (no figure for the earlier period, or it was zero)."""
    if before is None or before == 0:
        return None
    pct = Decimal(current - before) * 100 / Decimal(before)
    return pct.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
