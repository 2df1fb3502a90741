"""Meter commands: a durable row first (queued → sent → acked / failed / expired), then work
for the controller (workers/controller.py).

Every transition is recorded in the operation log with its actor and reason. A command may
carry an idempotency `key` (unique): queueing the same key again returns the first row, so a
retried caller (a payment notification delivered twice) never queues two recharges.

A batch operation's commands (`batch_id` set, `queue_many`) are one staff action: the log
has the batch's entries (queued, released, done with its outcome and failures), not an entry
per command and transition — each would take the log's chain lock, and 10,000 of them in a
row made every bus wait on the lock (bench/batch.py). The command rows keep every result.

Ordering: the controller runs each meter's commands strictly in id order, one at a time
(`due_commands` returns at most the oldest open command per meter), so a recharge's purchase
count, fixed at its first send, can never be overtaken by a later recharge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.audit.service import Entry, record, record_many
from server.core.errors import NotFound, ValidationFailed
from server.ledger.sql import Col, fetch, in_list, insert_rows
from server.metering.models import (
    TERMINAL,
    CommandOp,
    CommandStatus,
    Meter,
    MeterCommand,
    MeterStatus,
)

DEFAULT_TTL = timedelta(hours=2)
RELAY_OPS = frozenset(
    {
        CommandOp.TRIP,
        CommandOp.CLOSE,
        CommandOp.CLOSE_ALLOWED,
        CommandOp.PROTECT_ON,
        CommandOp.PROTECT_OFF,
    }
)
OPEN = (CommandStatus.QUEUED, CommandStatus.SENT)


def _now() -> datetime:
    return datetime.now(UTC)


def _check_params(op: CommandOp, params: Mapping[str, Any]) -> None:
    if op is CommandOp.RECHARGE:
        amount = params.get("amount_fen")
        if not isinstance(amount, int) or amount <= 0:
            raise ValidationFailed("充值金额必须为正整数（分）", amount_fen=amount)
    if op is CommandOp.ALARM_AMOUNTS and not {"alarm_1_fen", "alarm_2_fen"} <= set(params):
        raise ValidationFailed("报警金额命令需要 alarm_1_fen 和 alarm_2_fen")
    if op is CommandOp.PRICES and not params.get("prices"):
        raise ValidationFailed("电价命令需要 prices")


async def queue_command(
    meter_id: int,
    op: CommandOp | str,
    params: Mapping[str, Any] | None = None,
    *,
    actor: str,
    reason: str,
    batch_id: str | None = None,
    key: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> MeterCommand:
    """Store a command for the controller; with `key`, a repeat returns the first row."""
    op = CommandOp(op)
    params = dict(params or {})
    _check_params(op, params)
    now = now or _now()
    if key is not None:
        existing = await MeterCommand.get_or_none(key=key)
        if existing is not None:
            return existing
    meter = await Meter.get_or_none(id=meter_id)
    if meter is None or meter.status != MeterStatus.ACTIVE:
        raise NotFound("电表不存在或已拆除", meter_id=meter_id)
    try:
        async with in_transaction():
            cmd = await MeterCommand.create(
                meter_id=meter_id,
                op=op,
                params=params,
                key=key,
                actor=actor,
                reason=reason,
                batch_id=batch_id,
                next_attempt_at=now,
                expires_at=now + ttl,
            )
            await record(
                actor,
                f"command.{op.value}",
                target_type="meter",
                target_id=meter_id,
                site_id=meter.site_id,
                reason=reason,
                detail={"command_id": cmd.id, "params": params, "batch_id": batch_id},
                at=now,
            )
    except IntegrityError:
        if key is None:
            raise
        return await MeterCommand.get(key=key)  # a concurrent caller queued it first
    return cmd


@dataclass(frozen=True, slots=True)
class Spec:
    """One command of `queue_many`."""

    meter_id: int
    op: CommandOp
    params: Mapping[str, Any] = field(default_factory=dict)


_QUEUE_COLS = [
    Col("meter_id", "int"), Col("op", "text"), Col("params", "text", "jsonb"),
    Col("status", "text"), Col("actor", "text"), Col("reason", "text"),
    Col("batch_id", "text"), Col("attempts", "int"), Col("max_attempts", "int"),
    Col("last_error", "text"), Col("result", "text", "jsonb"), Col("created_at", "timestamptz"),
    Col("next_attempt_at", "timestamptz"), Col("expires_at", "timestamptz"),
]  # fmt: skip


async def queue_many(
    specs: Sequence[Spec],
    *,
    actor: str,
    reason: str,
    batch_id: str,
    log: Entry,
    conn: BaseDBAsyncClient | None = None,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> dict[int, int]:
    """Store many commands (at most one per meter) in one statement for a batch operation;
    {meter id: command id}. The meters must be active (the caller selected them so). The
    operation log gets the one entry `log` (the batch names its meters), not one per
    command: a 10,000-meter batch is one staff action. Written on `conn` when given."""
    if not specs:
        return {}
    for spec in specs:
        _check_params(CommandOp(spec.op), spec.params)
    if len({s.meter_id for s in specs}) != len(specs):
        raise ValidationFailed("同一批命令中一块表只能有一条命令")
    now = (now or _now()).astimezone(UTC)  # SQLite compares the stored text
    rows = [
        (
            s.meter_id, CommandOp(s.op).value, json.dumps(dict(s.params), ensure_ascii=False),
            CommandStatus.QUEUED.value, actor, reason[:300], batch_id, 0, 5, "", "{}", now,
            now, now + ttl,
        )
        for s in specs
    ]  # fmt: skip

    async def write(c: BaseDBAsyncClient) -> dict[int, int]:
        out = await insert_rows(
            c, "meter_command", _QUEUE_COLS, rows, suffix="RETURNING id, meter_id"
        )
        await record_many([log], conn=c)
        return {int(r["meter_id"]): int(r["id"]) for r in out}

    if conn is not None:
        return await write(conn)
    async with in_transaction() as own:
        return await write(own)


async def cancel_queued(
    ids: Sequence[int], *, error: str, now: datetime, conn: BaseDBAsyncClient | None = None
) -> list[int]:
    """Fail the commands of `ids` that are still queued (never sent) with `error`; the ids
    it changed. One conditional statement, so a command the controller marks sent at the
    same moment is either cancelled or sent, never both (its `mark_sent` is conditional)."""
    if not ids:
        return []
    conn = conn or connections.get("default")
    where, params = in_list(conn, "id", list(ids), 4, "bigint")
    rows = await fetch(
        conn,
        "UPDATE meter_command SET status = $1, last_error = $2, finished_at = $3"
        f" WHERE {where} AND status = 'queued' AND sent_at IS NULL RETURNING id",
        [CommandStatus.FAILED.value, error[:500], now.astimezone(UTC), *params],
    )
    return [int(r["id"]) for r in rows]


async def mark_sent(cmd: MeterCommand, at: datetime, params: Mapping[str, Any] | None) -> bool:
    """queued/sent → sent, unless the row was finished meanwhile (cancelled by a batch);
    False then, and the command must not be sent."""
    values: dict[str, Any] = {"status": CommandStatus.SENT, "sent_at": at}
    if params is not None:
        values["params"] = dict(params)
    changed = await MeterCommand.filter(id=cmd.id, status__in=OPEN).update(**values)
    if not changed:
        return False
    cmd.status, cmd.sent_at = CommandStatus.SENT, at
    if params is not None:
        cmd.params = dict(params)
    return True


async def due_commands(now: datetime, exclude: set[int], limit: int = 20_000) -> list[MeterCommand]:
    """The oldest open command of each meter, if it is due (sent ones always are: a sent
    command nobody is working on was interrupted and must be resolved); at most `limit`,
    enough for the largest batch (a cap of 500 left most buses of a 10,000-meter batch idle)."""
    open_rows = (
        await MeterCommand.filter(status__in=OPEN)
        .order_by("id")
        .limit(limit * 2)
        .only("id", "meter_id", "status", "next_attempt_at")
    )
    first: dict[int, MeterCommand] = {}
    for row in open_rows:
        first.setdefault(row.meter_id, row)
    ids = [
        c.id
        for c in first.values()
        if c.id not in exclude and (c.status == CommandStatus.SENT or c.next_attempt_at <= now)
    ][:limit]
    if not ids:
        return []
    return await MeterCommand.filter(id__in=ids).order_by("id").prefetch_related("meter__gateway")


async def transition(
    cmd: MeterCommand,
    status: CommandStatus,
    *,
    now: datetime,
    error: str = "",
    result: Mapping[str, Any] | None = None,
    retry_at: datetime | None = None,
    actor: str = "system:controller",
    log_action: str | None = None,
) -> None:
    """Move `cmd` to `status` and log it; terminal states stamp `finished_at`."""
    cmd.status = status
    if error:
        cmd.last_error = error[:500]
    if result is not None:
        cmd.result = dict(result)
    if retry_at is not None:
        cmd.next_attempt_at = retry_at
    if status in TERMINAL:
        cmd.finished_at = now
    await cmd.save()
    if (status in TERMINAL and not cmd.batch_id) or log_action:  # a batch logs its outcome
        await record(
            actor,
            log_action or f"command.{status.value}",
            target_type="meter",
            target_id=cmd.meter_id,
            site_id=await _site_of(cmd.meter_id),
            reason=error or cmd.reason,
            detail={"command_id": cmd.id, "op": cmd.op.value, "result": cmd.result},
            at=now,
        )


async def _site_of(meter_id: int) -> int | None:
    row = await Meter.filter(id=meter_id).values_list("site_id", flat=True)
    return row[0] if row else None


async def fail_queued(meter_id: int, at: datetime, error: str) -> None:
    """Commands still queued for a meter taken out of service (换表, 拆除) can never run."""
    for cmd in await MeterCommand.filter(meter_id=meter_id, status=CommandStatus.QUEUED):
        await transition(cmd, CommandStatus.FAILED, now=at, error=error)
