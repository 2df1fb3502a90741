"""Balance alarms and automatic relay control (先交费后用电), as one pure decision.

`evaluate(balance_fen, state, config, now, context)` is called after every change of an
account's balance (a charge, a recharge) and by the scheduler for repeats; it returns the
alarms to send, what to do with the relay, and the state to keep for the next call.

Levels. Level n is *reached* when the balance is at or below its threshold (default
≤ 50.00, ≤ 20.00, ≤ 0.00 元). A reached level stays *active* until the balance rises above
threshold + `hysteresis_fen`, so a balance hovering at 50.01 / 49.99 raises nothing new.
Only the deepest active level speaks: up to `repeat` notifications, `interval` apart.
When a level clears, its count resets, so it may speak again next time it is reached.
A days-left forecast at or below `forecast_days` activates level 1 early ("余额预计可用 2
天"); it clears when the forecast rises `forecast_clear_days` above that.

Postpaid (后付费) accounts are never tripped for their balance and raise no balance alarm:
their usage is billed after the period, and an overdue bill is their arrears.

Relay. At the last level's threshold the platform trips the relay, unless the meter is
protected (保电), the moment is inside a no-cut window (nights, weekends, holidays: see
nocut.py; the decision says when cutting is next allowed), or the account is within its
credit limit. `credit_limit_fen = 0` means no credit: the last level trips on its own
threshold; with a limit C > 0 the balance may run down to -C inclusive. After a recharge
lifts the balance above `close_threshold_fen` the relay is closed again — only if the
platform opened it: a trip by staff (TripCause.STAFF) waits for staff. While the balance is
negative an arrears reminder goes out every `arrears_interval`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any

from server.core.money import yuan
from server.metering import nocut
from server.metering.forecast import DaysLeft
from server.metering.vocabulary import RelayState


class AlarmKind(StrEnum):
    BALANCE = "balance"  # a level was reached
    FORECAST = "forecast"  # level 1 raised early by the days-left forecast
    ARREARS = "arrears"  # periodic reminder while the balance is negative


class TripCause(StrEnum):
    """Who opened the relay; only a platform trip is closed automatically."""

    PLATFORM = "platform"
    STAFF = "staff"


class RelayVerdict(StrEnum):
    TRIP = "trip"
    CLOSE = "close"
    DEFER_TRIP = "defer_trip"  # a trip is due but not allowed now; see the reason
    KEEP = "keep"  # nothing to do


@dataclass(frozen=True, slots=True)
class AlarmLevel:
    level: int
    threshold_fen: int  # reached when balance <= threshold
    repeat: int = 1  # notifications at most while the level stays active
    interval: timedelta = timedelta(hours=24)  # between repeats


DEFAULT_LEVELS = (
    AlarmLevel(1, 5000, repeat=1),
    AlarmLevel(2, 2000, repeat=2),
    AlarmLevel(3, 0, repeat=1),
)


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    """A site's alarm rules; an account's `AlarmOverride` is merged onto them."""

    levels: tuple[AlarmLevel, ...] = DEFAULT_LEVELS
    hysteresis_fen: int = 200
    close_threshold_fen: int = 0  # close when balance > this
    credit_limit_fen: int = 0
    arrears_interval: timedelta = timedelta(hours=24)
    forecast_days: Decimal | None = Decimal(2)  # None: the forecast raises nothing
    forecast_clear_days: Decimal = Decimal(1)
    auto_trip: bool = True
    auto_close: bool = True
    no_cut: nocut.NoCutPolicy = field(default_factory=nocut.NoCutPolicy)

    def __post_init__(self) -> None:
        levels = self.levels
        if not levels or [lv.level for lv in levels] != list(range(1, len(levels) + 1)):
            raise ValueError("levels must be numbered 1..n in order")
        if any(a.threshold_fen <= b.threshold_fen for a, b in pairwise(levels)):
            raise ValueError("level thresholds must strictly decrease")
        if any(lv.repeat < 1 or lv.interval <= timedelta(0) for lv in levels):
            raise ValueError("repeat must be at least 1 and interval positive")
        if self.hysteresis_fen < 0 or self.credit_limit_fen < 0:
            raise ValueError("hysteresis and credit limit must not be negative")
        if self.close_threshold_fen < levels[-1].threshold_fen:
            raise ValueError("close threshold must not be below the trip threshold")
        if self.arrears_interval <= timedelta(0) or self.forecast_clear_days < 0:
            raise ValueError("arrears interval must be positive, forecast clear days >= 0")

    @property
    def trip_level(self) -> AlarmLevel:
        return self.levels[-1]


@dataclass(frozen=True, slots=True)
class LevelOverride:
    threshold_fen: int | None = None
    repeat: int | None = None
    interval: timedelta | None = None


@dataclass(frozen=True, slots=True)
class AlarmOverride:
    """Per-account changes; None inherits the site's value. The level count is the site's."""

    levels: Mapping[int, LevelOverride] = field(default_factory=dict)
    hysteresis_fen: int | None = None
    close_threshold_fen: int | None = None
    credit_limit_fen: int | None = None
    arrears_interval: timedelta | None = None
    forecast_days: Decimal | None = None
    forecast_clear_days: Decimal | None = None
    auto_trip: bool | None = None
    auto_close: bool | None = None
    no_cut: nocut.NoCutPolicy | None = None


def merge(site: AlarmConfig, override: AlarmOverride | None) -> AlarmConfig:
    """The account's effective config: `override` on top of `site` (validated again)."""
    if override is None:
        return site
    unknown = set(override.levels) - {lv.level for lv in site.levels}
    if unknown:
        raise ValueError(f"override names levels the site does not have: {sorted(unknown)}")
    levels = tuple(_merge_level(lv, override.levels.get(lv.level)) for lv in site.levels)
    changes: dict[str, Any] = {
        f.name: getattr(override, f.name)
        for f in fields(override)
        if f.name != "levels" and getattr(override, f.name) is not None
    }
    return replace(site, levels=levels, **changes)


