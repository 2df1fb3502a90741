"""Pricing: exact itemised charges; pieces at version changes and tier periods; properties."""

from datetime import datetime, time, timedelta
from decimal import Context, Inexact, localcontext
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.tariffs import (
    LOCAL_TZ,
    Band,
    ChargeBasis,
    DaySchedule,
    FlatPlan,
    InvalidUsage,
    LineKind,
    PlanVersion,
    Season,
    Tariff,
    Tier,
    TieredPlan,
    TierPeriod,
    TimeSegment,
    TouPlan,
    TwoPartPlan,
    UsageSlice,
    basic_charge,
    price_usage,
    tier_period_start_at,
)
from server.tariffs.pricing import computing_exactly, exact, split_quantity

ALL_YEAR = frozenset(range(1, 13))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def day(*parts: tuple[int, int, Band]) -> DaySchedule:
    return DaySchedule(tuple(TimeSegment(time(a), time(b % 24), band) for a, b, band in parts))


def tou(prices: dict[Band, D]) -> TouPlan:
    """Valley 23–07, flat 07–10 and 15–18 and 21–23, peak 10–15 and 18–21, sharp none."""
    schedule = day(
        (23, 7, Band.VALLEY), (7, 10, Band.FLAT), (10, 15, Band.PEAK), (15, 18, Band.FLAT),
        (18, 21, Band.PEAK), (21, 23, Band.FLAT),
    )  # fmt: skip
    return TouPlan(prices, (Season("全年", ALL_YEAR, schedule),))


TOU = tou({Band.PEAK: D("1.1"), Band.FLAT: D("0.7"), Band.VALLEY: D("0.3")})
JAN = local(2025, 1, 6)  # a Monday


def test_flat_is_exact_and_never_rounded() -> None:
    result = price_usage(
        FlatPlan(D("0.12345")), UsageSlice(JAN, JAN + timedelta(minutes=15), D("0.01"))
    )
    assert result.total == D("0.0012345")
    assert result.lines[0].kind is LineKind.ENERGY


def test_no_use_gives_no_lines() -> None:
    result = price_usage(TOU, UsageSlice(JAN, JAN + timedelta(hours=5), D(0)))
    assert (result.lines, result.total, result.quantity) == ((), 0, 0)


def test_tou_without_registers_splits_by_time_in_each_band() -> None:
    # 09:00–11:00: one hour flat, one hour peak → 6 kWh is 3 + 3.
    result = price_usage(TOU, UsageSlice(JAN.replace(hour=9), JAN.replace(hour=11), D(6)))
    assert [(line.band, line.quantity, line.amount) for line in result.lines] == [
        (Band.PEAK, D(3), D("3.3")),
        (Band.FLAT, D(3), D("2.1")),
    ]
    assert result.total == D("5.4")


def test_an_instant_slice_goes_to_the_band_of_that_instant() -> None:
    result = price_usage(TOU, UsageSlice(JAN.replace(hour=12), JAN.replace(hour=12), D(2)))
    assert [(line.band, line.quantity) for line in result.lines] == [(Band.PEAK, D(2))]


def test_registers_win_over_time() -> None:
    bands = {Band.VALLEY: D("4.5"), Band.PEAK: D(0)}
    result = price_usage(
        TOU, UsageSlice(JAN.replace(hour=12), JAN.replace(hour=13), D("4.5"), bands)
    )
    assert [(line.band, line.amount) for line in result.lines] == [(Band.VALLEY, D("1.35"))]


def test_use_in_a_band_the_plan_does_not_price_is_refused() -> None:
    usage = UsageSlice(JAN, JAN + timedelta(hours=1), D(1), {Band.SHARP: D(1)})
    with pytest.raises(InvalidUsage, match="价格方案没有该时段"):
        price_usage(TOU, usage)


