"""Where instants fall in a tariff's calendar: TOU band, season, holiday, tier period.

Business time is Asia/Shanghai. Whether a day is a holiday is the caller's decision, passed
in as a predicate or a set of dates (e.g. `chinese_calendar.is_holiday`, or `weekends`), so
this module stays pure and never reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.tariffs.plans import Band, DaySchedule, Plan, TierPeriod, TouPlan, tou_of

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MICROSECOND = timedelta(microseconds=1)

HolidayRule = Callable[[date], bool] | AbstractSet[date] | None


def no_holidays(_: date) -> bool:
    """Every day follows the workday schedule."""
    return False


def weekends(day: date) -> bool:
    """Saturdays and Sundays follow the holiday schedule."""
    return day.weekday() >= 5


def holiday_predicate(rule: HolidayRule) -> Callable[[date], bool]:
    """Normalise a holiday rule (predicate, set of dates or None) to a predicate."""
    if rule is None:
        return no_holidays
    if isinstance(rule, AbstractSet):
        dates = frozenset(rule)
        return dates.__contains__
    return rule


def local(at: datetime) -> datetime:
    """`at` in Asia/Shanghai; naive datetimes are refused (their meaning is a guess)."""
    if at.utcoffset() is None:
        raise ValueError("naive datetime: business time must be timezone-aware")
    return at.astimezone(LOCAL_TZ)


def schedule_for(plan: TouPlan, day: date, is_holiday: HolidayRule = None) -> DaySchedule:
    """The day schedule of `day`: its season's, the holiday one when the day is a holiday."""
    season = plan.season_for(day.month)
    if season.holiday is not None and holiday_predicate(is_holiday)(day):
        return season.holiday
    return season.workday


def band_at(plan: Plan, at: datetime, is_holiday: HolidayRule = None) -> Band:
    """The TOU band of instant `at` under `plan`; plans without TOU are all 平 (flat)."""
    tou = tou_of(plan)
    if tou is None:
        return Band.FLAT
    t = local(at)
    return schedule_for(tou, t.date(), is_holiday).band_at_minute(t.hour * 60 + t.minute)


def band_spans(
    plan: TouPlan, start: datetime, end: datetime, is_holiday: HolidayRule = None
) -> Iterator[tuple[datetime, datetime, Band]]:
    """Cut [start, end) at the band boundaries of `plan`: (from, to, band) in order."""
    predicate = holiday_predicate(is_holiday)
    at, stop = local(start), local(end)
    while at < stop:
        midnight = datetime.combine(at.date(), time(0), tzinfo=LOCAL_TZ)
        minute = (at - midnight) // timedelta(minutes=1)
        schedule = schedule_for(plan, at.date(), predicate)
        _, range_end, band = next(r for r in schedule.ranges if r[0] <= minute < r[1])
        upto = min(stop, midnight + timedelta(minutes=range_end))
        yield at, upto, band
        at = upto


def band_weights(
    plan: TouPlan, start: datetime, end: datetime, is_holiday: HolidayRule = None
) -> dict[Band, int]:
    """Microseconds of [start, end) spent in each band."""
    weights: dict[Band, int] = {}
    for a, b, band in band_spans(plan, start, end, is_holiday):
        weights[band] = weights.get(band, 0) + (b - a) // MICROSECOND
    return weights


def period_start(period: TierPeriod, at: datetime) -> datetime:
    """Local midnight starting the calendar month or year that contains `at`."""
    t = local(at)
    first = date(t.year, t.month, 1) if period is TierPeriod.MONTH else date(t.year, 1, 1)
    return datetime.combine(first, time(0), tzinfo=LOCAL_TZ)


def next_period_start(period: TierPeriod, at: datetime) -> datetime:
    """Local midnight starting the month or year after the one that contains `at`."""
    start = period_start(period, at)
    if period is TierPeriod.YEAR:
        return start.replace(year=start.year + 1)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def period_starts_between(period: TierPeriod, start: datetime, end: datetime) -> list[datetime]:
    """Starts of tier periods strictly inside (start, end)."""
    found = []
    at = next_period_start(period, start)
    while at < end:
        found.append(at)
        at = next_period_start(period, at)
    return found
