"""Days-left forecast from recent daily charges."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.metering.forecast import DailyCharge, ForecastBasis, days_left

TODAY = date(2025, 9, 16)


def week(*fens: int) -> list[DailyCharge]:
    """Daily charges ending yesterday, oldest first."""
    n = len(fens)
    return [DailyCharge(TODAY - timedelta(days=n - i), fen) for i, fen in enumerate(fens)]


def test_steady_shop_worked_example() -> None:
    # 7 days at 10.00 元 a day, 25.00 元 left: 2.5 days.
    result = days_left(2500, week(*[1000] * 7), TODAY)
    assert result.basis is ForecastBasis.RECENT_USE
    assert result.days == Decimal("2.5")
    assert result.daily_fen == Decimal(1000)
    assert result.history_days == 7


def test_days_are_rounded_down_to_a_tenth() -> None:
    # 7 days totalling 70.00 元, 33.33 元 left: 3.333 → 3.3 days (never promise more).
    assert days_left(3333, week(*[1000] * 7), TODAY).days == Decimal("3.3")


def test_a_zero_day_lowers_the_average_but_does_not_break_it() -> None:
    # Shop closed one day: 6 × 12.00 + 0 = 72.00 元 over 7 days → 10.29 元/day.
    result = days_left(2000, week(1200, 1200, 1200, 0, 1200, 1200, 1200), TODAY)
    assert result.daily_fen == Decimal(7200) / 7
    assert result.days == Decimal("1.9")


def test_missing_days_caught_up_later_are_spread_over_the_span() -> None:
    # Gateway offline on days 3–5: their use lands on day 6 as one 40.00 元 charge.
    history = [
        DailyCharge(TODAY - timedelta(days=7), 1000),
        DailyCharge(TODAY - timedelta(days=6), 1000),
        DailyCharge(TODAY - timedelta(days=2), 4000),
        DailyCharge(TODAY - timedelta(days=1), 1000),
    ]
    result = days_left(3000, history, TODAY)
    assert result.daily_fen == Decimal(1000)  # 70.00 元 over 7 days, as if nothing happened
    assert result.days == Decimal("3.0")


def test_today_and_old_days_outside_the_window_are_ignored() -> None:
    history = [
        DailyCharge(TODAY, 99_999),  # today is still running
        DailyCharge(TODAY - timedelta(days=30), 99_999),  # too old for a 14-day window
        DailyCharge(TODAY - timedelta(days=2), 500),
        DailyCharge(TODAY - timedelta(days=1), 500),
    ]
    result = days_left(1000, history, TODAY)
    assert result.daily_fen == Decimal(500)
    assert result.history_days == 2
    assert result.days == Decimal("2.0")


def test_no_history_says_so() -> None:
    result = days_left(5000, [], TODAY)
    assert result.basis is ForecastBasis.NO_HISTORY
    assert result.days is None
    assert result.history_days == 0


def test_vacant_room_with_no_use_cannot_run_out() -> None:
    result = days_left(5000, week(0, 0, 0), TODAY)
    assert result.basis is ForecastBasis.NO_USE
    assert result.days is None
    assert result.history_days == 3


def test_empty_balance_is_zero_days_with_or_without_history() -> None:
    assert days_left(0, week(1000), TODAY).days == Decimal("0.0")
    assert days_left(-500, week(1000), TODAY).basis is ForecastBasis.EXHAUSTED
    exhausted = days_left(-500, [], TODAY)
    assert exhausted.basis is ForecastBasis.EXHAUSTED
    assert exhausted.days == Decimal("0.0")


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        days_left(100, [], TODAY, window_days=0)


@settings(max_examples=150, deadline=None)
@given(
    balance=st.integers(min_value=1, max_value=10_000_000),
    fens=st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=14),
)
def test_days_times_daily_never_exceeds_the_balance(balance: int, fens: list[int]) -> None:
    result = days_left(balance, week(*fens), TODAY)
    if sum(fens) == 0:
        assert result.basis is ForecastBasis.NO_USE
        return
    assert result.days is not None and result.daily_fen is not None
    assert result.days * result.daily_fen <= balance  # rounded down: never over-promises
    assert (result.days + Decimal("0.1")) * result.daily_fen > balance  # but by < 0.1 day
