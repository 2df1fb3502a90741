"""`ingest.review`: what a held reading a person accepted becomes — a jump bills its whole
difference, a fall restarts the meter and bills nothing, bands that disagree are dropped, and
only a reading newer than every accepted one can be accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.metering.ingest import MeterSpec, Outcome, review
from server.metering.reading import Reading

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
SPEC = MeterSpec(rated_per_hour=Decimal(10), multiplier=Decimal(20))


def test_a_jump_bills_the_whole_difference_at_the_multiplier() -> None:
    verdict, stored = review(
        Reading(T0 + timedelta(hours=1), Decimal(300)), Reading(T0, Decimal(100)), SPEC
    )
    assert (verdict.outcome, verdict.usage.energy, verdict.billable) == (
        Outcome.ACCEPT, Decimal(4000), True
    )  # fmt: skip
    assert stored.total == Decimal(300)


def test_a_fall_restarts_and_bills_nothing() -> None:
    verdict, _ = review(
        Reading(T0 + timedelta(hours=1), Decimal(3)), Reading(T0, Decimal(900)), SPEC
    )
    assert (verdict.outcome, verdict.usage.energy, verdict.billable) == (
        Outcome.RESTART, Decimal(0), False
    )  # fmt: skip


def test_bands_that_disagree_are_dropped_and_the_total_billed() -> None:
    prev = Reading(T0, Decimal(100), {1: Decimal(50), 2: Decimal(50)})
    new = Reading(T0 + timedelta(hours=1), Decimal(101), {1: Decimal(90), 2: Decimal(11)})
    verdict, stored = review(new, prev, SPEC)
    assert (verdict.outcome, verdict.usage.energy, dict(stored.bands)) == (
        Outcome.ACCEPT, Decimal(20), {}
    )  # fmt: skip


def test_only_a_reading_newer_than_every_accepted_one() -> None:
    assert review(Reading(T0, Decimal(5)), None, SPEC)[0].outcome is Outcome.BASELINE
    with pytest.raises(ValueError):
        review(Reading(T0, Decimal(5)), Reading(T0, Decimal(4)), SPEC)
