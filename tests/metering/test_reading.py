"""The one roll-over rule (`advance`), as worked examples a clerk can check by hand and as
properties over any register."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.metering.reading import MODULUS, RegisterWentBack, advance

D = Decimal

# (prev, curr, modulus) → advance, read like byte vectors: the meter shows prev, then curr.
ADVANCES = [
    ("012345.67", "012346.92", MODULUS, "1.25"),  # forward
    ("000100.00", "000100.00", MODULUS, "0.00"),  # no use
    ("999999.50", "000000.30", MODULUS, "0.80"),  # wrapped past 999999.99
    ("999999.99", "000000.00", MODULUS, "0.01"),  # one step over the top
    ("600000.00", "099999.99", MODULUS, "499999.99"),  # just under half the range round
    ("9999.5", "0000.3", D("10000.0"), "0.8"),  # a smaller register
    ("12.5", "12.75", None, "0.25"),  # no modulus known: forward still counts
]
# Falls no roll-over explains: ingest holds them (RESET/IMPLAUSIBLE), billing refuses them.
FALLS = [
    ("000100.00", "000099.99", MODULUS),  # one step back: a misread, not a whole lap
    ("500000.00", "000000.00", MODULUS),  # exactly half the range round: not believed
    ("012345.67", "000000.00", MODULUS),  # cleared (清零) or replaced
    ("999999.50", "000000.30", None),  # would be a wrap, but the register's size is unknown
    ("1000000.00", "000000.30", MODULUS),  # prev beyond the register: no wrap from there
]


@pytest.mark.parametrize(("prev", "curr", "modulus", "expected"), ADVANCES)
def test_advance_worked_examples(prev: str, curr: str, modulus: Decimal | None, expected: str):
    assert advance(D(prev), D(curr), modulus) == D(expected)


@pytest.mark.parametrize(("prev", "curr", "modulus"), FALLS)
def test_falls_are_refused_with_both_values(prev: str, curr: str, modulus: Decimal | None):
    with pytest.raises(RegisterWentBack) as caught:
        advance(D(prev), D(curr), modulus)
    assert (caught.value.prev, caught.value.curr) == (D(prev), D(curr))


registers = st.decimals(min_value=0, max_value=D("999999.99"), places=2)


@given(registers, registers)
def test_advance_is_the_shorter_way_round_or_refused(prev: Decimal, curr: Decimal) -> None:
    """Forward is the difference; backwards is the wrap when that is under half the range;
    whatever it returns, adding it to prev lands on curr modulo the register's range."""
    try:
        moved = advance(prev, curr)
    except RegisterWentBack:
        assert curr < prev and MODULUS - prev + curr >= MODULUS / 2
        return
    assert 0 <= moved < MODULUS
    assert (prev + moved) % MODULUS == curr
    assert moved == curr - prev if curr >= prev else moved < MODULUS / 2


@given(registers, st.decimals(min_value=0, max_value=D("499999.99"), places=2))
def test_any_use_under_half_the_range_is_recovered(prev: Decimal, used: Decimal) -> None:
    """A meter that passed `used` (under half its range) since `prev` shows (prev + used) mod
    the modulus, and `advance` gives `used` back, wrapped or not."""
    assert advance(prev, (prev + used) % MODULUS) == used
