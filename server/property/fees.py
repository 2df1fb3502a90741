"""Fee items' arithmetic: periods, the full amount of a period, proration by days. Pure.

A fee item is a fixed amount or a rate per m² of the room's area, charged per period:

    monthly     a period starts every month on the billing day (1–28)
    quarterly   … in January, April, July and October on the billing day
    yearly      … in January on the billing day
    once        a one-off on its due date, never prorated

A period is the half-open date range [start, end). The full amount of a period is the fixed
amount, or area × rate rounded once to the fen (half up). A tenant who holds the room for
part of a period (moving in or out) pays the full amount × occupied days ÷ the period's days,
rounded once to the fen (half up): moving in on the 17th of a 30-day month is 14 of 30 days
(17th to 30th inclusive).

The run for a month charges each item's periods that *start* in that month, so each period
is charged exactly once whatever day the run happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class FeeBasis(StrEnum):
    FIXED = "fixed"  # 固定金额
    AREA = "area"  # 按面积（元/m²）


class FeeCycle(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    ONCE = "once"


class FeeCollection(StrEnum):
    DEDUCT = "deduct"  # 从余额扣除
    BILL = "bill"  # 出账单催缴


class FeeKind(StrEnum):
    RENT = "rent"
    PROPERTY_FEE = "property_fee"
    SERVICE_FEE = "service_fee"
    CUSTOM = "custom"  # the organisation's own item, with its own revenue account


BASIS_LABELS = {FeeBasis.FIXED: "固定金额", FeeBasis.AREA: "按面积"}
CYCLE_LABELS = {
    FeeCycle.MONTHLY: "每月",
    FeeCycle.QUARTERLY: "每季度",
    FeeCycle.YEARLY: "每年",
    FeeCycle.ONCE: "一次性",
}
COLLECTION_LABELS = {FeeCollection.DEDUCT: "从余额扣除", FeeCollection.BILL: "出账单催缴"}
KIND_LABELS = {
    FeeKind.RENT: "租金",
    FeeKind.PROPERTY_FEE: "物业费",
    FeeKind.SERVICE_FEE: "服务费",
    FeeKind.CUSTOM: "自定义",
}
_FIRST_MONTHS = {FeeCycle.MONTHLY: 1, FeeCycle.QUARTERLY: 3, FeeCycle.YEARLY: 12}
MAX_BILLING_DAY = 28  # every month has it


@dataclass(frozen=True, slots=True)
class Rule:
    """What an item charges: `amount` is fen (fixed) or fen per m² (area), exact decimal."""

    basis: FeeBasis
    amount: Decimal
    cycle: FeeCycle
    billing_day: int = 1
    due: date | None = None  # a one-off's date

    def __post_init__(self) -> None:
        if self.amount < 0 or self.amount != self.amount.quantize(Decimal("0.0001")):
            raise ValueError("amount must be a non-negative decimal with at most 4 places")
        if self.basis is FeeBasis.FIXED and self.amount != int(self.amount):
            raise ValueError("a fixed amount is whole fen")
        if not 1 <= self.billing_day <= MAX_BILLING_DAY:
            raise ValueError("billing day must be 1..28")
        if (self.cycle is FeeCycle.ONCE) != (self.due is not None):
            raise ValueError("a one-off item, and only it, has a due date")


@dataclass(frozen=True, slots=True)
class Span:
    """[start, end): a period, or the days a tenant held the room (end None: still there)."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True, slots=True)
class Charge:
    """One item's amount for one period and one tenancy, with how it was reached."""

    period: Span
    full_fen: int  # the whole period's amount
    days: int  # days held within the period
    period_days: int
    amount_fen: int  # full × days ÷ period_days, to the fen


def fen(value: Decimal) -> int:
    """Round once to the fen, half up."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def periods_starting_in(rule: Rule, year: int, month: int) -> list[Span]:
    """The item's periods that start in the month (the month's run charges these)."""
    if rule.cycle is FeeCycle.ONCE:
        assert rule.due is not None
        if (rule.due.year, rule.due.month) == (year, month):
            return [Span(rule.due, rule.due)]
        return []
    step = _FIRST_MONTHS[rule.cycle]
    if (month - 1) % step:
        return []
    start = date(year, month, rule.billing_day)
    end_year, end_month = _add_months(year, month, step)
    return [Span(start, date(end_year, end_month, rule.billing_day))]


def full_amount(rule: Rule, area_m2: Decimal) -> int:
    """The whole period's amount in fen: fixed, or area × rate rounded once."""
    if rule.basis is FeeBasis.FIXED:
        return int(rule.amount)
    if area_m2 < 0:
        raise ValueError("area must not be negative")
    return fen(area_m2 * rule.amount)


def charge(rule: Rule, area_m2: Decimal, period: Span, held: Span) -> Charge | None:
    """The amount for `period` of a tenant holding the room over `held` (None: not held in
    it). A one-off is charged whole when its due date is within the tenancy."""
    full = full_amount(rule, area_m2)
    if rule.cycle is FeeCycle.ONCE:
        inside = held.start <= period.start < held.end
        return Charge(period, full, 1, 1, full) if inside else None
    start, end = max(period.start, held.start), min(period.end, held.end)
    days = (end - start).days
    if days <= 0:
        return None
    amount = full if days == period.days else fen(Decimal(full) * days / period.days)
    return Charge(period, full, days, period.days, amount)


def month_span(year: int, month: int) -> Span:
    """The calendar month as a span."""
    end_year, end_month = _add_months(year, month, 1)
    return Span(date(year, month, 1), date(end_year, end_month, 1))


def parse_month(text: str) -> tuple[int, int]:
    """ "2026-11" → (2026, 11); anything else is a ValueError."""
    head, sep, tail = text.strip().partition("-")
    if not (sep and head.isdigit() and tail.isdigit() and len(head) == 4 and len(tail) <= 2):
        raise ValueError(f"not a month: {text!r}")
    year, month = int(head), int(tail)
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        raise ValueError(f"not a month: {text!r}")
    return year, month


def split_deduction(fee_fen: int, balance_fen: int, floor_fen: int | None) -> tuple[int, int]:
    """(deducted from the wallet, billed as arrears) for a fee the wallet may pay down to
    `floor_fen` (None: all of it, the site lets fees cut supply)."""
    if fee_fen < 0:
        raise ValueError("a fee is not negative")
    if floor_fen is None:
        return fee_fen, 0
    deducted = max(0, min(fee_fen, balance_fen - floor_fen))
    return deducted, fee_fen - deducted
