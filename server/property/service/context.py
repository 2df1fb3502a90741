"""What each step of the monthly run is given (server.property.service.run)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from server.property import fees


@dataclass
class RunContext:
    """What a step knows: the site, the month, preview or real, who, and the run's row."""

    site_id: int
    year: int
    month: int
    preview: bool
    actor: str
    run_id: int
    tz: ZoneInfo
    now: datetime

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def span(self) -> fees.Span:
        return fees.month_span(self.year, self.month)

    def local_start(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)
