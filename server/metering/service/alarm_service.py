"""Alarm service: run the pure `alarms.evaluate` for accounts whose balance changed, store
what it says, and turn relay verdicts into meter commands.

Called after billing (the collector), after a credit (`on_wallet_credited`) and by the
scheduler's sweep (repeats, arrears reminders, deferred trips whose window has ended).
Accounts are handled in batches, one transaction each with the batch's account rows locked
(in id order, as billing locks them), so two workers evaluating the same account queue at
most one TRIP or CLOSE: a meter that already has an open relay command gets no new one.
Per batch the reads are one query per table (accounts, meters, alarm states, site rules, open
relay commands), the writes one insert of alarms, one upsert of the states that changed and
one operation-log write; only relay commands are queued one by one (they are rare).

Balance: `server.accounts.balance` (`Available.alarm_fen`), from the rows read here under
the account lock. Platform-billed meters follow the wallet's free money. Meter-billed meters
trip and close themselves on their own money register; an account with only those is
evaluated on all its money for alarms only and never gets relay commands (a recharge command
is what closes them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.accounts.balance import available
from server.accounts.models import BillingMode
from server.audit.service import Entry, record_many
from server.ledger.sql import Col, fetch, in_list, insert_rows, is_pg
from server.metering import alarms
from server.metering.forecast import DaysLeft, ForecastBasis
from server.metering.models import CommandOp, MeterBilling
from server.metering.service import commands
from server.metering.service.balance import pending_recharges, to_meter_money
from server.metering.service.config import effective_config, state_from_json, state_to_json
from server.metering.service.reading_store import as_datetime
from server.metering.vocabulary import RelayState
from server.notify.service.outbox import Event, enqueue

log = logging.getLogger(__name__)
ACTOR = "system:alarms"
BATCH = 5000
_VERDICT_OP = {alarms.RelayVerdict.TRIP: CommandOp.TRIP, alarms.RelayVerdict.CLOSE: CommandOp.CLOSE}


def forecast_from_rate(balance_fen: int, daily_use: str | None) -> DaysLeft | None:
    """Days left of `balance_fen` at the stored daily rate (`account_alarm_state.daily_use_fen`,
    refreshed daily by the scheduler); None without a rate (no history, or no use)."""
    if daily_use is None:
        return None
    daily = Decimal(daily_use)
    if daily <= 0:
        return None
    if balance_fen <= 0:
        return DaysLeft(ForecastBasis.EXHAUSTED, Decimal("0.0"), daily, 0)
    days = (Decimal(balance_fen) / daily).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    return DaysLeft(ForecastBasis.RECENT_USE, days, daily, 0)


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


@dataclass(frozen=True, slots=True)
class _Meter:
    id: int
    account_id: int
    site_id: int
    kind: str
    billing: str
    relay_state: str
    trip_cause: str | None
    protected: bool
    money_fen: int | None


@dataclass
class _Row:
    """An account's stored alarm state (defaults when it has no row yet)."""

    state: dict[str, Any] = field(default_factory=dict)
    override: dict[str, Any] = field(default_factory=dict)
    daily_use_fen: str | None = None
    deferred_until: datetime | None = None
    exists: bool = False


def _context(
    meter: _Meter, forecast: DaysLeft | None, postpaid: bool = False
) -> alarms.MeterContext:
    cause = alarms.TripCause(meter.trip_cause) if meter.trip_cause else None
    return alarms.MeterContext(
        relay=RelayState(meter.relay_state),
        trip_cause=cause,
        protected=meter.protected,
        forecast=forecast,
        postpaid=postpaid,
    )


@dataclass
class _Out:
    """What one batch writes, gathered while deciding."""

    now: datetime
    alarms: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[tuple[Any, ...]] = field(default_factory=list)
    relay: list[tuple[_Meter, alarms.RelayDecision]] = field(default_factory=list)
    log: list[Entry] = field(default_factory=list)
    pending: dict[int, int] = field(default_factory=dict)  # open recharges per meter
    messages: list[Event] = field(default_factory=list)  # for the notifier, same transaction
    balances: dict[int, int] = field(default_factory=dict)  # per account, as evaluated


async def evaluate_accounts(account_ids: Iterable[int], *, now: datetime) -> int:
    """Evaluate each account; returns how many alarms were raised."""
    ids = sorted(set(account_ids))
    raised = 0
    for i in range(0, len(ids), BATCH):
        async with in_transaction() as conn:
            raised += await _evaluate_batch(conn, ids[i : i + BATCH], now)
    return raised


async def _evaluate_batch(conn: BaseDBAsyncClient, ids: list[int], now: datetime) -> int:
    accounts = await _lock_accounts(conn, ids)
    meters = await _meters(conn, list(accounts))
    rows = await _rows(conn, list(meters))
    policies = await _policies(conn, {accounts[a]["site_id"] for a in meters})
    billed = [m.id for ms in meters.values() for m in ms if m.billing == MeterBilling.METER]
    out = _Out(now, pending=await pending_recharges(conn, billed))
    configs: dict[tuple[Any, ...], alarms.AlarmConfig] = {}
    for account_id, ms in meters.items():
        account = accounts[account_id]
        row = rows.get(account_id) or _Row()
        key = (account["site_id"], json.dumps(row.override, sort_keys=True), account["credit"])
        if key not in configs:
            configs[key] = effective_config(policies.get(key[0]), row.override, key[2])
        _decide(account_id, account, ms, row, configs[key], out)
    await _apply_relays(conn, out, rows)
    await _write(conn, out)
    return len(out.alarms)


