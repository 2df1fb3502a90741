"""Where instants fall: band by season and holiday, band spans, tier periods."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D

import pytest

from server.tariffs import (
    LOCAL_TZ,
    Band,
    DaySchedule,
    FlatPlan,
    Season,
    Tier,
    TieredPlan,
    TierPeriod,
    TimeSegment,
    TouPlan,
    band_at,
    weekends,
)
from server.tariffs.calendar import band_spans, band_weights, period_start, period_starts_between


def day(*parts: tuple[int, int, Band]) -> DaySchedule:
    return DaySchedule(tuple(TimeSegment(time(a), time(b % 24), band) for a, b, band in parts))


WORKDAY = day((0, 8, Band.VALLEY), (8, 11, Band.FLAT), (11, 17, Band.PEAK), (17, 24, Band.FLAT))
SUMMER = day(
    (0, 8, Band.VALLEY), (8, 11, Band.FLAT), (11, 12, Band.SHARP), (12, 17, Band.PEAK),
    (17, 24, Band.FLAT),
)  # fmt: skip
HOLIDAY = day((0, 10, Band.DEEP_VALLEY), (10, 24, Band.FLAT))
PRICES = {b: D(1) for b in Band}
PLAN = TouPlan(
    PRICES,
    (
        Season("夏", frozenset({7, 8}), SUMMER, HOLIDAY),
        Season("其他", frozenset(set(range(1, 13)) - {7, 8}), WORKDAY, HOLIDAY),
    ),
)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def test_summer_adds_a_sharp_hour() -> None:
    assert band_at(PLAN, local(2025, 7, 15, 11, 30)) is Band.SHARP
    assert band_at(PLAN, local(2025, 6, 16, 11, 30)) is Band.PEAK


def test_holidays_by_set_by_predicate_and_not_at_all() -> None:
    national_day = date(2025, 10, 1)  # a Wednesday
    when = local(2025, 10, 1, 9, 0)
    assert band_at(PLAN, when) is Band.FLAT
    assert band_at(PLAN, when, {national_day}) is Band.DEEP_VALLEY
    assert band_at(PLAN, when, lambda d: d == national_day) is Band.DEEP_VALLEY
    assert band_at(PLAN, local(2025, 10, 4, 9, 0), weekends) is Band.DEEP_VALLEY  # Saturday
    assert band_at(PLAN, local(2025, 10, 6, 9, 0), weekends) is Band.FLAT  # Monday


def test_band_at_uses_shanghai_time_whatever_the_zone_given() -> None:
    # 03:30 UTC is 11:30 in Shanghai: peak, not valley.
    assert band_at(PLAN, datetime(2025, 3, 3, 3, 30, tzinfo=UTC)) is Band.PEAK


def test_plans_without_tou_are_all_flat() -> None:
    assert band_at(FlatPlan(D(1)), local(2025, 1, 1, 3)) is Band.FLAT
    assert band_at(TieredPlan((Tier(None, D(1)),)), local(2025, 1, 1, 3)) is Band.FLAT
    assert band_at(TieredPlan((Tier(None, D(0)),), base=PLAN), local(2025, 1, 1, 3)) is Band.VALLEY


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        band_at(PLAN, datetime(2025, 1, 1, 3))


def test_band_spans_cut_at_boundaries_and_across_midnight_and_seasons() -> None:
    spans = list(band_spans(PLAN, local(2025, 6, 30, 16, 0), local(2025, 7, 1, 11, 30)))
    assert [(a.hour, b.hour, b.minute, band) for a, b, band in spans] == [
        (16, 17, 0, Band.PEAK),
        (17, 0, 0, Band.FLAT),
        (0, 8, 0, Band.VALLEY),  # 1 July: the summer schedule from here on
        (8, 11, 0, Band.FLAT),
        (11, 11, 30, Band.SHARP),
    ]


def test_band_weights_add_up_to_the_elapsed_time() -> None:
    start, end = local(2025, 3, 1, 5, 17, 3), local(2025, 3, 9, 13, 1)
    weights = band_weights(PLAN, start, end, weekends)
    assert sum(weights.values()) == (end - start) // timedelta(microseconds=1)
    assert set(weights) == {Band.VALLEY, Band.FLAT, Band.PEAK, Band.DEEP_VALLEY}


def test_tier_periods_are_shanghai_calendar_months_and_years() -> None:
    # 2025-01-31 17:00 UTC is already 1 February in Shanghai.
    utc = datetime(2025, 1, 31, 17, 0, tzinfo=UTC)
    assert period_start(TierPeriod.MONTH, utc) == local(2025, 2, 1)
    assert period_start(TierPeriod.YEAR, utc) == local(2025, 1, 1)
    assert period_starts_between(TierPeriod.MONTH, local(2024, 11, 15), local(2025, 2, 1)) == [
        local(2024, 12, 1),
        local(2025, 1, 1),
    ]
    assert period_starts_between(TierPeriod.YEAR, local(2025, 1, 1), local(2025, 12, 31)) == []
