"""No-cut windows: nights, weekends, statutory holidays, make-up days, unknown years."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.metering.nocut import (
    DayKind,
    NoCutPolicy,
    NoCutReason,
    UnknownYear,
    check,
    day_kind,
)

SH = ZoneInfo("Asia/Shanghai")


def at(y: int, mo: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# --- calendar days -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        (date(2025, 9, 16), DayKind.WORKDAY),  # an ordinary Tuesday
        (date(2025, 9, 20), DayKind.WEEKEND),  # an ordinary Saturday
        (date(2025, 10, 1), DayKind.HOLIDAY),  # 国庆
        (date(2025, 10, 6), DayKind.HOLIDAY),  # 中秋 inside the National Day break
        (date(2025, 10, 8), DayKind.HOLIDAY),  # bridged day (调休放假), a Wednesday
        (date(2025, 9, 28), DayKind.WORKDAY),  # make-up working Sunday (调休上班)
        (date(2025, 10, 11), DayKind.WORKDAY),  # make-up working Saturday
        (date(2026, 2, 17), DayKind.HOLIDAY),  # 春节 2026
        (date(2026, 2, 14), DayKind.WORKDAY),  # make-up Saturday before 春节 2026
        (date(2030, 3, 5), DayKind.UNKNOWN),  # the package has no 2030 data
    ],
)
def test_day_kind(day: date, kind: DayKind) -> None:
    assert day_kind(day) is kind


def test_unknown_year_weekdays_fallback_keeps_weekends_and_fixed_holidays() -> None:
    fallback = UnknownYear.WEEKDAYS
    assert day_kind(date(2030, 3, 5), fallback) is DayKind.WORKDAY  # Tuesday
    assert day_kind(date(2030, 3, 9), fallback) is DayKind.WEEKEND  # Saturday
    assert day_kind(date(2030, 10, 2), fallback) is DayKind.HOLIDAY  # 国庆
    assert day_kind(date(2030, 1, 1), fallback) is DayKind.HOLIDAY  # 元旦
    assert day_kind(date(2030, 5, 5), fallback) is DayKind.HOLIDAY  # 劳动节
    assert day_kind(date(2030, 5, 6), fallback) is DayKind.WORKDAY


# --- check: worked examples --------------------------------------------------------


def test_weekday_daytime_allows_cutting() -> None:
    result = check(at(2025, 9, 16, 10))
    assert result.allowed
    assert result.reason is None
    assert result.next_allowed_at == at(2025, 9, 16, 10)
    assert result.message == "允许断电"


def test_weekday_evening_is_night_until_eight_next_morning() -> None:
    result = check(at(2025, 9, 16, 21))
    assert not result.allowed
    assert result.reason is NoCutReason.NIGHT
    assert result.next_allowed_at == at(2025, 9, 17, 8)
    assert result.message == "夜间不断电，最早 2025-09-17 08:00 可断电"


def test_early_morning_waits_for_eight_the_same_day() -> None:
    assert check(at(2025, 9, 16, 7, 59)).next_allowed_at == at(2025, 9, 16, 8)


def test_night_window_edges() -> None:
    assert check(at(2025, 9, 16, 8, 0)).allowed  # the window ends at 08:00
    assert not check(at(2025, 9, 16, 20, 0)).allowed  # and starts at 20:00
    assert check(at(2025, 9, 16, 19, 59)).allowed


def test_friday_night_defers_to_monday_morning() -> None:
    result = check(at(2025, 9, 19, 21))
    assert result.reason is NoCutReason.NIGHT
    assert result.next_allowed_at == at(2025, 9, 22, 8)


def test_saturday_defers_to_monday_morning() -> None:
    result = check(at(2025, 9, 20, 10))
    assert result.reason is NoCutReason.WEEKEND
    assert result.next_allowed_at == at(2025, 9, 22, 8)
    assert result.message == "周末不断电，最早 2025-09-22 08:00 可断电"


def test_national_day_defers_to_the_first_workday_after_the_break() -> None:
    result = check(at(2025, 10, 1, 10))
    assert result.reason is NoCutReason.HOLIDAY
    assert result.next_allowed_at == at(2025, 10, 9, 8)


def test_evening_before_national_day_defers_past_the_whole_break() -> None:
    result = check(at(2025, 9, 30, 20, 30))
    assert result.reason is NoCutReason.NIGHT
    assert result.next_allowed_at == at(2025, 10, 9, 8)


def test_make_up_working_days_allow_cutting_in_daytime() -> None:
    assert check(at(2025, 9, 28, 10)).allowed  # Sunday, 调休上班
    assert check(at(2025, 10, 11, 10)).allowed  # Saturday, 调休上班


def test_spring_festival_2026() -> None:
    result = check(at(2026, 2, 16, 10))
    assert result.reason is NoCutReason.HOLIDAY
    assert result.next_allowed_at == at(2026, 2, 24, 8)


def test_input_in_utc_is_judged_in_shanghai_time() -> None:
    result = check(datetime(2025, 9, 16, 13, 0, tzinfo=UTC))  # 21:00 in Shanghai
    assert result.reason is NoCutReason.NIGHT
    assert result.next_allowed_at == at(2025, 9, 17, 8)


def test_unknown_year_does_not_cut_and_promises_nothing() -> None:
    result = check(at(2030, 3, 5, 10))
    assert not result.allowed
    assert result.reason is NoCutReason.CALENDAR_UNKNOWN
    assert result.next_allowed_at is None
    assert result.message == "节假日日历未覆盖该年份，暂不断电"


def test_last_night_of_the_known_calendar_runs_into_the_unknown_year() -> None:
    result = check(at(2026, 12, 31, 21))
    assert result.reason is NoCutReason.NIGHT
    assert result.next_allowed_at is None


def test_unknown_year_weekdays_policy_keeps_cutting_on_weekdays() -> None:
    policy = NoCutPolicy(unknown_year=UnknownYear.WEEKDAYS)
    assert check(at(2030, 3, 5, 10), policy).allowed
    assert check(at(2030, 3, 9, 10), policy).next_allowed_at == at(2030, 3, 11, 8)


# --- policies ----------------------------------------------------------------------


def test_site_without_weekend_rule_cuts_on_saturday_daytime() -> None:
    assert check(at(2025, 9, 20, 10), NoCutPolicy(weekends=False)).allowed


def test_site_without_holiday_rule_still_keeps_nights() -> None:
    policy = NoCutPolicy(holidays=False)
    assert check(at(2025, 10, 8, 10), policy).allowed  # a bridged Wednesday
    assert check(at(2025, 10, 8, 22), policy).reason is NoCutReason.NIGHT


def test_site_without_night_window() -> None:
    assert check(at(2025, 9, 16, 23), NoCutPolicy(night_start=None, night_end=None)).allowed


def test_night_window_not_crossing_midnight() -> None:
    policy = NoCutPolicy(night_start=time(0, 0), night_end=time(6, 0))
    assert check(at(2025, 9, 16, 23), policy).allowed
    assert check(at(2025, 9, 16, 5), policy).next_allowed_at == at(2025, 9, 16, 6)


def test_invalid_policies_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        NoCutPolicy(night_start=time(20, 0), night_end=None)
    with pytest.raises(ValueError):
        NoCutPolicy(night_start=time(8, 0), night_end=time(8, 0))
    with pytest.raises(ValueError):
        check(datetime(2025, 9, 16, 10))


# --- properties --------------------------------------------------------------------

known_moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 11, 30), timezones=st.just(SH)
)


@settings(max_examples=150, deadline=None)
@given(now=known_moments)
def test_next_allowed_is_allowed_and_nothing_earlier_is(now: datetime) -> None:
    result = check(now)
    assert result.next_allowed_at is not None
    assert check(result.next_allowed_at).allowed
    if result.allowed:
        assert result.next_allowed_at == now
        return
    assert result.next_allowed_at > now
    probe = now
    while probe < result.next_allowed_at:  # hourly probes plus the minute before
        assert not check(probe).allowed
        probe += timedelta(hours=1)
    assert not check(result.next_allowed_at - timedelta(minutes=1)).allowed
