"""Fee items' arithmetic (server/property/fees.py): worked examples a clerk can check by hand,
and properties over any rule, tenancy and balance."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.property import fees
from server.property.fees import FeeBasis, FeeCycle, Rule, Span

RENT = Rule(FeeBasis.FIXED, Decimal(300_000), FeeCycle.MONTHLY)  # ¥3,000.00 a month
PROPERTY = Rule(FeeBasis.AREA, Decimal(350), FeeCycle.MONTHLY)  # ¥3.50 /m² a month
NOVEMBER = fees.month_span(2026, 11)  # 30 days


def test_moving_in_on_the_17th_of_a_30_day_month_pays_14_of_30_days() -> None:
    held = Span(date(2026, 11, 17), date(9999, 1, 1))
    [period] = fees.periods_starting_in(RENT, 2026, 11)
    assert period == NOVEMBER and period.days == 30
    rent = fees.charge(RENT, Decimal("56.30"), period, held)
    # 3,000.00 × 14 / 30 = 1,400.00
    assert rent is not None and (rent.days, rent.period_days, rent.amount_fen) == (14, 30, 140_000)
    prop = fees.charge(PROPERTY, Decimal("56.30"), period, held)
    # 56.30 m² × 3.50 = 197.05 a month; × 14 / 30 = 91.9566… → 91.96
    assert prop is not None and (prop.full_fen, prop.amount_fen) == (19_705, 9_196)


def test_a_whole_month_is_the_full_amount_and_a_later_tenancy_pays_nothing() -> None:
    before = Span(date(2026, 1, 1), date(9999, 1, 1))
    after = Span(date(2026, 12, 1), date(9999, 1, 1))
    assert fees.charge(RENT, Decimal(0), NOVEMBER, before).amount_fen == 300_000  # type: ignore[union-attr]
    assert fees.charge(RENT, Decimal(0), NOVEMBER, after) is None


def test_quarterly_yearly_and_one_off_periods() -> None:
    quarterly = Rule(FeeBasis.FIXED, Decimal(90_000), FeeCycle.QUARTERLY, billing_day=5)
    assert fees.periods_starting_in(quarterly, 2026, 10) == [
        Span(date(2026, 10, 5), date(2027, 1, 5))
    ]
    assert fees.periods_starting_in(quarterly, 2026, 11) == []
    yearly = Rule(FeeBasis.FIXED, Decimal(1), FeeCycle.YEARLY)
    assert [p.days for p in fees.periods_starting_in(yearly, 2028, 1)] == [366]
    once = Rule(FeeBasis.FIXED, Decimal(5_000), FeeCycle.ONCE, due=date(2026, 11, 20))
    [day] = fees.periods_starting_in(once, 2026, 11)
    held = Span(date(2026, 11, 17), date(9999, 1, 1))
    assert fees.charge(once, Decimal(0), day, held).amount_fen == 5_000  # type: ignore[union-attr]
    assert fees.charge(once, Decimal(0), day, Span(date(2026, 11, 21), date(9999, 1, 1))) is None


def test_a_fee_the_wallet_cannot_cover_is_billed_and_never_takes_it_below_the_floor() -> None:
    assert fees.split_deduction(10_000, 30_000, 1) == (10_000, 0)
    assert fees.split_deduction(10_000, 4_000, 1) == (3_999, 6_001)
    assert fees.split_deduction(10_000, -500, 1) == (0, 10_000)
    assert fees.split_deduction(10_000, -500, None) == (10_000, 0)  # fees may cut supply


def test_bad_rules_and_months_are_refused() -> None:
    with pytest.raises(ValueError):
        Rule(FeeBasis.FIXED, Decimal("1.5"), FeeCycle.MONTHLY)
    with pytest.raises(ValueError):
        Rule(FeeBasis.FIXED, Decimal(1), FeeCycle.MONTHLY, billing_day=29)
    with pytest.raises(ValueError):
        Rule(FeeBasis.FIXED, Decimal(1), FeeCycle.ONCE)
    for text in ("2026-13", "26-1", "2026/11", "", "2026-1x"):
        with pytest.raises(ValueError):
            fees.parse_month(text)


rules = st.builds(
    Rule,
    st.sampled_from(FeeBasis),
    st.integers(0, 10**7).map(Decimal),
    st.sampled_from([FeeCycle.MONTHLY, FeeCycle.QUARTERLY, FeeCycle.YEARLY]),
    st.integers(1, 28),
)
areas = st.decimals(0, 5_000, places=2)
days = st.dates(date(2024, 1, 1), date(2028, 12, 31))


@given(rules, areas, st.integers(2024, 2028), st.integers(1, 12), days, st.integers(0, 400))
def test_a_prorated_charge_is_between_nothing_and_the_full_amount(
    rule: Rule, area: Decimal, year: int, month: int, start: date, length: int
) -> None:
    held = Span(start, start + timedelta(days=length))
    for period in fees.periods_starting_in(rule, year, month):
        found = fees.charge(rule, area, period, held)
        if found is None:
            assert held.end <= period.start or held.start >= period.end or length == 0
            continue
        assert 0 < found.days <= found.period_days == period.days
        assert 0 <= found.amount_fen <= found.full_fen
        if found.days == found.period_days:
            assert found.amount_fen == found.full_fen


@given(rules, areas, st.integers(2024, 2027), st.integers(1, 12), st.integers(1, 27))
def test_moving_out_and_in_on_the_same_day_splits_the_period_to_within_a_fen(
    rule: Rule, area: Decimal, year: int, month: int, offset: int
) -> None:
    """Two tenants one after the other pay the period's full amount, give or take the one
    rounding each makes."""
    for period in fees.periods_starting_in(rule, year, month):
        cut = period.start + timedelta(days=min(offset, period.days - 1))
        first = fees.charge(rule, area, period, Span(date(2000, 1, 1), cut))
        second = fees.charge(rule, area, period, Span(cut, date(9999, 1, 1)))
        parts = [c.amount_fen for c in (first, second) if c is not None]
        assert abs(sum(parts) - fees.full_amount(rule, area)) <= 1


@given(st.integers(0, 10**8), st.integers(-(10**8), 10**8), st.integers(0, 10**6))
def test_deducted_and_billed_add_up_and_the_floor_holds(fee: int, balance: int, floor: int) -> None:
    deducted, billed = fees.split_deduction(fee, balance, floor)
    assert deducted + billed == fee and deducted >= 0 and billed >= 0
    assert deducted == 0 or balance - deducted >= floor
