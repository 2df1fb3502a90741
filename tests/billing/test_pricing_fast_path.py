"""`price_usage`'s short path for the common case — the newest version in force over the whole
slice, no tiers: priced as one piece without cutting — gives the general path's result to the
digit (same lines, same Decimals with the same exponents), and leaves every other slice to it.
The batch (server.billing.round) and single (`bill_usage`) billing paths both price through
`price_usage`; test_bill_round.py holds the two to each other.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.core.errors import ShuidianError
from server.tariffs import (
    LOCAL_TZ,
    Band,
    ChargeBasis,
    DaySchedule,
    FlatPlan,
    PlanVersion,
    PriceResult,
    Season,
    Tariff,
    Tier,
    TieredPlan,
    TimeSegment,
    TouPlan,
    TwoPartPlan,
    Unit,
    UsageSlice,
    price_usage,
    pricing,
)
from server.tariffs.pricing import _price_pieces, exact

T0 = datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ)
# Prices as staff enter them, and a few odd exponents (2E+1 has no decimals to spare).
prices = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("9.99999"), places=5),
    st.sampled_from([Decimal("2E+1"), Decimal("0.5"), Decimal("0E-5")]),
)
# Quantities as meters give them, with a few odd exponents (0E+1, 1.000000, 12345678.9).
quantities = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("99999.999999"), places=6),
    st.decimals(min_value=0, max_value=Decimal(10**8), places=0),
    st.sampled_from([Decimal("0"), Decimal("0E+1"), Decimal("0.00"), Decimal("1.000000")]),
)


def _day(bands: list[Band]) -> DaySchedule:
    hours = 24 // len(bands)
    return DaySchedule(tuple(
        TimeSegment(time(i * hours), time(0 if i == len(bands) - 1 else (i + 1) * hours), b)
        for i, b in enumerate(bands)
    ))  # fmt: skip


@st.composite
def plans(draw: st.DrawFn) -> FlatPlan | TouPlan | TieredPlan | TwoPartPlan:
    kind = draw(st.sampled_from(["flat", "water", "tou", "tiered", "two_part_tou"]))
    if kind in {"flat", "water"}:
        return FlatPlan(draw(prices), Unit.M3 if kind == "water" else Unit.KWH)
    bands = draw(st.lists(st.sampled_from(list(Band)), min_size=1, max_size=5, unique=True))
    tou = TouPlan(
        {b: draw(prices) for b in bands},
        (Season("全年", frozenset(range(1, 13)), _day(bands)),),
    )
    if kind == "tiered":
        return TieredPlan((Tier(Decimal(100), Decimal(0)), Tier(None, draw(prices))), base=tou)
    if kind == "two_part_tou":
        return TwoPartPlan(tou, ChargeBasis.CAPACITY, Decimal(23))
    return tou


@st.composite
def tariffs(draw: st.DrawFn, starts: tuple[int, ...] = (-15, 0, 7, 15, 60)) -> Tariff:
    """One version, or two; `starts`: minutes from T0 at which the newer one may start."""
    first = PlanVersion(T0 - timedelta(days=30), draw(plans()))
    if not draw(st.booleans()):
        return Tariff((first,))
    plan = draw(plans())
    if plan.unit != first.plan.unit:
        plan = first.plan
    # The newer version starts before, inside, or after the slice.
    later = T0 + timedelta(minutes=draw(st.sampled_from(starts)))
    return Tariff((first, PlanVersion(later, plan)))


@st.composite
def slices(draw: st.DrawFn) -> UsageSlice:
    minutes = draw(st.sampled_from([0, 15, 60, 24 * 60]))
    bands = {}
    if draw(st.booleans()):
        numbers = st.sampled_from(list(Band))
        bands = draw(st.dictionaries(numbers, quantities, min_size=1, max_size=5))
    return UsageSlice(T0, T0 + timedelta(minutes=minutes), draw(quantities), bands)


def _exactly(result: PriceResult) -> tuple[object, ...]:
    """Everything in a result, Decimals by their digits and exponent, not only their value."""
    lines = tuple(
        (ln.kind, ln.label, ln.quantity.as_tuple(), ln.unit, ln.unit_price.as_tuple(),
         ln.amount.as_tuple(), ln.band, ln.tier)
        for ln in result.lines
    )  # fmt: skip
    return (lines, result.total.as_tuple(), result.quantity.as_tuple(),
            result.tier_period_start, result.cumulative_after.as_tuple())  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(tariffs(), slices(), st.sampled_from([Decimal(0), Decimal("150.5")]))
def test_the_short_path_gives_the_general_result_to_the_digit(
    tariff: Tariff, usage: UsageSlice, before: Decimal
) -> None:
    try:
        with exact():
            general = _price_pieces(tariff, usage, before, None)
    except ShuidianError as error:
        with pytest.raises(type(error), match=re.escape(str(error))):  # refused the same way
            price_usage(tariff, usage, cumulative_before=before)
        return
    assert _exactly(price_usage(tariff, usage, cumulative_before=before)) == _exactly(general)


def test_the_short_path_takes_the_common_cases_and_leaves_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    general = []

    def pieces(*args: object) -> PriceResult:
        general.append(args)
        return _price_pieces(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pricing, "_price_pieces", pieces)
    tou = TouPlan(
        {Band.PEAK: Decimal("1.12036"), Band.VALLEY: Decimal("0.27913")},
        (Season("全年", frozenset(range(1, 13)), _day([Band.VALLEY, Band.PEAK])),),
    )
    registers = UsageSlice(
        T0, T0 + timedelta(minutes=15), Decimal("0.5"), {Band.PEAK: Decimal("0.5")}
    )
    no_registers = UsageSlice(T0, T0 + timedelta(minutes=15), Decimal("0.5"))
    one = Tariff((PlanVersion(T0 - timedelta(days=1), tou),))
    changing = Tariff((*one.versions, PlanVersion(T0 + timedelta(minutes=5), tou)))
    tiered = TieredPlan((Tier(Decimal(100), Decimal(0)), Tier(None, Decimal("0.3"))), base=tou)
    # 0.5 kWh 峰 × ¥1.12036 = ¥0.56018, to the last digit.
    fast = price_usage(one, registers)
    assert (fast.total, str(fast.lines[0])) == (
        Decimal("0.560180"),
        "峰时段电量 0.5 kWh × ¥1.12036 = ¥0.560180",
    )
    price_usage(one, no_registers)  # split by time, still one piece
    price_usage(Tariff((PlanVersion(T0, FlatPlan(Decimal("0.6583"))),)), no_registers)
    assert general == []
    price_usage(changing, registers)  # two pieces
    price_usage(Tariff((PlanVersion(T0, tiered),)), registers)  # tier periods
    assert len(general) == 2
