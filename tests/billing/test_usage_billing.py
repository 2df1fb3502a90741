"""Usage billing math: deltas, roll-over, refusals, fen and carry, a collector's round."""

from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest

from server.billing import (
    BandRegistersMismatch,
    BillingRequest,
    BillingState,
    NegativeDelta,
    ReadingsOutOfOrder,
    UsageCharge,
    bill_usage,
    register_delta,
    settle,
    usage_between,
)
from server.billing.round import Bill, bill_round
from server.metering.reading import Reading
from server.tariffs import (
    LOCAL_TZ,
    Band,
    DaySchedule,
    FlatPlan,
    InvalidUsage,
    PlanVersion,
    Season,
    Tariff,
    Tier,
    TieredPlan,
    TierPeriod,
    TimeSegment,
    TouPlan,
)

T0 = datetime(2025, 4, 7, 0, 0, tzinfo=LOCAL_TZ)
FLAT = FlatPlan(D("0.6543"))


def reading(minutes: int, total: str, **bands: str) -> Reading:
    by_number = {int(k[1:]): D(v) for k, v in bands.items()}  # b2="1.5" → {2: 1.5}
    return Reading(T0 + timedelta(minutes=minutes), D(total), by_number)


def naive(minutes: int, total: str) -> Reading:
    return Reading((T0 + timedelta(minutes=minutes)).replace(tzinfo=None), D(total))


def test_register_delta_forward_and_rolled_over() -> None:
    assert register_delta(D("10.50"), D("12.25")) == D("1.75")
    assert register_delta(D("5"), D("5")) == 0
    # A 6+2 digit register wraps at 1 000 000: 999 999.50 → 0.75 is 1.25 kWh.
    assert register_delta(D("999999.50"), D("0.75"), D(1_000_000)) == D("1.25")


def test_a_register_going_backwards_is_refused() -> None:
    with pytest.raises(NegativeDelta, match="电表读数倒走") as caught:
        register_delta(D("10.50"), D("10.49"))
    assert caught.value.status_code == 409
    # With a known maximum, a small step back is still not a roll-over (it would be huge).
    with pytest.raises(NegativeDelta):
        register_delta(D("10.50"), D("10.49"), D(1_000_000))


def test_usage_applies_the_multiplier_to_total_and_bands() -> None:
    usage = usage_between(
        reading(0, "100.00", b2="40.00", b4="60.00"),
        reading(15, "100.30", b2="40.10", b4="60.20"),
        multiplier=D(80),  # CT 400/5
    )
    assert usage.total == D("24.0000")
    assert usage.bands == {Band.PEAK: D("8.0000"), Band.VALLEY: D("16.0000")}


@pytest.mark.parametrize(
    ("prev", "curr", "error", "message"),
    [
        (reading(15, "1"), reading(15, "2"), ReadingsOutOfOrder, "不晚于上次读数"),
        (reading(30, "1"), reading(15, "2"), ReadingsOutOfOrder, "不晚于上次读数"),
        (reading(0, "5"), reading(15, "4"), NegativeDelta, "倒走"),
        (reading(0, "5", b2="1"), reading(15, "6", b2="0.5"), NegativeDelta, "倒走"),
        (reading(0, "5", b2="1"), reading(15, "6", b3="1"), BandRegistersMismatch, "不一致"),
        (reading(0, "5", b7="1"), reading(15, "6", b7="2"), BandRegistersMismatch, "1到5"),
        (naive(0, "1"), naive(15, "2"), InvalidUsage, "必须带时区"),
    ],
)
def test_unbillable_pairs_raise_typed_errors(prev, curr, error, message) -> None:
    with pytest.raises(error, match=message):
        bill_usage(prev, curr, tariff=FLAT)


def test_settle_floors_to_fen_and_carries_the_rest() -> None:
    assert settle(D("0.0012345"), D(0)) == (0, D("0.12345"))
    assert settle(D("0.0012345"), D("0.9")) == (1, D("0.02345"))
    assert settle(D("12.34"), D("0.5")) == (1234, D("0.50"))
    with pytest.raises(ValueError):
        settle(D(1), D(1))
    with pytest.raises(ValueError):
        settle(D(-1), D(0))


def test_small_readings_are_charged_once_enough_has_accumulated() -> None:
    # 0.01 kWh × ¥0.6543 = 0.6543 fen each quarter hour: 0, 1, 0, 1 fen … never lost.
    state, deducted = BillingState(), []
    for i in range(4):
        prev = reading(15 * i, str(D("0.01") * i))
        curr = reading(15 * (i + 1), str(D("0.01") * (i + 1)))
        charge = bill_usage(prev, curr, tariff=FLAT, state=state)
        deducted.append(charge.deduct_fen)
        state = charge.state
    assert deducted == [0, 1, 0, 1]
    assert state.carry_fen == D("0.6172")  # 4 × 0.6543 = 2.6172 fen, 2 deducted


