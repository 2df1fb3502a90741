"""A billing period ("2026-11": a calendar month in the park's zone) and its bounds. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.core.errors import ValidationFailed

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """A month: its first and last local day, and [start, end) as aware instants."""

    code: str
    first: date
    last: date
    start: datetime
    end: datetime


def period_of(code: str, tz: ZoneInfo) -> Period:
    """ "2026-11" → that month in `tz`; anything else is refused in words."""
    match = _PERIOD.match((code or "").strip())
    if not match or not (2000 <= int(match[1]) <= 2099 and 1 <= int(match[2]) <= 12):
        raise ValidationFailed("账期格式应为 年-月，如 2026-11", period=code)
    year, month = int(match[1]), int(match[2])
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(following, time(), tz)
    return Period(f"{year:04d}-{month:02d}", first, following - timedelta(days=1), start, end)