def test_tier_surcharge_sits_on_top_of_the_tou_price() -> None:
    # Monthly tiers: 0–200 kWh +0, 200–400 +0.05, above +0.30; 150 kWh after 180 already used.
    plan = TieredPlan(
        (Tier(D(200), D(0)), Tier(D(400), D("0.05")), Tier(None, D("0.30"))),
        TierPeriod.MONTH,
        base=TOU,
    )
    bands = {Band.PEAK: D(100), Band.VALLEY: D(50)}
    result = price_usage(
        plan, UsageSlice(JAN, JAN + timedelta(days=1), D(150), bands), cumulative_before=D(180)
    )
    assert [(line.label, line.quantity, line.amount) for line in result.lines] == [
        ("峰时段电量", D(100), D("110.0")),
        ("谷时段电量", D(50), D("15.0")),
        ("第二档加价", D(130), D("6.50")),  # 20 kWh fill tier 1 at +0, 130 kWh at +0.05
    ]
    assert result.total == D("131.50")
    assert result.cumulative_after == D(330)
    assert result.tier_period_start == local(2025, 1, 1)


def test_a_price_change_mid_slice_is_priced_piece_by_piece() -> None:
    # 10 kWh over 10 hours; the new price applies from hour 4: 4 kWh × 0.60 + 6 kWh × 0.65.
    change = JAN.replace(hour=4)
    tariff = Tariff(
        (
            PlanVersion(local(2024, 1, 1), FlatPlan(D("0.60"))),
            PlanVersion(change, FlatPlan(D("0.65"))),
        )
    )
    result = price_usage(tariff, UsageSlice(JAN, JAN.replace(hour=10), D(10)))
    assert [(line.quantity, line.unit_price) for line in result.lines] == [
        (D(4), D("0.60")),
        (D(6), D("0.65")),
    ]
    assert result.total == D("6.30")


def test_tier_use_restarts_in_a_new_period() -> None:
    plan = TieredPlan((Tier(D(10), D(1)), Tier(None, D(2))), TierPeriod.MONTH)
    # 31 Jan 12:00 → 1 Feb 12:00, 24 kWh: 12 in January (after 5 used: 5 at ¥1, 7 at ¥2),
    # 12 in February from zero (10 at ¥1, 2 at ¥2) → 5 + 14 + 10 + 4 = ¥33.
    usage = UsageSlice(local(2025, 1, 31, 12), local(2025, 2, 1, 12), D(24))
    result = price_usage(plan, usage, cumulative_before=D(5))
    assert result.total == D(33)
    assert [(line.tier, line.quantity) for line in result.lines] == [(1, D(15)), (2, D(9))]
    assert (result.tier_period_start, result.cumulative_after) == (local(2025, 2, 1), D(12))
    assert tier_period_start_at(plan, usage.start) == local(2025, 1, 1)
    assert tier_period_start_at(FlatPlan(D(1)), usage.start) is None


def test_two_part_prices_its_energy_and_its_basic_charge_apart() -> None:
    plan = TwoPartPlan(FlatPlan(D("0.65")), ChargeBasis.CAPACITY, D("23"))
    assert price_usage(plan, UsageSlice(JAN, JAN + timedelta(hours=1), D(100))).total == D("65.00")
    half = basic_charge(plan, D(315), months=D("0.5"))  # 315 kVA for half a month
    assert (half.lines[0].quantity, half.lines[0].unit, half.total) == (
        D("157.5"),
        "kVA·月",
        D("3622.5"),
    )
    with pytest.raises(InvalidUsage):
        basic_charge(plan, D(-1))


@pytest.mark.parametrize(
    ("start", "end", "total", "message"),
    [
        (JAN, JAN - timedelta(seconds=1), D(1), "结束时间早于开始时间"),
        (JAN, JAN, D(-1), "不能为负数"),
        (JAN.replace(tzinfo=None), JAN.replace(tzinfo=None), D(1), "必须带时区"),
    ],
)
def test_bad_slices_are_refused(start, end, total, message) -> None:
    with pytest.raises(InvalidUsage, match=message):
        price_usage(FlatPlan(D("0.6")), UsageSlice(start, end, total))


quantities = st.decimals(min_value=0, max_value=100_000, places=2)
prices = st.decimals(min_value=0, max_value=5, places=5)