def _merge_level(level: AlarmLevel, override: LevelOverride | None) -> AlarmLevel:
    if override is None:
        return level
    changes = {f.name: getattr(override, f.name) for f in fields(override)}
    return replace(level, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True, slots=True)
class AlarmState:
    """What `evaluate` remembers between calls; store it with the account."""

    level: int = 0  # deepest active level, 0 = none
    sent: Mapping[int, int] = field(default_factory=dict)  # per level, since it was reached
    last_sent: Mapping[int, datetime] = field(default_factory=dict)
    forecast_raised: bool = False
    arrears_last_sent: datetime | None = None


@dataclass(frozen=True, slots=True)
class MeterContext:
    """Facts about the meter and account at evaluation time (the relay as last confirmed)."""

    relay: RelayState = RelayState.CLOSED
    trip_cause: TripCause | None = None  # who opened the relay, when it is open
    protected: bool = False  # 保电
    forecast: DaysLeft | None = None
    # 后付费: the tenant pays bills after use; its balance never trips the relay and raises no
    # balance or arrears alarm (overdue bills are its arrears: server.property).
    postpaid: bool = False


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: AlarmKind
    level: int  # 0 for arrears reminders
    balance_fen: int
    message: str  # Chinese, for the tenant


@dataclass(frozen=True, slots=True)
class RelayDecision:
    verdict: RelayVerdict
    reason: str  # Chinese, for the operation log
    deferred_until: datetime | None = None  # DEFER_TRIP: next moment cutting is allowed
    cause: TripCause | None = None  # TRIP: record it when the meter confirms


@dataclass(frozen=True, slots=True)
class Decision:
    alarms: tuple[Alarm, ...]
    relay: RelayDecision
    state: AlarmState


def evaluate(
    balance_fen: int,
    state: AlarmState,
    config: AlarmConfig,
    now: datetime,
    context: MeterContext | None = None,
) -> Decision:
    """Decide alarms and relay action for an account's current balance."""
    context = context or MeterContext()
    if context.postpaid:
        relay = _relay(balance_fen, config, now, context)
        return Decision(alarms=(), relay=relay, state=AlarmState())
    forecast_on = _forecast_active(state, config, context.forecast)
    level = _active_level(balance_fen, state.level, config)
    if forecast_on:
        level = max(level, 1)
    sent = {lv: n for lv, n in state.sent.items() if lv <= level}
    last_sent = {lv: t for lv, t in state.last_sent.items() if lv <= level}
    alarms: list[Alarm] = []
    if level:
        alarm = _level_alarm(balance_fen, config.levels[level - 1], sent, last_sent, now)
        if alarm is not None:
            if level == 1 and forecast_on and balance_fen > config.levels[0].threshold_fen:
                alarm = _forecast_alarm(balance_fen, context.forecast)
            alarms.append(alarm)
    arrears_last, remind = _arrears(balance_fen, config, bool(alarms), state.arrears_last_sent, now)
    if remind:
        alarms.append(Alarm(AlarmKind.ARREARS, 0, balance_fen, _arrears_text(balance_fen)))
    new_state = AlarmState(level, sent, last_sent, forecast_on, arrears_last)
    relay = _relay(balance_fen, config, now, context)
    return Decision(alarms=tuple(alarms), relay=relay, state=new_state)


def _active_level(balance_fen: int, previous: int, config: AlarmConfig) -> int:
    """Deepest level reached now, or kept from before by hysteresis."""
    active = 0
    for lv in config.levels:
        reached = balance_fen <= lv.threshold_fen
        kept = lv.level <= previous and balance_fen <= lv.threshold_fen + config.hysteresis_fen
        if reached or kept:
            active = lv.level
    return active