def test_flat_electricity_reports_its_use_as_flat_band() -> None:
    charge = bill_usage(reading(0, "1"), reading(60, "3"), tariff=FLAT)
    assert charge.meter_kwh_by_band == {Band.FLAT: D(2)}
    assert isinstance(charge, UsageCharge)


def test_tou_without_registers_reports_the_time_split() -> None:
    schedule = DaySchedule(
        (
            TimeSegment(T0.time(), T0.replace(hour=8).time(), Band.VALLEY),
            TimeSegment(T0.replace(hour=8).time(), T0.time(), Band.FLAT),
        )
    )
    plan = TouPlan(
        {Band.VALLEY: D("0.3"), Band.FLAT: D("0.7")},
        (Season("全年", frozenset(range(1, 13)), schedule),),
    )
    charge = bill_usage(reading(7 * 60, "0"), reading(9 * 60, "4"), tariff=plan)
    assert charge.meter_kwh_by_band == {Band.VALLEY: D(2), Band.FLAT: D(2)}
    assert charge.exact_yuan == D("2.0")


def test_tier_use_resets_when_the_stored_state_is_from_an_older_period() -> None:
    plan = TieredPlan((Tier(D(10), D(1)), Tier(None, D(2))), TierPeriod.MONTH)
    stale = BillingState(tier_period_start=datetime(2025, 3, 1, tzinfo=LOCAL_TZ), cumulative=D(50))
    charge = bill_usage(reading(0, "0"), reading(60, "5"), tariff=plan, state=stale)
    assert charge.exact_yuan == D(5)  # all in tier 1: April starts from zero
    assert charge.state == BillingState(D(0), datetime(2025, 4, 1, tzinfo=LOCAL_TZ), D(5))


def test_a_round_threads_each_accounts_state_and_isolates_failures() -> None:
    plan = TieredPlan((Tier(D(10), D(1)), Tier(None, D(2))), TierPeriod.MONTH)
    requests = [
        BillingRequest("a", reading(0, "0"), reading(15, "8"), plan),
        BillingRequest("b", reading(0, "0"), reading(15, "1.005"), FLAT),
        BillingRequest("a", reading(15, "8"), reading(30, "7"), plan),  # backwards: held
        BillingRequest("a", reading(15, "8"), reading(30, "12"), plan),
        BillingRequest("b", reading(15, "1.005"), reading(30, "2.010"), FLAT, multiplier=D(2)),
    ]
    results, states = bill_round(requests, {"b": BillingState(carry_fen=D("0.5"))})
    a1, b1, bad, a2, b2 = results
    assert isinstance(bad, NegativeDelta)
    assert isinstance(a1, Bill) and isinstance(a2, Bill)
    assert (a1.exact_yuan, a2.exact_yuan) == (D(8), D(6))  # 2 kWh at ¥1, then 2 at ¥2
    assert states["a"].cumulative == D(12)
    # b: 1.005 × 0.6543 = 0.65757150 yuan = 65.75715 fen + 0.5 → 66 fen, carry 0.25715;
    #    2.010 × 0.6543 = 1.3151430 yuan = 131.5143 fen + 0.25715 → 131 fen, carry 0.77145.
    assert isinstance(b1, Bill) and isinstance(b2, Bill)
    assert (b1.deduct_fen, b2.deduct_fen) == (66, 131)
    assert states["b"] == BillingState(D("0.77145"), None, D(0))


def test_a_round_of_nothing_returns_the_states_it_was_given() -> None:
    states = {"a": BillingState(carry_fen=D("0.3"))}
    assert bill_round([], states) == ([], states)


def test_a_price_change_between_readings_is_billed_piece_by_piece() -> None:
    # ¥0.60 until 06:00, ¥0.65 from then. Readings at 00:00, 06:00 and 12:00: 30 + 40 kWh.
    change = T0 + timedelta(hours=6)
    tariff = Tariff(
        (
            PlanVersion(T0 - timedelta(days=1), FlatPlan(D("0.60"))),
            PlanVersion(change, FlatPlan(D("0.65"))),
        )
    )
    r0, r6, r12 = reading(0, "100"), reading(6 * 60, "130"), reading(12 * 60, "170")
    # With a reading at the change nothing is guessed: 30 × 0.60 + 40 × 0.65 = 18 + 26 = ¥44.
    morning = bill_usage(r0, r6, tariff=tariff)
    noon = bill_usage(r6, r12, tariff=tariff, state=morning.state)
    assert (morning.exact_yuan, noon.exact_yuan) == (D("18.00"), D("26.00"))
    # One long reading is split by time: 70 kWh over 12 h is 35 + 35 → 21.00 + 22.75 = ¥43.75.
    long = bill_usage(r0, r12, tariff=tariff)
    assert [(line.quantity, line.unit_price) for line in long.lines] == [
        (D(35), D("0.60")),
        (D(35), D("0.65")),
    ]
    assert long.deduct_fen == 4375