@settings(max_examples=150, deadline=None)
@given(
    band_prices=st.dictionaries(st.sampled_from(list(Band)), prices, min_size=1),
    data=st.data(),
)
def test_band_charges_sum_to_the_total(band_prices, data) -> None:
    plan = TouPlan(band_prices, (Season("全年", ALL_YEAR, day((0, 24, min(band_prices)))),))
    bands = {b: data.draw(quantities) for b in band_prices}
    result = price_usage(plan, UsageSlice(JAN, JAN + timedelta(days=1), sum(bands.values()), bands))
    assert result.total == sum(line.amount for line in result.lines)
    assert result.total == sum(q * band_prices[b] for b, q in bands.items())
    assert result.quantity == sum(bands.values())


@settings(max_examples=150, deadline=None)
@given(
    offset=st.integers(0, 40 * 24 * 3600),
    seconds=st.integers(0, 9 * 24 * 3600),
    total=quantities,
)
def test_time_split_loses_no_use(offset, seconds, total) -> None:
    start = JAN + timedelta(seconds=offset)
    result = price_usage(TOU, UsageSlice(start, start + timedelta(seconds=seconds), total))
    assert sum(line.quantity for line in result.lines) == total
    assert result.total == sum(line.amount for line in result.lines)


@settings(max_examples=150, deadline=None)
@given(
    uptos=st.lists(st.integers(1, 5000), min_size=0, max_size=4, unique=True),
    tier_prices=st.lists(prices, min_size=5, max_size=5),
    before=st.decimals(min_value=0, max_value=20_000, places=2),
    parts=st.lists(quantities, min_size=1, max_size=8),
)
def test_tiered_in_one_piece_or_any_split_gives_the_same_total(
    uptos, tier_prices, before, parts
) -> None:
    thresholds = [D(u) for u in sorted(uptos)] + [None]
    plan = TieredPlan(tuple(Tier(u, p) for u, p in zip(thresholds, tier_prices, strict=False)))
    start = local(2025, 3, 1)
    whole = price_usage(
        plan,
        UsageSlice(start, start + timedelta(days=len(parts)), sum(parts)),
        cumulative_before=before,
    )
    total, cumulative = D(0), before
    for i, q in enumerate(parts):
        usage = UsageSlice(start + timedelta(days=i), start + timedelta(days=i + 1), q)
        piece = price_usage(plan, usage, cumulative_before=cumulative)
        total, cumulative = total + piece.total, piece.cumulative_after
    assert total == whole.total
    assert cumulative == whole.cumulative_after == before + sum(parts)


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.integers(1, 60 * 24 * 5),
    change_at=st.integers(1, 1000),
    total=quantities,
    old=prices,
    new=prices,
)
def test_price_change_is_priced_piecewise_by_time(minutes, change_at, total, old, new) -> None:
    start = local(2025, 5, 1)
    end = start + timedelta(minutes=minutes)
    change = start + (end - start) * change_at / 1001
    tariff = Tariff((PlanVersion(start, FlatPlan(old)), PlanVersion(change, FlatPlan(new))))
    result = price_usage(tariff, UsageSlice(start, end, total))
    us = timedelta(microseconds=1)
    w_before, w_after = (change - start) // us, (end - change) // us
    before, after = split_quantity(total, [w_before, w_after])
    assert before + after == total
    # Each piece's share is within one 10⁻⁶ step of its exact share of the time.
    assert abs(before - total * D(w_before) / D(w_before + w_after)) <= D("0.000001")
    assert result.total == before * old + after * new


def test_pricing_is_exact_whatever_context_the_caller_computes_in() -> None:
    # 0.123456789 kWh × ¥0.12345 has 14 significant digits: a 6-digit context would round it.
    usage = UsageSlice(JAN, JAN + timedelta(minutes=15), D("0.123456789"))
    with localcontext(Context(prec=6)):
        assert not computing_exactly()
        result = price_usage(FlatPlan(D("0.12345")), usage)
    assert result.total == D("0.01524074060205")
    # Inside the exact context a result that would need rounding raises instead.
    with exact(), pytest.raises(Inexact):
        D(1) / D(3)
