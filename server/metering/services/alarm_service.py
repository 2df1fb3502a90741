"""Alarm service: run the pure `alarms.evaluate` for accounts whose balance changed, store
what it says, and turn relay verdicts into meter commands.

Called after billing (the collector), after a credit (`on_wallet_credited`) and by the
scheduler's sweep (repeats, arrears reminders, deferred trips whose window has ended). Each
account is handled in its own transaction with the account row locked, so two workers
evaluating the same account queue at most one TRIP or CLOSE: a meter that already has an
open relay command gets no new one.

Balance: platform-billed meters follow the wallet (`Account.balance_fen`). Meter-billed
meters trip and close themselves on their own money register; the platform evaluates their
account on the meter's remaining money for alarms only and never sends them relay commands
(a recharge command is what closes them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from tortoise.transactions import in_transaction

from server.accounts.models import Account
from server.audit.service import record
from server.metering import alarms
from server.metering.forecast import DaysLeft, ForecastBasis
from server.metering.models import (
    AccountAlarmState,
    AlarmRecord,
    CommandOp,
    Meter,
    MeterBilling,
    MeteringPolicy,
    MeterStatus,
)
from server.metering.services import commands
from server.metering.services.config import effective_config, state_from_json, state_to_json
from workers.meters.base import RelayState

log = logging.getLogger(__name__)
ACTOR = "system:alarms"
_VERDICT_OP = {alarms.RelayVerdict.TRIP: CommandOp.TRIP, alarms.RelayVerdict.CLOSE: CommandOp.CLOSE}


def _forecast(balance_fen: int, daily_use: str | None) -> DaysLeft | None:
    if daily_use is None:
        return None
    daily = Decimal(daily_use)
    if daily <= 0:
        return None
    if balance_fen <= 0:
        return DaysLeft(ForecastBasis.EXHAUSTED, Decimal("0.0"), daily, 0)
    days = (Decimal(balance_fen) / daily).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    return DaysLeft(ForecastBasis.RECENT_USE, days, daily, 0)


def _context(meter: Meter, forecast: DaysLeft | None) -> alarms.MeterContext:
    cause = alarms.TripCause(meter.trip_cause) if meter.trip_cause else None
    return alarms.MeterContext(
        relay=RelayState(meter.relay_state),
        trip_cause=cause,
        protected=meter.protected,
        forecast=forecast,
    )


async def evaluate_accounts(account_ids: Iterable[int], *, now: datetime) -> int:
    """Evaluate each account; returns how many alarms were raised."""
    raised = 0
    for account_id in sorted(set(account_ids)):
        async with in_transaction():
            raised += await _evaluate_one(account_id, now)
    return raised


async def _evaluate_one(account_id: int, now: datetime) -> int:
    account = await Account.filter(id=account_id).select_for_update().first()
    if account is None:
        return 0
    meters = await Meter.filter(account_id=account_id, status=MeterStatus.ACTIVE).order_by("id")
    if not meters:
        return 0
    row, _ = await AccountAlarmState.get_or_create(account_id=account_id)
    policy = await MeteringPolicy.get_or_none(site_id=account.site_id)
    config = effective_config(
        policy.alarm if policy else None, row.override, account.credit_limit_fen
    )
    platform = [m for m in meters if m.billing == MeterBilling.PLATFORM]
    balance = account.balance_fen
    if not platform:  # meter-billed only: the meter's money is what the tenant has left
        balance = sum(m.money_fen or 0 for m in meters) + balance
    forecast = _forecast(balance, row.daily_use_fen)
    state = state_from_json(row.state)
    decision = alarms.evaluate(balance, state, config, now, _context(meters[0], forecast))
    for alarm in decision.alarms:
        await AlarmRecord.create(
            account_id=account_id,
            kind=alarm.kind.value,
            level=alarm.level,
            balance_fen=alarm.balance_fen,
            message=alarm.message,
            created_at=now,
        )
        await record(
            ACTOR,
            f"alarm.{alarm.kind.value}",
            target_type="account",
            target_id=account_id,
            site_id=account.site_id,
            reason=alarm.message,
            detail={"level": alarm.level, "balance_fen": alarm.balance_fen},
            at=now,
        )
    deferred = None
    for meter in platform:
        verdict = alarms.evaluate(balance, state, config, now, _context(meter, forecast)).relay
        deferred = await _apply_relay(meter, verdict, row, now) or deferred
    row.state = state_to_json(decision.state)
    row.deferred_until = deferred
    await row.save()
    return len(decision.alarms)


async def _apply_relay(
    meter: Meter, decision: alarms.RelayDecision, row: AccountAlarmState, now: datetime
) -> datetime | None:
    """Queue TRIP/CLOSE (unless a relay command is already open); log a new deferral once."""
    op = _VERDICT_OP.get(decision.verdict)
    if op is not None:
        if await commands.has_open(meter.id, commands.RELAY_OPS):
            return None
        params = {"cause": alarms.TripCause.PLATFORM.value} if op is CommandOp.TRIP else {}
        await commands.queue_command(
            meter.id, op, params, actor=ACTOR, reason=decision.reason, now=now
        )
        return None
    if decision.verdict is alarms.RelayVerdict.DEFER_TRIP:
        until = decision.deferred_until
        if row.deferred_until is None or (until is not None and row.deferred_until != until):
            await record(
                ACTOR,
                "meter.trip_deferred",
                target_type="meter",
                target_id=meter.id,
                site_id=meter.site_id,
                reason=decision.reason,
                detail={"until": until.isoformat() if until else None},
                at=now,
            )
        return until or row.deferred_until or now
    return None