def _decide(
    account_id: int,
    account: dict[str, Any],
    meters: list[_Meter],
    row: _Row,
    config: alarms.AlarmConfig,
    out: _Out,
) -> None:
    platform = [m for m in meters if m.billing == MeterBilling.PLATFORM.value]
    money = [to_meter_money(m.id, m.kind, m.billing, m.money_fen, out.pending) for m in meters]
    balance = available(int(account["balance_fen"]), money).alarm_fen
    forecast = forecast_from_rate(balance, row.daily_use_fen)
    if _quiet(balance, row, config, forecast, platform):
        return
    state = state_from_json(row.state)
    postpaid = account["billing_mode"] == BillingMode.POSTPAID.value
    decision = alarms.evaluate(
        balance, state, config, out.now, _context(meters[0], forecast, postpaid)
    )
    out.balances[account_id] = balance
    for alarm in decision.alarms:
        out.alarms.append(
            (account_id, alarm.kind.value, alarm.level, alarm.balance_fen, alarm.message, out.now)
        )
        kind = alarm.kind.value
        out.messages.append(
            Event(
                account_id,
                f"alarm.{kind}",
                f"alarm:{account_id}:{kind}:{alarm.level}:{out.now.isoformat()}",
                f"alarm.{kind}.{alarm.level}",
                {"message": alarm.message, "level": alarm.level},
                alarm.balance_fen,
            )
        )
        out.log.append(
            Entry(
                ACTOR,
                f"alarm.{alarm.kind.value}",
                "account",
                account_id,
                account["site_id"],
                alarm.message,
                {"level": alarm.level, "balance_fen": alarm.balance_fen},
                out.now,
            )
        )
    for meter in platform:
        verdict = alarms.evaluate(
            balance, state, config, out.now, _context(meter, forecast, postpaid)
        )
        if verdict.relay.verdict is not alarms.RelayVerdict.KEEP:
            out.relay.append((meter, verdict.relay))
    new_state = state_to_json(decision.state)
    if new_state != row.state or not row.exists:
        row.state = new_state
        out.states.append((account_id, row))


_QUIET_STATE = state_to_json(alarms.AlarmState())


def _quiet(
    balance: int,
    row: _Row,
    config: alarms.AlarmConfig,
    forecast: DaysLeft | None,
    platform: list[_Meter],
) -> bool:
    """Nothing to say or do, without running `evaluate`: no level active or near, no
    forecast near, nothing deferred, every relay closed. Most accounts, most of the time."""
    far = config.levels[0].threshold_fen + config.hysteresis_fen
    soon = (
        forecast is not None
        and config.forecast_days is not None
        and forecast.days is not None
        and forecast.days <= config.forecast_days + config.forecast_clear_days
    )
    return (
        row.exists
        and row.state == _QUIET_STATE
        and row.deferred_until is None
        and balance > max(far, 0)
        and not soon
        and all(m.relay_state == RelayState.CLOSED.value for m in platform)
    )


async def _apply_relays(conn: BaseDBAsyncClient, out: _Out, rows: dict[int, _Row]) -> None:
    """Queue TRIP/CLOSE (unless a relay command is already open); log a new deferral once."""
    busy = await _open_relay_meters(conn, [m.id for m, d in out.relay if d.verdict in _VERDICT_OP])
    deferred: dict[int, datetime | None] = {}
    for meter, decision in out.relay:
        op = _VERDICT_OP.get(decision.verdict)
        if op is not None:
            deferred.setdefault(meter.account_id, None)
            if meter.id in busy:
                continue
            params = {"cause": alarms.TripCause.PLATFORM.value} if op is CommandOp.TRIP else {}
            await commands.queue_command(
                meter.id, op, params, actor=ACTOR, reason=decision.reason, now=out.now
            )
            what = "trip" if op is CommandOp.TRIP else "close"
            out.messages.append(
                Event(
                    meter.account_id,
                    f"alarm.{what}",
                    f"relay:{meter.id}:{what}:{out.now.isoformat()}",
                    f"alarm.{what}",
                    {"message": decision.reason},
                    out.balances.get(meter.account_id, 0),
                )
            )
        elif decision.verdict is alarms.RelayVerdict.DEFER_TRIP:
            row = rows.get(meter.account_id) or _Row()
            until = decision.deferred_until
            if row.deferred_until is None or (until is not None and row.deferred_until != until):
                out.log.append(
                    Entry(
                        ACTOR,
                        "meter.trip_deferred",
                        "meter",
                        meter.id,
                        meter.site_id,
                        decision.reason,
                        {"until": until.isoformat() if until else None},
                        out.now,
                    )
                )
            deferred[meter.account_id] = until or row.deferred_until or out.now
    _merge_deferrals(out, rows, deferred)


