"""SimMeter: exact registers, TOU bands, meter-side billing, relay rules, recharge idempotency."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.meters.base import MeterKind, RelayAction, RelayState
from workers.sim.clock import ManualClock, SimClock
from workers.sim.meter import SimMeter, SimRechargeRefused, SimRefused
from workers.sim.profiles import SHANGHAI, LoadProfile, power_kw

T0 = datetime(2024, 7, 15, 0, 0, tzinfo=SHANGHAI)  # a Monday in July


def meter(**kw) -> SimMeter:
    args = dict(
        address="000000000161",
        kind=MeterKind.ELECTRICITY,
        profile=LoadProfile.APARTMENT,
        rated_kw=Decimal("5"),
        meter_billing=True,
        remaining_fen=10_000,
    )
    args.update(kw)
    return SimMeter(**args)


def test_clock_speed_and_jump():
    real = ManualClock(100.0)
    clock = SimClock(T0, speed=60, real=real)
    real.tick(10)
    assert clock.now() == T0 + timedelta(minutes=10)
    clock.jump(timedelta(hours=1))
    assert clock.now() == T0 + timedelta(minutes=70)


@pytest.mark.parametrize(
    ("when", "band"),
    [
        (datetime(2024, 7, 15, 3), 4),
        (datetime(2024, 7, 15, 7, 30), 3),
        (datetime(2024, 7, 15, 9), 2),
        (datetime(2024, 7, 15, 19, 30), 1),
        (datetime(2024, 3, 15, 19, 30), 2),
        (datetime(2024, 7, 15, 21, 30), 2),
        (datetime(2024, 7, 15, 22, 30), 3),
        (datetime(2024, 7, 15, 23, 0), 4),
    ],
)
def test_tou_calendar(when, band):
    assert meter().band_at(when.replace(tzinfo=SHANGHAI)) == band


def test_constant_load_worked_example():
    """A 3 kW load for one hour in the valley at 0.35 yuan/kWh: 3.00 kWh, 105 fen."""
    m = meter(profile=LoadProfile.FACTORY)
    m.advance(T0)
    m.power = Decimal("3.0000")
    # integrate by hand without resampling: call the integrator directly
    m._integrate(4, Decimal(3600))
    assert m.total == Decimal("3.00")
    assert m.bands[4] == Decimal("3.00")
    assert m.remaining_fen == 10_000 - 105


def test_sub_step_remainders_are_carried():
    """1 kW for 1 s, 36 times: exactly one 0.01 kWh step, sharp price 1.20 -> 1 fen + 0.2."""
    m = meter()
    m.power = Decimal("1.0000")
    for _ in range(35):
        m._integrate(1, Decimal(1))
    assert m.total == Decimal("0.00")
    m._integrate(1, Decimal(1))
    assert m.total == Decimal("0.01")
    assert m.remaining_fen == 10_000 - 1
    for _ in range(36 * 4):
        m._integrate(1, Decimal(1))
    # 5 steps × 1.2 fen = 6 fen exactly
    assert m.total == Decimal("0.05") and m.remaining_fen == 10_000 - 6


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=7200), min_size=1, max_size=40))
def test_advance_monotonic_bands_sum_and_money_matches(steps):
    m = meter(remaining_fen=10**9, rated_kw=Decimal("7.5"), seed=3)
    m.advance(T0)
    t = T0
    previous = m.total
    for s in steps:
        t += timedelta(seconds=s)
        m.advance(t)
        assert m.total >= previous
        previous = m.total
        assert sum(m.bands.values()) == m.total
    charged = sum(m.bands[b] * 100 * m.prices[b] for b in m.bands)  # fen, exact
    assert 10**9 - m.remaining_fen == int(charged)  # floored once overall


def test_chunking_does_not_change_totals_when_power_is_constant(monkeypatch):
    monkeypatch.setattr("workers.sim.meter.power_kw", lambda *a: Decimal("2.3456"))
    a, b = meter(remaining_fen=10**9), meter(remaining_fen=10**9)
    a.advance(T0)
    b.advance(T0)
    a.advance(T0 + timedelta(hours=30, seconds=17))
    t = T0
    for _ in range(30 * 60 + 1):
        t += timedelta(minutes=1)
        b.advance(min(t, T0 + timedelta(hours=30, seconds=17)))
    assert a.total == b.total and a.bands == b.bands and a.remaining_fen == b.remaining_fen


def test_trips_at_zero_and_recharge_closes():
    m = meter(remaining_fen=50, rated_kw=Decimal("10"), profile=LoadProfile.FACTORY)
    m.advance(T0)
    m.advance(T0 + timedelta(hours=2))
    assert m.relay is RelayState.OPEN
    assert m.remaining_fen <= 0
    frozen = m.total
    m.advance(T0 + timedelta(hours=5))
    assert m.total == frozen  # nothing flows through an open relay
    with pytest.raises(SimRefused):
        m.relay_action(RelayAction.CLOSE)
    money = m.recharge(5000, 1)
    assert money.purchase_count == 1
    assert m.relay is RelayState.CLOSED


def test_recharge_without_auto_close_needs_the_button():
    m = meter(remaining_fen=0, auto_close=False)
    m.advance(T0)
    m.advance(T0 + timedelta(hours=1))
    assert m.relay is RelayState.OPEN
    m.recharge(1000, 1)
    assert m.relay is RelayState.OPEN and m.close_allowed_pending
    assert m.press_button() is True


def test_protected_meter_does_not_trip_and_refuses_trip():
    m = meter(remaining_fen=0, protected=True)
    m.advance(T0)
    m.advance(T0 + timedelta(hours=3))
    assert m.relay is RelayState.CLOSED and m.remaining_fen < 0
    with pytest.raises(SimRefused):
        m.relay_action(RelayAction.TRIP)
    status = m.relay_action(RelayAction.PROTECT_OFF)
    assert status.owing and not status.protected
    m.advance(T0 + timedelta(hours=3, minutes=1))
    assert m.relay is RelayState.OPEN


def test_overdraft_allows_going_below_zero():
    m = meter(remaining_fen=0, overdraft_fen=100_000, profile=LoadProfile.FACTORY)
    m.advance(T0 + timedelta(hours=8))
    m.advance(T0 + timedelta(hours=9))
    assert m.remaining_fen < 0 and m.relay is RelayState.CLOSED


def test_recharge_count_rules():
    m = meter(remaining_fen=0, purchase_count=4)
    first = m.recharge(1000, 5)
    assert first.remaining_fen == 1000
    assert m.recharge(1000, 5) == first  # duplicate: earlier result, no double credit
    assert m.remaining_fen == 1000
    with pytest.raises(SimRechargeRefused):
        m.recharge(2000, 5)  # same count, different amount
    with pytest.raises(SimRechargeRefused):
        m.recharge(1000, 7)
    with pytest.raises(SimRechargeRefused):
        m.recharge(0, 6)


def test_close_allowed_only_meter():
    m = meter(close_now_supported=False)
    m.relay_action(RelayAction.TRIP)
    with pytest.raises(SimRefused):
        m.relay_action(RelayAction.CLOSE)
    assert m.relay_action(RelayAction.CLOSE_ALLOWED).relay is RelayState.OPEN
    m.press_button()
    assert m.status().relay is RelayState.CLOSED


def test_alarms_and_settings():
    m = meter(remaining_fen=1500)
    st_ = m.status()
    assert st_.alarm_1 and not st_.alarm_2 and not st_.owing
    m.set_alarm_amounts(1000, 200)
    assert not m.status().alarm_1
    with pytest.raises(SimRefused):
        m.set_alarm_amounts(100, 200)
    m.set_prices({2: Decimal("1.1")})
    assert m.prices[2] == Decimal("1.1000")
    with pytest.raises(SimRefused):
        m.set_prices({9: Decimal("1")})


def test_water_meter_has_no_bands():
    m = meter(
        kind=MeterKind.WATER,
        profile=LoadProfile.WATER,
        rated_kw=Decimal("1.5"),
        meter_billing=False,
        prices={3: Decimal("4.9")},
    )
    m.advance(T0 + timedelta(hours=7))
    m.advance(T0 + timedelta(hours=10))
    assert m.bands == {} and m.total > 0
    snap = m.snapshot(T0)
    assert snap.reading.total == m.total and snap.status.relay is RelayState.CLOSED


def test_power_curve_shapes():
    import random

    rng = random.Random(1)
    night = power_kw(LoadProfile.OFFICE, T0.replace(hour=3), Decimal(10), rng)
    day = power_kw(LoadProfile.OFFICE, T0.replace(hour=10), Decimal(10), rng)
    assert night < day <= Decimal(10)


def test_maximum_demand_is_the_highest_15_minute_average_and_settles_on_the_first():
    m = meter(rated_kw=Decimal("10"))
    t = datetime(2024, 7, 31, 23, 30, tzinfo=SHANGHAI)

    def run(kw: str, minutes: int) -> None:  # the power the meter integrates, held a while
        nonlocal t
        m.power = Decimal(kw)
        m._demand(t, t + timedelta(minutes=minutes))
        t += timedelta(minutes=minutes)

    run("4", 10)
    run("8", 5)  # 23:30–23:45: (4 × 600 + 8 × 300) / 900 = 5.3333 kW
    assert (m.demand_kw, m.demand_at) == (Decimal("5.3333"), t)
    run("2", 15)  # a lower interval leaves the maximum where it was
    assert m.demand_kw == Decimal("5.3333") and m.demand_at == t - timedelta(minutes=15)
    run("1", 15)  # 00:00–00:15 on 1 August: the meter settled at 00:00
    assert (m.last_demand_kw, m.last_demand_at) == (
        Decimal("5.3333"), datetime(2024, 7, 31, 23, 45, tzinfo=SHANGHAI)
    )  # fmt: skip
    assert (m.demand_kw, m.demand_at) == (Decimal("1.0000"), t)
    m.relay_action(RelayAction.TRIP)  # an open relay draws nothing
    run("9", 15)
    assert m.demand_kw == Decimal("1.0000")
    run("9", 7)  # an interval not yet complete counts only once it ends
    assert m.demand_kw == Decimal("1.0000")


def test_the_simulated_day_records_a_maximum_demand_within_the_rating():
    m = meter(profile=LoadProfile.SHOP, rated_kw=Decimal("8"))
    m.advance(datetime(2024, 7, 15, 8, 0, tzinfo=SHANGHAI))
    m.advance(datetime(2024, 7, 15, 20, 0, tzinfo=SHANGHAI))
    assert m.demand_at is not None and 0 < m.demand_kw <= m.rated_kw
