"""Balance alarms and automatic relay control: worked scenarios and properties."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.metering import nocut
from server.metering.alarms import (
    AlarmConfig,
    AlarmKind,
    AlarmLevel,
    AlarmOverride,
    AlarmState,
    Decision,
    LevelOverride,
    MeterContext,
    RelayVerdict,
    TripCause,
    evaluate,
    merge,
)
from server.metering.forecast import DaysLeft, ForecastBasis
from workers.meters.base import RelayState

SH = ZoneInfo("Asia/Shanghai")
TUESDAY = datetime(2025, 9, 16, 10, 0, tzinfo=SH)  # an ordinary working morning
SITE = AlarmConfig()


@dataclass
class Shop:
    """One account and its meter; applies relay decisions as a confirming meter would."""

    config: AlarmConfig = SITE
    protected: bool = False
    relay: RelayState = RelayState.CLOSED
    trip_cause: TripCause | None = None
    state: AlarmState = field(default_factory=AlarmState)
    log: list[Decision] = field(default_factory=list)
    protected_log: list[bool] = field(default_factory=list)  # 保电 at each decision

    def see(self, balance_fen: int, now: datetime, days: str | None = None) -> Decision:
        forecast = None
        if days is not None:
            forecast = DaysLeft(ForecastBasis.RECENT_USE, Decimal(days), Decimal(1000), 7)
        ctx = MeterContext(self.relay, self.trip_cause, self.protected, forecast)
        decision = evaluate(balance_fen, self.state, self.config, now, ctx)
        self.state = decision.state
        if decision.relay.verdict is RelayVerdict.TRIP:
            self.relay, self.trip_cause = RelayState.OPEN, decision.relay.cause
        elif decision.relay.verdict is RelayVerdict.CLOSE:
            self.relay, self.trip_cause = RelayState.CLOSED, None
        self.log.append(decision)
        self.protected_log.append(self.protected)
        return decision

    def staff_trip(self) -> None:
        self.relay, self.trip_cause = RelayState.OPEN, TripCause.STAFF


def messages(decision: Decision) -> list[str]:
    return [a.message for a in decision.alarms]


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# --- the shop whose balance runs down ------------------------------------------------


def test_balance_falls_80_49_19_minus_1_then_recharge() -> None:
    shop = Shop()
    d = shop.see(8000, TUESDAY)
    assert d.alarms == () and d.relay.verdict is RelayVerdict.KEEP

    d = shop.see(4900, TUESDAY + hours(1))
    assert messages(d) == ["您的余额已不足 50.00 元，请及时充值"]
    assert (d.alarms[0].kind, d.alarms[0].level, d.alarms[0].balance_fen) == (
        AlarmKind.BALANCE,
        1,
        4900,
    )
    assert shop.see(4500, TUESDAY + hours(2)).alarms == ()  # level 1 once

    d = shop.see(1900, TUESDAY + hours(3))
    assert messages(d) == ["您的余额已不足 20.00 元，请及时充值"]
    assert shop.see(1500, TUESDAY + hours(4)).alarms == ()  # level 2 once (until 24 h pass)
    assert d.relay.verdict is RelayVerdict.KEEP

    d = shop.see(-100, TUESDAY + hours(5))
    assert messages(d) == ["您的余额已用完（当前余额 -1.00 元），请尽快充值"]
    assert d.relay.verdict is RelayVerdict.TRIP
    assert d.relay.cause is TripCause.PLATFORM
    assert d.relay.reason == "余额 -1.00 元，已达跳闸阈值 0.00 元，自动跳闸"
    assert shop.relay is RelayState.OPEN

    d = shop.see(-100, TUESDAY + hours(6))  # already tripped: nothing more
    assert d.alarms == () and d.relay.verdict is RelayVerdict.KEEP

    d = shop.see(9900, TUESDAY + hours(7))  # recharge 100 元
    assert d.relay.verdict is RelayVerdict.CLOSE
    assert d.relay.reason == "余额 99.00 元，高于合闸阈值 0.00 元，自动合闸"
    assert d.alarms == () and d.state.level == 0
    assert shop.relay is RelayState.CLOSED


def test_trip_exactly_at_zero() -> None:
    d = Shop().see(0, TUESDAY)
    assert d.relay.verdict is RelayVerdict.TRIP


def test_straight_from_plenty_to_arrears_sends_one_message() -> None:
    d = Shop().see(-100, TUESDAY)
    assert [a.level for a in d.alarms] == [3]
    assert d.relay.verdict is RelayVerdict.TRIP


def test_level_2_repeats_after_its_interval_up_to_its_count() -> None:
    shop = Shop()
    assert len(shop.see(1900, TUESDAY).alarms) == 1
    assert shop.see(1800, TUESDAY + hours(23)).alarms == ()
    assert [a.level for a in shop.see(1700, TUESDAY + hours(24)).alarms] == [2]
    assert shop.see(1600, TUESDAY + hours(48)).alarms == ()  # repeat = 2 used up
    assert shop.see(1600, TUESDAY + hours(96)).alarms == ()


def test_partial_recharge_back_to_level_1_reminds_once_at_level_1() -> None:
    shop = Shop()
    shop.see(1900, TUESDAY)  # straight to level 2: level 1 never spoke
    d = shop.see(3000, TUESDAY + hours(1))  # 30 元 > 20 + 2: level 2 clears
    assert messages(d) == ["您的余额已不足 50.00 元，请及时充值"]
    assert d.state.level == 1


# --- hysteresis ----------------------------------------------------------------------


def test_hovering_at_a_threshold_does_not_spam() -> None:
    shop = Shop()
    sent = []
    for i, balance in enumerate([5001, 4999, 5001, 4999, 5001, 4999, 5100, 4950] * 3):
        sent += shop.see(balance, TUESDAY + hours(30 * i)).alarms
    assert [a.level for a in sent] == [1]


def test_level_clears_above_threshold_plus_margin_and_may_speak_again() -> None:
    shop = Shop()
    assert len(shop.see(4999, TUESDAY).alarms) == 1
    assert shop.see(5200, TUESDAY + hours(1)).state.level == 1  # at the margin: kept
    assert shop.see(5201, TUESDAY + hours(2)).state.level == 0  # above it: cleared
    assert len(shop.see(4999, TUESDAY + hours(3)).alarms) == 1


# --- when the platform must not trip --------------------------------------------------


def test_protected_meter_is_never_tripped() -> None:
    shop = Shop(protected=True)
    for i, balance in enumerate([4900, 1900, -100, -5000, -50000]):
        d = shop.see(balance, TUESDAY + hours(i))
        assert d.relay.verdict is not RelayVerdict.TRIP
    assert d.relay.verdict is RelayVerdict.DEFER_TRIP
    assert d.relay.reason == "保电中，不自动跳闸"
    assert shop.relay is RelayState.CLOSED


def test_saturday_trip_is_deferred_to_monday_morning() -> None:
    shop = Shop()
    saturday = datetime(2025, 9, 20, 10, 0, tzinfo=SH)
    d = shop.see(-100, saturday)
    assert d.relay.verdict is RelayVerdict.DEFER_TRIP
    assert d.relay.deferred_until == datetime(2025, 9, 22, 8, 0, tzinfo=SH)
    assert d.relay.reason == "周末不断电，最早 2025-09-22 08:00 可断电"
    assert len(d.alarms) == 1  # the tenant is still told
    assert shop.see(-300, datetime(2025, 9, 21, 22, 0, tzinfo=SH)).relay.verdict is (
        RelayVerdict.DEFER_TRIP
    )
    assert shop.see(-400, d.relay.deferred_until).relay.verdict is RelayVerdict.TRIP


def test_night_trip_is_deferred_to_eight() -> None:
    d = Shop().see(-100, datetime(2025, 9, 16, 21, 30, tzinfo=SH))
    assert d.relay.verdict is RelayVerdict.DEFER_TRIP
    assert d.relay.deferred_until == datetime(2025, 9, 17, 8, 0, tzinfo=SH)


def test_national_day_trip_is_deferred_past_the_holiday() -> None:
    d = Shop().see(-100, datetime(2025, 10, 2, 10, 0, tzinfo=SH))
    assert d.relay.verdict is RelayVerdict.DEFER_TRIP
    assert d.relay.deferred_until == datetime(2025, 10, 9, 8, 0, tzinfo=SH)
    assert d.relay.reason.startswith("法定节假日不断电")


def test_credit_limit_allows_running_down_to_minus_limit() -> None:
    shop = Shop(config=AlarmConfig(credit_limit_fen=1000))
    d = shop.see(-500, TUESDAY)
    assert d.relay.verdict is RelayVerdict.KEEP
    assert d.relay.reason == "在允许透支额度 10.00 元内，暂不跳闸"
    assert shop.see(-1000, TUESDAY + hours(1)).relay.verdict is RelayVerdict.KEEP
    assert shop.see(-1001, TUESDAY + hours(2)).relay.verdict is RelayVerdict.TRIP


def test_auto_trip_can_be_switched_off() -> None:
    d = Shop(config=AlarmConfig(auto_trip=False)).see(-100, TUESDAY)
    assert d.relay.verdict is RelayVerdict.KEEP and len(d.alarms) == 1


# --- closing after a recharge ---------------------------------------------------------


def test_staff_trip_is_not_closed_by_a_recharge() -> None:
    shop = Shop()
    shop.staff_trip()
    d = shop.see(20000, TUESDAY)
    assert d.relay.verdict is RelayVerdict.KEEP
    assert d.relay.reason == "人工跳闸，需人工合闸"
    assert shop.relay is RelayState.OPEN


def test_close_threshold_above_zero() -> None:
    shop = Shop(config=AlarmConfig(close_threshold_fen=1000))
    shop.see(-100, TUESDAY)
    d = shop.see(500, TUESDAY + hours(1))
    assert d.relay.verdict is RelayVerdict.KEEP
    assert d.relay.reason == "余额介于跳闸与合闸阈值之间，保持现状"
    assert shop.see(1001, TUESDAY + hours(2)).relay.verdict is RelayVerdict.CLOSE


def test_unknown_relay_after_platform_trip_is_closed() -> None:
    ctx = MeterContext(relay=RelayState.UNKNOWN, trip_cause=TripCause.PLATFORM)
    assert evaluate(5000, AlarmState(), SITE, TUESDAY, ctx).relay.verdict is RelayVerdict.CLOSE


def test_open_relay_of_unknown_cause_and_auto_close_off_stay_open() -> None:
    ctx = MeterContext(relay=RelayState.OPEN)
    assert evaluate(9000, AlarmState(), SITE, TUESDAY, ctx).relay.verdict is RelayVerdict.KEEP
    ctx = MeterContext(relay=RelayState.OPEN, trip_cause=TripCause.PLATFORM)
    off = AlarmConfig(auto_close=False)
    assert evaluate(9000, AlarmState(), off, TUESDAY, ctx).relay.reason == "未启用自动合闸"


def test_closing_is_allowed_at_night() -> None:
    ctx = MeterContext(relay=RelayState.OPEN, trip_cause=TripCause.PLATFORM)
    night = datetime(2025, 10, 1, 23, 0, tzinfo=SH)
    assert evaluate(5000, AlarmState(), SITE, night, ctx).relay.verdict is RelayVerdict.CLOSE


# --- arrears reminders ---------------------------------------------------------------


def test_arrears_reminder_every_day_while_negative() -> None:
    shop = Shop(protected=True)  # supply stays on, so arrears grow
    assert [a.level for a in shop.see(-100, TUESDAY).alarms] == [3]
    assert shop.see(-300, TUESDAY + hours(12)).alarms == ()
    d = shop.see(-1234, TUESDAY + hours(24))
    assert [(a.kind, a.message) for a in d.alarms] == [
        (AlarmKind.ARREARS, "您已欠费 12.34 元，请尽快充值")
    ]
    assert shop.see(-1500, TUESDAY + hours(47)).alarms == ()
    assert len(shop.see(-1600, TUESDAY + hours(48)).alarms) == 1
    assert shop.see(100, TUESDAY + hours(49)).state.arrears_last_sent is None


# --- days-left forecast --------------------------------------------------------------


def test_forecast_raises_level_1_early_and_only_once() -> None:
    shop = Shop()
    d = shop.see(8000, TUESDAY, days="1.5")
    assert [(a.kind, a.level) for a in d.alarms] == [(AlarmKind.FORECAST, 1)]
    assert messages(d) == ["余额预计可用 1.5 天，请及时充值"]
    assert shop.see(7000, TUESDAY + hours(30), days="2.5").alarms == ()  # within 2 + 1 days
    assert shop.see(4900, TUESDAY + hours(31), days="1").alarms == ()  # level 1 already said
    assert len(shop.see(1900, TUESDAY + hours(32), days="0.5").alarms) == 1  # level 2 speaks


def test_forecast_clears_with_margin_then_may_warn_again() -> None:
    shop = Shop()
    assert messages(shop.see(8000, TUESDAY, days="2")) == ["余额预计可用 2 天，请及时充值"]
    assert shop.see(20000, TUESDAY + hours(1), days="3.1").state.level == 0
    assert len(shop.see(8000, TUESDAY + hours(2), days="2").alarms) == 1


def test_forecast_is_ignored_when_switched_off_or_unknown() -> None:
    assert Shop(config=AlarmConfig(forecast_days=None)).see(8000, TUESDAY, "1").alarms == ()
    none = DaysLeft(ForecastBasis.NO_HISTORY, None, None, 0)
    ctx = MeterContext(forecast=none)
    assert evaluate(8000, AlarmState(), SITE, TUESDAY, ctx).alarms == ()


# --- configuration -------------------------------------------------------------------


def test_account_override_merges_onto_the_site_default() -> None:
    site = AlarmConfig(hysteresis_fen=300)
    override = AlarmOverride(
        levels={2: LevelOverride(threshold_fen=3000, repeat=3)}, credit_limit_fen=500
    )
    account = merge(site, override)
    assert [lv.threshold_fen for lv in account.levels] == [5000, 3000, 0]
    assert account.levels[1].repeat == 3
    assert account.levels[1].interval == timedelta(hours=24)  # inherited
    assert account.credit_limit_fen == 500
    assert account.hysteresis_fen == 300  # inherited
    assert merge(site, None) is site
    d = Shop(config=account).see(2900, TUESDAY)
    assert messages(d) == ["您的余额已不足 30.00 元，请及时充值"]


def test_bad_overrides_and_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        merge(SITE, AlarmOverride(levels={4: LevelOverride(threshold_fen=-100)}))
    with pytest.raises(ValueError):  # level 2 above level 1
        merge(SITE, AlarmOverride(levels={2: LevelOverride(threshold_fen=6000)}))
    with pytest.raises(ValueError):
        AlarmConfig(levels=(AlarmLevel(1, 5000), AlarmLevel(3, 0)))
    with pytest.raises(ValueError):
        AlarmConfig(close_threshold_fen=-1)
    with pytest.raises(ValueError):
        AlarmConfig(levels=(AlarmLevel(1, 0, repeat=0),))


# --- properties ----------------------------------------------------------------------

CONFIGS = [
    SITE,
    AlarmConfig(credit_limit_fen=2000, hysteresis_fen=0),
    AlarmConfig(
        levels=(AlarmLevel(1, 3000, 3, hours(2)), AlarmLevel(2, 0, 2, hours(5))),
        close_threshold_fen=500,
        hysteresis_fen=1000,
    ),
]

events = st.lists(
    st.tuples(
        st.integers(min_value=-20_000, max_value=20_000),  # balance in fen
        st.integers(min_value=0, max_value=72 * 60),  # minutes since the previous event
        st.sampled_from(["none", "none", "none", "protect", "unprotect", "staff_trip"]),
    ),
    min_size=1,
    max_size=40,
)
starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 9, 1), timezones=st.just(SH)
)


def run(shop: Shop, start: datetime, steps: list[tuple[int, int, str]]) -> list[datetime]:
    now, times = start, []
    for balance, gap, action in steps:
        now += timedelta(minutes=gap)
        if action == "protect":
            shop.protected = True
        elif action == "unprotect":
            shop.protected = False
        elif action == "staff_trip":
            shop.staff_trip()
        shop.see(balance, now)
        times.append(now)
    return times


@settings(max_examples=150, deadline=None)
@given(config=st.sampled_from(CONFIGS), start=starts, steps=events)
def test_no_level_speaks_beyond_its_repeat_count_without_clearing(
    config: AlarmConfig, start: datetime, steps: list[tuple[int, int, str]]
) -> None:
    shop = Shop(config=config)
    run(shop, start, steps)
    for lv in config.levels:
        spoken = 0
        for (balance, _, _), decision in zip(steps, shop.log, strict=True):
            if balance > lv.threshold_fen + config.hysteresis_fen:
                spoken = 0  # the level cleared
            spoken += sum(1 for a in decision.alarms if a.level == lv.level)
            assert spoken <= lv.repeat


@settings(max_examples=150, deadline=None)
@given(config=st.sampled_from(CONFIGS), start=starts, steps=events)
def test_never_trips_protected_meters_or_inside_no_cut_windows(
    config: AlarmConfig, start: datetime, steps: list[tuple[int, int, str]]
) -> None:
    shop = Shop(config=config)
    times = run(shop, start, steps)
    for decision, now, protected, (balance, _, _) in zip(
        shop.log, times, shop.protected_log, steps, strict=True
    ):
        if decision.relay.verdict is RelayVerdict.TRIP:
            assert not protected
            assert nocut.check(now, config.no_cut).allowed
            assert balance <= config.trip_level.threshold_fen
            assert balance < -config.credit_limit_fen or config.credit_limit_fen == 0


@settings(max_examples=150, deadline=None)
@given(
    config=st.sampled_from(CONFIGS),
    start=starts,
    steps=events,
    final=st.integers(min_value=0, max_value=50_000),
    gap=st.integers(min_value=0, max_value=72 * 60),
)
def test_a_platform_trip_always_ends_closed_once_the_balance_is_back(
    config: AlarmConfig, start: datetime, steps: list[tuple[int, int, str]], final: int, gap: int
) -> None:
    shop = Shop(config=config)
    times = run(shop, start, steps)
    balance = config.close_threshold_fen + 1 + final
    staff_opened = shop.trip_cause is TripCause.STAFF
    shop.see(balance, times[-1] + timedelta(minutes=gap))
    if staff_opened:
        assert shop.relay is RelayState.OPEN
    else:
        assert shop.relay is RelayState.CLOSED


# --- purity --------------------------------------------------------------------------

PURE_MODULES = ["alarms", "forecast", "ingest", "nocut", "reading", "vocabulary"]
ALLOWED_IMPORTS = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "itertools",
    "typing",
    "zoneinfo",
    "chinese_calendar",
    "server.core.money",
    "server.metering",
    "server.metering.forecast",
    "server.metering.reading",
    "server.metering.vocabulary",
}


@pytest.mark.parametrize("name", PURE_MODULES)
def test_decision_modules_import_no_framework_and_read_no_clock(name: str) -> None:
    path = Path(__file__).parents[2] / "server" / "metering" / f"{name}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Attribute):
            assert node.attr not in {"now", "today", "utcnow", "time_ns"}, f"{name} reads the clock"
    imported = {m if not m.startswith("collections") else "collections" for m in imported}
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