def _merge_deferrals(
    out: _Out, rows: dict[int, _Row], deferred: dict[int, datetime | None]
) -> None:
    """An account's `deferred_until` is its last meter's deferral (None when none deferred)."""
    pending = {a for a, _ in out.states}
    for account_id, row in list(rows.items()) + [(a, r) for a, r in out.states if a not in rows]:
        until = deferred.get(account_id)
        if until != row.deferred_until:
            row.deferred_until = until
            if account_id not in pending:
                out.states.append((account_id, row))
                pending.add(account_id)


async def _write(conn: BaseDBAsyncClient, out: _Out) -> None:
    cols = [Col("account_id", "int"), Col("kind", "text"), Col("level", "int"),
            Col("balance_fen", "bigint"), Col("message", "text"),
            Col("created_at", "timestamptz")]  # fmt: skip
    await insert_rows(conn, "alarm_record", cols, out.alarms)
    stamp = datetime.now(UTC)
    states = [
        (a, json.dumps(r.state, separators=(",", ":")),
         json.dumps(r.override, separators=(",", ":")), r.daily_use_fen, r.deferred_until, stamp)
        for a, r in sorted(out.states, key=lambda x: x[0])
    ]  # fmt: skip
    cols = [Col("account_id", "int"), Col("state", "text", "jsonb"),
            Col("override", "text", "jsonb"), Col("daily_use_fen", "text"),
            Col("deferred_until", "timestamptz"), Col("updated_at", "timestamptz")]  # fmt: skip
    await insert_rows(
        conn, "account_alarm_state", cols, states,
        suffix="ON CONFLICT (account_id) DO UPDATE SET state = excluded.state,"
        " deferred_until = excluded.deferred_until, updated_at = excluded.updated_at",
    )  # fmt: skip
    await enqueue(conn, out.messages, now=out.now)
    await record_many(out.log)  # last: the log's chain lock is held only until commit


# -- batch reads ------------------------------------------------------------------------------
async def _lock_accounts(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, dict[str, Any]]:
    where, params = in_list(conn, "id", ids, 1, "int")
    lock = " FOR UPDATE" if is_pg(conn) else ""
    rows = await fetch(
        conn,
        "SELECT id, site_id, balance_fen, credit_limit_fen AS credit, billing_mode FROM account"
        f" WHERE {where} ORDER BY id{lock}",
        params,
    )
    return {r["id"]: r for r in rows}


async def _meters(conn: BaseDBAsyncClient, account_ids: list[int]) -> dict[int, list[_Meter]]:
    if not account_ids:
        return {}
    where, params = in_list(conn, "account_id", account_ids, 1, "int")
    rows = await fetch(
        conn,
        "SELECT id, account_id, site_id, kind, billing, relay_state, trip_cause, protected,"
        f" money_fen FROM meter WHERE status = 'active' AND {where} ORDER BY id",
        params,
    )
    out: dict[int, list[_Meter]] = {}
    for r in rows:
        out.setdefault(r["account_id"], []).append(
            _Meter(
                r["id"],
                r["account_id"],
                r["site_id"],
                r["kind"],
                r["billing"],
                r["relay_state"],
                r["trip_cause"],
                bool(r["protected"]),
                r["money_fen"],
            )
        )
    return out


async def _rows(conn: BaseDBAsyncClient, account_ids: list[int]) -> dict[int, _Row]:
    if not account_ids:
        return {}
    where, params = in_list(conn, "account_id", account_ids, 1, "int")
    rows = await fetch(
        conn,
        "SELECT account_id, state, override, daily_use_fen, deferred_until"
        f" FROM account_alarm_state WHERE {where}",
        params,
    )
    return {
        r["account_id"]: _Row(
            _json(r["state"]) or {},
            _json(r["override"]) or {},
            r["daily_use_fen"],
            as_datetime(r["deferred_until"]) if r["deferred_until"] else None,
            True,
        )
        for r in rows
    }


async def _policies(conn: BaseDBAsyncClient, site_ids: set[int]) -> dict[int, dict[str, Any]]:
    if not site_ids:
        return {}
    where, params = in_list(conn, "site_id", sorted(site_ids), 1, "int")
    rows = await fetch(conn, f"SELECT site_id, alarm FROM metering_policy WHERE {where}", params)
    return {r["site_id"]: _json(r["alarm"]) for r in rows}


async def _open_relay_meters(conn: BaseDBAsyncClient, meter_ids: list[int]) -> set[int]:
    if not meter_ids:
        return set()
    where, params = in_list(conn, "meter_id", meter_ids, 1, "int")
    ops = ", ".join(f"'{op.value}'" for op in sorted(commands.RELAY_OPS))
    statuses = ", ".join(f"'{s.value}'" for s in commands.OPEN)
    rows = await fetch(
        conn,
        f"SELECT DISTINCT meter_id FROM meter_command WHERE {where}"
        f" AND status IN ({statuses}) AND op IN ({ops})",
        params,
    )
    return {r["meter_id"] for r in rows}
