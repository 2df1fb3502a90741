"""Meter commands: a durable row first (queued → sent → acked / failed / expired), then work
for the controller (workers/controller.py).

Every transition is recorded in the operation log with its actor and reason. A command may
carry an idempotency `key` (unique): queueing the same key again returns the first row, so a
retried caller (a payment notification delivered twice) never queues two recharges.

Ordering: the controller runs each meter's commands strictly in id order, one at a time
(`due_commands` returns at most the oldest open command per meter), so a recharge's purchase
count, fixed at its first send, can never be overtaken by a later recharge.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import NotFound, ValidationFailed
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


async def due_commands(now: datetime, exclude: set[int], limit: int = 500) -> list[MeterCommand]:
    """The oldest open command of each meter, if it is due (sent ones always are: a sent
    command nobody is working on was interrupted and must be resolved)."""
    open_rows = (
        await MeterCommand.filter(status__in=OPEN)
        .order_by("id")
        .limit(limit * 4)
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
    if status in TERMINAL or log_action:
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
