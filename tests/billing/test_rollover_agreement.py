"""Ingest and billing agree on every register step: both ask `advance` (server.metering.
reading), so what ingest accepts (ACCEPT, ROLLOVER) billing prices for the same use, and
what ingest holds as a fall (RESET, IMPLAUSIBLE) billing refuses as a NegativeDelta."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.billing.usage import NegativeDelta, register_delta
from server.metering.ingest import MeterSpec, Outcome, classify
from server.metering.reading import MODULUS, Reading

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# So large an allowance that only the roll-over rule decides (10 days at 100 MW).
AMPLE = MeterSpec(rated_per_hour=Decimal(100_000))
registers = st.decimals(min_value=0, max_value=Decimal("999999.99"), places=2)


def _step(prev: Decimal, curr: Decimal) -> Outcome:
    later = Reading(T0 + timedelta(days=10), curr)
    verdict = classify(later, Reading(T0, prev), AMPLE)
    if verdict.billable:
        assert verdict.usage.register == register_delta(prev, curr, MODULUS)
    return verdict.outcome


@given(registers, registers)
def test_ingest_bills_exactly_what_billing_prices(prev: Decimal, curr: Decimal) -> None:
    try:
        register_delta(prev, curr, MODULUS)
    except NegativeDelta:
        assert _step(prev, curr) in {Outcome.RESET, Outcome.IMPLAUSIBLE}
    else:
        assert _step(prev, curr) in {Outcome.ACCEPT, Outcome.ROLLOVER}


@pytest.mark.parametrize(
    ("prev", "curr", "outcome"),
    [
        ("999999.50", "000000.30", Outcome.ROLLOVER),  # 0.80 over the top
        ("999000.00", "600000.00", Outcome.IMPLAUSIBLE),  # "wrapped" 601000: over half the range
        ("999000.00", "000500.00", Outcome.ROLLOVER),  # 1500 over the top, allowance ample
        ("123456.78", "000000.00", Outcome.RESET),  # cleared: far below the previous value
    ],
)
def test_worked_steps(prev: str, curr: str, outcome: Outcome) -> None:
    assert _step(Decimal(prev), Decimal(curr)) is outcome
