"""No-cut windows: when the platform must not trip a tenant's supply automatically.

A prepaid park cuts supply at zero balance, but never when nobody can recharge or help:
nights, weekends and Chinese statutory holidays (节假日不停电). Each calendar day in the
site's local time is one of

    WORKDAY   Monday–Friday, and the make-up working days (调休上班) of a holiday
    WEEKEND   a Saturday or Sunday that is a normal rest day
    HOLIDAY   a statutory holiday, including the bridged days (调休放假)
    UNKNOWN   a year the `chinese_calendar` package has no data for

and the time of day may fall in the night window (default 20:00–08:00, across midnight).
`check(now, policy)` says whether cutting is allowed now and, when not, why and the next
moment it will be.

Unknown years: `chinese_calendar` only knows the years the State Council has published
(it raises NotImplementedError outside them). The default is the tenant's safe side:
every day of an unknown year is a no-cut day (`UnknownYear.NO_CUT`), so an outdated
package defers trips and says so ("节假日日历未覆盖") instead of cutting on a Spring
Festival it cannot see. Sites that prefer to keep cutting can choose
`UnknownYear.WEEKDAYS`: Monday–Friday except the fixed-date holidays (元旦, 劳动节 5/1–5/5,
国庆 10/1–10/7, widened to their usual bridges) — lunar holidays are then NOT protected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = "Asia/Shanghai"

# How far `check` looks for the next allowed moment. A Spring Festival plus weekends is
# well under a month; a longer search only happens for unknown years.
_HORIZON = timedelta(days=60)

# Fixed-date statutory holidays (month, first day, last day) used by UnknownYear.WEEKDAYS.
_FIXED_HOLIDAYS = ((1, 1, 1), (5, 1, 5), (10, 1, 7))


class DayKind(StrEnum):
    WORKDAY = "workday"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    UNKNOWN = "unknown"


class UnknownYear(StrEnum):
    """What to assume for a date the holiday calendar does not cover."""

    NO_CUT = "no_cut"  # safe side for tenants: no automatic cut at all
    WEEKDAYS = "weekdays"  # Mon–Fri except fixed-date holidays; lunar holidays unknown


class NoCutReason(StrEnum):
    NIGHT = "night"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    CALENDAR_UNKNOWN = "calendar_unknown"


_REASON_TEXT = {
    NoCutReason.NIGHT: "夜间不断电",
    NoCutReason.WEEKEND: "周末不断电",
    NoCutReason.HOLIDAY: "法定节假日不断电",
    NoCutReason.CALENDAR_UNKNOWN: "节假日日历未覆盖该年份，暂不断电",
}


@dataclass(frozen=True, slots=True)
class NoCutPolicy:
    """A site's no-cut rules. `night_start`/`night_end` None means no night window."""

    night_start: time | None = time(20, 0)
    night_end: time | None = time(8, 0)
    weekends: bool = True
    holidays: bool = True
    unknown_year: UnknownYear = UnknownYear.NO_CUT
    timezone: str = SHANGHAI

    def __post_init__(self) -> None:
        if (self.night_start is None) != (self.night_end is None):
            raise ValueError("night_start and night_end must both be set or both be None")
        if self.night_start is not None and self.night_start == self.night_end:
            raise ValueError("night window must not be empty or the whole day")


@dataclass(frozen=True, slots=True)
class CutCheck:
    """Whether an automatic cut is allowed at `at`.

    `next_allowed_at` equals `at` when allowed; when not, it is the first allowed moment,
    or None only when none exists within the horizon, which happens when the search runs
    into a year the calendar does not cover under UnknownYear.NO_CUT.
    """

    at: datetime
    allowed: bool
    reason: NoCutReason | None
    next_allowed_at: datetime | None

    @property
    def message(self) -> str:
        """Chinese explanation for the operation log and the staff panel."""
        if self.allowed or self.reason is None:
            return "允许断电"
        text = _REASON_TEXT[self.reason]
        if self.next_allowed_at is None:
            return text
        return f"{text}，最早 {self.next_allowed_at:%Y-%m-%d %H:%M} 可断电"


def day_kind(day: date, unknown_year: UnknownYear = UnknownYear.NO_CUT) -> DayKind:
    """Classify one local calendar day with the maintained holiday calendar."""
    try:
        if chinese_calendar.is_workday(day):
            return DayKind.WORKDAY  # includes make-up working days (调休上班)
        _, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return _fallback_day_kind(day, unknown_year)
    return DayKind.HOLIDAY if name is not None else DayKind.WEEKEND


def _fallback_day_kind(day: date, unknown_year: UnknownYear) -> DayKind:
    if unknown_year is UnknownYear.NO_CUT:
        return DayKind.UNKNOWN
    for month, first, last in _FIXED_HOLIDAYS:
        if day.month == month and first <= day.day <= last:
            return DayKind.HOLIDAY
    return DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WORKDAY


def _in_night(t: time, policy: NoCutPolicy) -> bool:
    start, end = policy.night_start, policy.night_end
    if start is None or end is None:
        return False
    if start < end:
        return start <= t < end
    return t >= start or t < end  # the window spans midnight


def _blocking_reason(local: datetime, policy: NoCutPolicy) -> NoCutReason | None:
    kind = day_kind(local.date(), policy.unknown_year)
    if kind is DayKind.UNKNOWN:
        return NoCutReason.CALENDAR_UNKNOWN
    if kind is DayKind.HOLIDAY and policy.holidays:
        return NoCutReason.HOLIDAY
    if kind is DayKind.WEEKEND and policy.weekends:
        return NoCutReason.WEEKEND
    if _in_night(local.time(), policy):
        return NoCutReason.NIGHT
    return None


def _skip(local: datetime, reason: NoCutReason, policy: NoCutPolicy) -> datetime:
    """The next candidate moment after `local`, past whatever blocks it now."""
    tz = local.tzinfo
    if reason is NoCutReason.NIGHT:
        assert policy.night_end is not None  # a NIGHT reason implies a window
        end_today = datetime.combine(local.date(), policy.night_end, tzinfo=tz)
        return end_today if end_today > local else end_today + timedelta(days=1)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=tz)


def check(now: datetime, policy: NoCutPolicy | None = None) -> CutCheck:
    """May the platform cut supply automatically at `now` (timezone-aware)?"""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    policy = policy or NoCutPolicy()
    local = now.astimezone(ZoneInfo(policy.timezone))
    first_reason = _blocking_reason(local, policy)
    if first_reason is None:
        return CutCheck(at=now, allowed=True, reason=None, next_allowed_at=now)
    candidate, reason = local, first_reason
    while reason is not None:
        if candidate - local > _HORIZON:
            return CutCheck(at=now, allowed=False, reason=first_reason, next_allowed_at=None)
        candidate = _skip(candidate, reason, policy)
        reason = _blocking_reason(candidate, policy)
    return CutCheck(at=now, allowed=False, reason=first_reason, next_allowed_at=candidate)