def _forecast_active(state: AlarmState, config: AlarmConfig, forecast: DaysLeft | None) -> bool:
    if config.forecast_days is None or forecast is None or forecast.days is None:
        return False
    limit = config.forecast_days
    if state.forecast_raised:
        limit += config.forecast_clear_days
    return forecast.days <= limit


def _level_alarm(
    balance_fen: int,
    level: AlarmLevel,
    sent: dict[int, int],
    last_sent: dict[int, datetime],
    now: datetime,
) -> Alarm | None:
    """The level's next notification if its repeat budget and interval allow; updates counts."""
    count = sent.get(level.level, 0)
    last = last_sent.get(level.level)
    if count >= level.repeat or (last is not None and now - last < level.interval):
        return None
    sent[level.level] = count + 1
    last_sent[level.level] = now
    return Alarm(AlarmKind.BALANCE, level.level, balance_fen, _level_text(balance_fen, level))


def _level_text(balance_fen: int, level: AlarmLevel) -> str:
    if level.threshold_fen > 0:
        return f"您的余额已不足 {yuan(level.threshold_fen)} 元，请及时充值"
    return f"您的余额已用完（当前余额 {yuan(balance_fen)} 元），请尽快充值"


def _forecast_alarm(balance_fen: int, forecast: DaysLeft | None) -> Alarm:
    assert forecast is not None and forecast.days is not None  # checked by _forecast_active
    days = f"{forecast.days.normalize():f}"
    return Alarm(AlarmKind.FORECAST, 1, balance_fen, f"余额预计可用 {days} 天，请及时充值")


def _arrears_text(balance_fen: int) -> str:
    return f"您已欠费 {yuan(-balance_fen)} 元，请尽快充值"


def _arrears(
    balance_fen: int, config: AlarmConfig, sent_now: bool, last: datetime | None, now: datetime
) -> tuple[datetime | None, bool]:
    """(when the last arrears notice went out, whether a reminder is due now).

    An alarm already sent in this evaluation counts as the notice, so the tenant never gets
    two messages at once; the reminder clock restarts from it.
    """
    if balance_fen >= 0:
        return None, False
    if sent_now:
        return now, False
    if last is None or now - last >= config.arrears_interval:
        return now, True
    return last, False


def _relay(
    balance_fen: int, config: AlarmConfig, now: datetime, ctx: MeterContext
) -> RelayDecision:
    if balance_fen <= config.trip_level.threshold_fen:
        return _trip(balance_fen, config, now, ctx)
    if balance_fen > config.close_threshold_fen:
        return _close(balance_fen, config, ctx)
    return RelayDecision(RelayVerdict.KEEP, "余额介于跳闸与合闸阈值之间，保持现状")


def _trip(balance_fen: int, config: AlarmConfig, now: datetime, ctx: MeterContext) -> RelayDecision:
    if ctx.relay is RelayState.OPEN:
        return RelayDecision(RelayVerdict.KEEP, "已处于跳闸状态")
    if ctx.postpaid:
        return RelayDecision(RelayVerdict.KEEP, "后付费账户不因余额不足跳闸，按账单催缴")
    if not config.auto_trip:
        return RelayDecision(RelayVerdict.KEEP, "未启用自动跳闸")
    if config.credit_limit_fen > 0 and balance_fen >= -config.credit_limit_fen:
        limit = yuan(config.credit_limit_fen)
        return RelayDecision(RelayVerdict.KEEP, f"在允许透支额度 {limit} 元内，暂不跳闸")
    if ctx.protected:
        return RelayDecision(RelayVerdict.DEFER_TRIP, "保电中，不自动跳闸")
    cut = nocut.check(now, config.no_cut)
    if not cut.allowed:
        return RelayDecision(RelayVerdict.DEFER_TRIP, cut.message, cut.next_allowed_at)
    threshold = yuan(config.trip_level.threshold_fen)
    reason = f"余额 {yuan(balance_fen)} 元，已达跳闸阈值 {threshold} 元，自动跳闸"
    return RelayDecision(RelayVerdict.TRIP, reason, cause=TripCause.PLATFORM)


def _close(balance_fen: int, config: AlarmConfig, ctx: MeterContext) -> RelayDecision:
    if ctx.relay is RelayState.CLOSED:
        return RelayDecision(RelayVerdict.KEEP, "供应正常")
    if ctx.trip_cause is TripCause.STAFF:
        return RelayDecision(RelayVerdict.KEEP, "人工跳闸，需人工合闸")
    if ctx.trip_cause is not TripCause.PLATFORM:
        return RelayDecision(RelayVerdict.KEEP, "非平台自动跳闸，不自动合闸")
    if not config.auto_close:
        return RelayDecision(RelayVerdict.KEEP, "未启用自动合闸")
    threshold = yuan(config.close_threshold_fen)
    reason = f"余额 {yuan(balance_fen)} 元，高于合闸阈值 {threshold} 元，自动合闸"
    return RelayDecision(RelayVerdict.CLOSE, reason)
