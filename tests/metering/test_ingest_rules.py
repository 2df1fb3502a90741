"""Reading ingestion rules: duplicates, late readings, roll-over, resets, implausible jumps."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.metering.ingest import MeterSpec, Outcome, classify, join_replacement
from server.metering.reading import Reading

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 9, 16, 0, 0, tzinfo=SH)
D = Decimal
# A 10 kW shop: in 15 minutes at most 10 × 0.25 × 1.5 + 0.01 = 3.76 kWh is plausible.
SHOP = MeterSpec(rated_per_hour=D(10))


def r(minutes: float, total: str, **bands: str) -> Reading:
    return Reading(
        taken_at=T0 + timedelta(minutes=minutes),
        total=D(total),
        bands={int(k[1:]): D(v) for k, v in bands.items()},
    )


# --- newest readings ---------------------------------------------------------------


def test_first_reading_is_a_baseline_and_bills_nothing() -> None:
    result = classify(r(0, "1000.00"), None, SHOP)
    assert result.outcome is Outcome.BASELINE
    assert not result.billable
    assert result.usage.energy == 0


def test_normal_quarter_hour_bills_the_difference_per_band() -> None:
    prev = r(0, "1000.00", b2="400.00", b3="600.00")
    curr = r(15, "1002.50", b2="401.00", b3="601.50")
    result = classify(curr, prev, SHOP)
    assert result.outcome is Outcome.ACCEPT
    assert result.billable and not result.held_for_review
    assert result.usage.register == D("2.50")
    assert result.usage.energy == D("2.50")
    assert result.usage.bands == {2: D("1.00"), 3: D("1.50")}


def test_ct_multiplier_is_applied_to_energy_and_bands() -> None:
    # CT 150/5 = 30, PT 1: the register moves 0.25 while 7.50 kWh flowed.
    spec = MeterSpec(rated_per_hour=D(60), multiplier=D(30))
    prev = r(0, "120.00", b1="50.00", b2="70.00")
    curr = r(15, "120.25", b1="50.10", b2="70.15")
    result = classify(curr, prev, spec)
    assert result.usage.register == D("0.25")
    assert result.usage.energy == D("7.50")
    assert result.usage.bands == {1: D("3.00"), 2: D("4.50")}


def test_no_use_is_accepted_with_zero_delta() -> None:
    result = classify(r(15, "1000.00"), r(0, "1000.00"), SHOP)
    assert result.outcome is Outcome.ACCEPT
    assert result.usage.energy == 0


def test_register_rollover_bills_the_wrapped_delta() -> None:
    # 999999.50 → 000000.30 on a six-digit-two-decimal register: 0.50 + 0.30 = 0.80 kWh.
    prev = r(0, "999999.50", b1="999999.90")
    curr = r(15, "0.30", b1="0.20")
    result = classify(curr, prev, SHOP)
    assert result.outcome is Outcome.ROLLOVER
    assert result.billable
    assert result.usage.energy == D("0.80")
    assert result.usage.bands == {1: D("0.30")}


def test_rollover_on_a_smaller_register() -> None:
    spec = MeterSpec(rated_per_hour=D(10), register_max=D("9999.9"), resolution=D("0.1"))
    result = classify(r(15, "1.2"), r(0, "9998.0"), spec)
    assert result.outcome is Outcome.ROLLOVER
    assert result.usage.energy == D("3.2")


def test_jump_beyond_rating_is_held() -> None:
    result = classify(r(15, "1010.00"), r(0, "1000.00"), SHOP)
    assert result.outcome is Outcome.IMPLAUSIBLE
    assert result.held_for_review and not result.billable
    assert result.usage.energy == 0
    assert "超过额定上限" in result.reason


def test_exactly_the_allowance_is_plausible() -> None:
    assert classify(r(15, "1003.76"), r(0, "1000.00"), SHOP).outcome is Outcome.ACCEPT
    assert classify(r(15, "1003.77"), r(0, "1000.00"), SHOP).outcome is Outcome.IMPLAUSIBLE


def test_a_week_offline_then_a_big_but_plausible_delta() -> None:
    result = classify(r(7 * 24 * 60, "1500.00"), r(0, "1000.00"), SHOP)
    assert result.outcome is Outcome.ACCEPT
    assert result.usage.energy == D("500.00")


def test_register_going_backwards_a_little_is_held() -> None:
    result = classify(r(15, "999.98"), r(0, "1000.00"), SHOP)
    assert result.outcome is Outcome.IMPLAUSIBLE
    assert result.reason == "表码倒退：由 1000.00 降至 999.98"


def test_register_cleared_is_a_reset_held_for_review() -> None:
    result = classify(r(15, "0.12"), r(0, "52000.00"), SHOP)
    assert result.outcome is Outcome.RESET
    assert result.held_for_review
    assert "疑似电表清零或被更换" in result.reason


def test_band_delta_larger_than_total_is_held() -> None:
    prev = r(0, "1000.00", b1="500.00", b2="500.00")
    curr = r(15, "1001.00", b1="503.00", b2="500.00")
    result = classify(curr, prev, SHOP)
    assert result.outcome is Outcome.IMPLAUSIBLE
    assert result.reason == "分时费率读数与总读数不一致"


def test_readings_with_different_bands_bill_the_total_only() -> None:
    result = classify(r(15, "1001.00", b1="501.00"), r(0, "1000.00", b2="500.00"), SHOP)
    assert result.outcome is Outcome.ACCEPT
    assert result.usage.energy == D("1.00")
    assert result.usage.bands == {}


# --- duplicates and late readings ----------------------------------------------------


def test_same_time_same_values_is_a_duplicate() -> None:
    result = classify(r(15, "1001.0", b1="1"), r(15, "1001.00", b1="1.00"), SHOP)
    assert result.outcome is Outcome.DUPLICATE
    assert not result.billable and not result.held_for_review


def test_same_time_other_values_is_a_conflict() -> None:
    result = classify(r(15, "1001.50"), r(15, "1001.00"), SHOP)
    assert result.outcome is Outcome.CONFLICT
    assert result.held_for_review


def test_late_reading_between_two_billed_ones_is_stored_not_billed() -> None:
    # 00:00 1000.00 and 00:30 1002.00 were billed (2.00 kWh); 00:15 1001.20 arrives late.
    result = classify(r(15, "1001.20"), r(0, "1000.00"), SHOP, following=r(30, "1002.00"))
    assert result.outcome is Outcome.OUT_OF_ORDER
    assert not result.billable and not result.held_for_review
    assert result.usage.energy == 0
    assert result.split is not None
    before, after = result.split
    assert (before.energy, after.energy) == (D("1.20"), D("0.80"))


def test_late_reading_that_does_not_fit_between_its_neighbours_is_held() -> None:
    result = classify(r(15, "1003.00"), r(0, "1000.00"), SHOP, following=r(30, "1002.00"))
    assert result.held_for_review
    assert result.reason.startswith("迟到读数与其后读数不一致")
    result = classify(r(15, "999.00"), r(0, "1000.00"), SHOP, following=r(30, "1002.00"))
    assert result.held_for_review
    assert result.reason.startswith("迟到读数与其前读数不一致")


def test_late_reading_older_than_the_baseline_is_stored_only() -> None:
    result = classify(r(0, "999.00"), None, SHOP, following=r(15, "1000.00"))
    assert result.outcome is Outcome.OUT_OF_ORDER
    assert result.split is None
    assert not result.billable


def test_wrongly_ordered_neighbours_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        classify(r(0, "1"), r(15, "1"), SHOP)
    with pytest.raises(ValueError):
        classify(r(15, "1"), r(0, "1"), SHOP, following=r(15, "2"))


def test_meter_spec_is_validated() -> None:
    with pytest.raises(ValueError):
        MeterSpec(rated_per_hour=D(0))
    with pytest.raises(ValueError):
        MeterSpec(rated_per_hour=D(10), safety_factor=D("0.5"))


# --- meter replacement ---------------------------------------------------------------


def test_meter_replacement_keeps_the_account_history_continuous() -> None:
    # Old meter: last accepted 5000.00 (account cumulative 800.00 kWh), final 5003.20.
    # New meter (CT ×2) starts at 0.50; later reads 10.50 → 20.00 kWh more.
    new_spec = MeterSpec(rated_per_hour=D(20), multiplier=D(2))
    swap = join_replacement(
        old_last=r(0, "5000.00"),
        old_final=r(60, "5003.20"),
        old_spec=SHOP,
        new_first=r(70, "0.50"),
        new_spec=new_spec,
        old_cumulative=D("800.00"),
    )
    assert swap.closing.outcome is Outcome.ACCEPT
    assert swap.closing.usage.energy == D("3.20")
    assert swap.baseline == r(70, "0.50")
    assert classify(r(70, "0.50"), None, new_spec).outcome is Outcome.BASELINE
    later = r(600, "10.50")
    assert swap.offset + later.total * new_spec.multiplier == D("823.20")


def test_replacement_with_an_implausible_final_reading_moves_nothing() -> None:
    swap = join_replacement(
        r(0, "5000.00"), r(60, "4000.00"), SHOP, r(70, "0"), SHOP, old_cumulative=D(100)
    )
    assert swap.closing.held_for_review
    assert swap.offset == D(100)


def test_replacement_must_not_go_back_in_time() -> None:
    with pytest.raises(ValueError):
        join_replacement(r(0, "1"), r(60, "2"), SHOP, r(30, "0"), SHOP, D(0))


# --- properties: a gateway replaying history in any order bills each kWh once ---------


class Store:
    """A tiny stand-in for the readings table: accepted readings by time."""

    def __init__(self, spec: MeterSpec) -> None:
        self.spec = spec
        self.times: list[datetime] = []
        self.by_time: dict[datetime, Reading] = {}
        self.billed = Decimal(0)

    def ingest(self, reading: Reading) -> Outcome:
        i = bisect.bisect_right(self.times, reading.taken_at)
        previous = self.by_time[self.times[i - 1]] if i else None
        following = self.by_time[self.times[i]] if i < len(self.times) else None
        result = classify(reading, previous, self.spec, following)
        if result.billable:
            self.billed += result.usage.energy
        if result.outcome in {Outcome.BASELINE, Outcome.ACCEPT, Outcome.ROLLOVER} or (
            result.outcome is Outcome.OUT_OF_ORDER
        ):
            bisect.insort(self.times, reading.taken_at)
            self.by_time[reading.taken_at] = reading
        return result.outcome


# Quarter-hour use in 0.01 kWh steps up to 10 kW × 0.25 h × 1.5 = 3.75 kWh: the part of the
# allowance that scales with time, so any run of steps is plausible over its whole span
# (the one-step slack of 0.01 does not add up over several quarter hours).
series = st.lists(st.integers(min_value=0, max_value=375), min_size=2, max_size=30)


@settings(max_examples=150, deadline=None)
@given(steps=series, start=st.integers(min_value=99_990_000, max_value=99_999_999), data=st.data())
def test_any_arrival_order_bills_newest_minus_first(
    steps: list[int], start: int, data: st.DataObject
) -> None:
    # Registers near the maximum so many runs roll over.
    modulus = 100_000_000
    readings = []
    value = start
    for i, step in enumerate(steps):
        value = (value + step) % modulus
        readings.append(Reading(T0 + timedelta(minutes=15 * i), D(value) / 100))
    order = data.draw(st.permutations(readings))
    store = Store(SHOP)
    outcomes = [store.ingest(x) for x in order]
    assert not any(o in {Outcome.RESET, Outcome.IMPLAUSIBLE, Outcome.CONFLICT} for o in outcomes)
    first, newest = order[0], readings[-1]
    cumulative = {x.taken_at: sum(steps[: i + 1]) for i, x in enumerate(readings)}
    expected = D(cumulative[newest.taken_at] - cumulative[first.taken_at]) / 100
    assert store.billed == expected
    # Replaying everything again is a no-op.
    assert all(store.ingest(x) is Outcome.DUPLICATE for x in order)
    assert store.billed == expected
