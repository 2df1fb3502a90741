"""Days-left forecast: how long the balance lasts at the account's recent daily use.

The estimate of daily use is the money charged over the recent window divided by the days
the window spans — from the first day with history (or the window start) to yesterday.
Dividing a total by a span, rather than averaging the days present, keeps it right when a
gateway was offline: the missing days' use lands later as one catch-up charge, which a mean
over present days (or a median) would count against too few days. A zero day is just a day
without use. Today is left out because it is still running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

DEFAULT_WINDOW_DAYS = 14
_DAYS_QUANTUM = Decimal("0.1")


class ForecastBasis(StrEnum):
    RECENT_USE = "recent_use"  # days = balance / average daily charge
    EXHAUSTED = "exhausted"  # the balance is already at or below zero: 0 days
    NO_HISTORY = "no_history"  # no charge recorded in the window: cannot forecast
    NO_USE = "no_use"  # history exists but nothing was charged: the balance is not falling


@dataclass(frozen=True, slots=True)
class DailyCharge:
    """Money charged to the account for use on one local calendar day."""

    day: date
    fen: int


@dataclass(frozen=True, slots=True)
class DaysLeft:
    """The forecast. `days` is None exactly when `basis` is NO_HISTORY or NO_USE."""

    basis: ForecastBasis
    days: Decimal | None
    daily_fen: Decimal | None  # the estimated daily charge the forecast used
    history_days: int  # days the estimate spans (0 when there is no history)


def days_left(
    balance_fen: int,
    history: Iterable[DailyCharge],
    today: date,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> DaysLeft:
    """Forecast how many days `balance_fen` lasts, rounded down to 0.1 day.

    `history` holds the days the account was charged; days absent from it count as
    covered by the span (their use shows up in a later catch-up charge, or was zero).
    """
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    window_start = today - timedelta(days=window_days)
    recent = [c for c in history if window_start <= c.day < today]
    if not recent:
        return _without_rate(balance_fen, ForecastBasis.NO_HISTORY, 0)
    span = (today - min(c.day for c in recent)).days
    total = sum(c.fen for c in recent)
    if total <= 0:
        return _without_rate(balance_fen, ForecastBasis.NO_USE, span)
    daily = Decimal(total) / Decimal(span)
    if balance_fen <= 0:
        return DaysLeft(ForecastBasis.EXHAUSTED, Decimal("0.0"), daily, span)
    days = (Decimal(balance_fen) / daily).quantize(_DAYS_QUANTUM, rounding=ROUND_DOWN)
    return DaysLeft(ForecastBasis.RECENT_USE, days, daily, span)


def _without_rate(balance_fen: int, basis: ForecastBasis, span: int) -> DaysLeft:
    # Without a rate the only certain answer is an empty balance.
    if balance_fen <= 0:
        return DaysLeft(ForecastBasis.EXHAUSTED, Decimal("0.0"), None, span)
    return DaysLeft(basis, None, None, span)
