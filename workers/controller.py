"""Controller worker: executes meter commands, one at a time per bus, crash-safe.

Why a database-polling loop and not a task queue: the command row *is* the job. A broker
message can be lost or delivered twice and would need reconciling with the row anyway; a loop
over `meter_command` rows (indexed on open commands) is durable by construction, survives a
restart of anything, and needs nothing in embedded mode. Latency is the poll interval
(default 0.5 s), and nothing when a bus has just finished its work: that starts the next
pass at once. Any number of controllers may run: on PostgreSQL each bus with due
commands is owned by one of them at a time (`workers.leases`, advisory locks held while its
commands run), so every command is executed by one controller.

Each pass takes the oldest open command of every meter (`due_commands`), groups them by bus
(`workers.registry.bus_key`) and runs one task per idle bus with all of that bus's due
commands, in id order: at most one command in flight per meter, every bus busy at once. A command:

    queued --(mark sent, attempts+1)--> sent --(meter confirms)--> acked
                                         |--(meter says no)------> failed
                                         |--(no answer)----------> queued (backoff) / failed
    queued past expires_at -------------------------------------> expired

Crash safety. A `sent` row nobody is working on (the process died mid-command) is resolved
by reading the meter before anything is sent again: a relay command is acked if the relay is
already where it should be; a recharge compares the meter's purchase count with the count
fixed at its first send — equal: it was applied, ack it; one less: not applied, send it
again (same count, so a meter that did apply it refuses or repeats, never adds twice);
anything else: failed, for a person. The purchase count guards the meter; the command id
guards us (the wallet debit is keyed `meter-recharge:<command id>`).

After every relay or recharge command the meter's state is read back, and only what the meter
confirmed is stored on the meter row (relay state, trip cause, money register).

`run(settings, stop)` is the worker entry point (`shuidian worker controller`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from server.billing.pipeline import process_readings
from server.core.settings import Settings
from server.ledger import service as ledger
from server.ledger.posting import ChargeType
from server.metering.models import CommandOp, CommandStatus, Meter, MeterCommand, ReadingSource
from server.metering.service import batches
from server.metering.service import commands as cmds
from server.metering.service.readings import IncomingReading
from workers.leases import LocalLeases, PgLeases, leases_for
from workers.meters.base import (
    Instant,
    MeterDriver,
    MeterKind,
    MeterRejected,
    MeterStatus,
    MeterUnreachable,
    MoneyRegister,
    RelayAction,
    RelayState,
)
from workers.registry import DriverRegistry, NoRoute, bus_key, clock_from_spec
from workers.status import StatusFile

log = logging.getLogger(__name__)
ACTOR = "system:controller"
Hook = Callable[[MeterCommand], Awaitable[None]]

_TARGET = {
    CommandOp.TRIP: RelayState.OPEN,
    CommandOp.CLOSE: RelayState.CLOSED,
    CommandOp.PROTECT_ON: RelayState.CLOSED,
}


class _Withdrawn(Exception):
    """The command was finished by someone else (cancelled) before it was sent."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _noop(cmd: MeterCommand) -> None:
    return None


class Controller:
    """Executes due commands. `replied` is a test seam: awaited after the meter answered and
    before the answer is stored (a crash there is the hard case)."""

    def __init__(
        self,
        registry: DriverRegistry,
        *,
        clock: Callable[[], datetime] = _utc_now,
        backoff: timedelta = timedelta(seconds=30),
        backoff_cap: timedelta = timedelta(minutes=30),
        replied: Hook = _noop,
        leases: LocalLeases | PgLeases | None = None,
    ) -> None:
        self.registry, self.clock = registry, clock
        self.leases = leases or LocalLeases()  # the buses this controller may command
        self.status: StatusFile | None = None  # rewritten after every pass
        self.backoff, self.backoff_cap, self.replied = backoff, backoff_cap, replied
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._inflight: set[int] = set()
        self._freed = asyncio.Event()  # a bus finished its work: pass again at once

    # -- scheduling ---------------------------------------------------------------------------
    async def dispatch(self) -> int:
        """Start a task for every idle bus that has due commands; returns how many started."""
        now = self.clock()
        await batches.release_due(now)  # a batch whose time has come queues its commands
        await batches.settle(now)
        due = await cmds.due_commands(now, self._inflight)
        groups: dict[str, list[MeterCommand]] = {}
        for cmd in due:
            groups.setdefault(bus_key(cmd.meter), []).append(cmd)
        mine = await self.leases.claim(groups, busy=self._busy)  # shared with the others
        started = 0
        for bus, work in groups.items():
            if bus in self._busy or bus not in mine:
                continue
            self._inflight.update(c.id for c in work)
            self._busy[bus] = asyncio.create_task(self._run_bus(bus, work), name=f"bus-{bus}")
            started += 1
        return started

    async def run_once(self) -> None:
        """Dispatch and wait until every bus task has finished (tests, one-shot runs)."""
        await self.dispatch()
        while self._busy:
            await asyncio.gather(*list(self._busy.values()), return_exceptions=True)

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.dispatch()
                except Exception:
                    log.exception("controller pass failed")
                if self.status is not None:
                    self.status.write(
                        buses_busy=sorted(self._busy), buses_held=sorted(self.leases.held())
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._until_freed(stop), interval)
        finally:
            for task in self._busy.values():
                task.cancel()
            await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def _until_freed(self, stop: asyncio.Event) -> None:
        """Wait until a bus is free again or `stop` is set."""
        self._freed.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._freed.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _run_bus(self, bus: str, work: list[MeterCommand]) -> None:
        try:
            for cmd in work:
                try:
                    await self.execute(cmd)
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception:
                    log.exception("command %s failed unexpectedly", cmd.id)
                finally:
                    self._inflight.discard(cmd.id)
        finally:
            self._busy.pop(bus, None)
            self._freed.set()

    # -- one command ----------------------------------------------------------------------------
    async def execute(self, cmd: MeterCommand) -> None:
        now = self.clock()
        if cmd.status == CommandStatus.QUEUED and now >= cmd.expires_at:
            await cmds.transition(cmd, CommandStatus.EXPIRED, now=now, error="命令已过期")
            return
        cmd.attempts += 1  # every try counts, a resolving read as much as a send
        if not await MeterCommand.filter(id=cmd.id, status__in=cmds.OPEN).update(
            attempts=cmd.attempts
        ):
            return  # finished meanwhile: a batch cancelled it before it was sent
        try:
            driver = self.registry.driver(cmd.meter)
            op = CommandOp(cmd.op)
            if op is CommandOp.RECHARGE:
                await self._recharge(cmd, driver)
            elif op is CommandOp.READ:
                await self._read(cmd, driver)
            elif op in cmds.RELAY_OPS:
                await self._relay(cmd, op, driver)
            else:
                await self._write(cmd, op, driver)
        except _Withdrawn:
            return
        except MeterRejected as exc:
            await cmds.transition(
                cmd, CommandStatus.FAILED, now=self.clock(), error=f"表计拒绝: {exc}"
            )
        except (MeterUnreachable, NoRoute) as exc:
            await self._unreachable(cmd, str(exc))

    async def _mark_sent(self, cmd: MeterCommand, params: dict[str, Any] | None = None) -> None:
        if not await cmds.mark_sent(cmd, self.clock(), params):
            raise _Withdrawn(cmd.id)  # cancelled (a batch's cancel) since it was picked

    async def _unreachable(self, cmd: MeterCommand, error: str) -> None:
        now = self.clock()
        delay = min(self.backoff * (2 ** max(cmd.attempts - 1, 0)), self.backoff_cap)
        if cmd.attempts >= cmd.max_attempts:
            await cmds.transition(cmd, CommandStatus.FAILED, now=now, error=f"多次无应答: {error}")
        elif now + delay >= cmd.expires_at:
            await cmds.transition(
                cmd, CommandStatus.EXPIRED, now=now, error=f"过期前未送达: {error}"
            )
        else:
            await cmds.transition(
                cmd, CommandStatus.QUEUED, now=now, error=error, retry_at=now + delay
            )

    async def _relay(self, cmd: MeterCommand, op: CommandOp, driver: MeterDriver) -> None:
        target = _TARGET.get(op)
        if target is not None and (cmd.attempts > 1 or cmd.status == CommandStatus.SENT):
            status = await driver.read_status()  # resolve an earlier attempt first
            if status.relay is target:
                await self._confirm_relay(cmd, op, status, resent=False)
                return
        await self._mark_sent(cmd)
        status = await driver.relay(RelayAction(op.value))
        await self.replied(cmd)
        await self._confirm_relay(cmd, op, status, resent=True)

    async def _confirm_relay(
        self, cmd: MeterCommand, op: CommandOp, status: MeterStatus, *, resent: bool
    ) -> None:
        now = self.clock()
        target = _TARGET.get(op)
        async with in_transaction():
            meter = await Meter.filter(id=cmd.meter_id).select_for_update().first()
            assert meter is not None
            meter.relay_state, meter.protected = status.relay, status.protected
            meter.relay_confirmed_at = now
            if status.relay is RelayState.OPEN and op is CommandOp.TRIP:
                meter.trip_cause = cmd.params.get("cause") or (
                    "staff" if cmd.actor.startswith("staff") else "platform"
                )
            elif status.relay is RelayState.CLOSED:
                meter.trip_cause = None
            await meter.save(
                update_fields=["relay_state", "protected", "relay_confirmed_at", "trip_cause"]
            )
            result = {"relay": status.relay.value, "protected": status.protected, "sent": resent}
            if target is None or status.relay is target:
                await cmds.transition(cmd, CommandStatus.ACKED, now=now, result=result)
            else:
                error = f"回读继电器状态为 {status.relay.value}，与命令不符"
                await cmds.transition(
                    cmd, CommandStatus.FAILED, now=now, error=error, result=result
                )

    async def _recharge(self, cmd: MeterCommand, driver: MeterDriver) -> None:
        amount = int(cmd.params["amount_fen"])
        money = await driver.read_money()
        count = cmd.params.get("count")
        if count is None:
            count = money.purchase_count + 1
            await self._mark_sent(cmd, {**cmd.params, "count": count})
        elif money.purchase_count == count:
            await self._recharge_acked(cmd, money, resent=False)  # applied before a crash
            return
        elif money.purchase_count == count - 1:
            await self._mark_sent(cmd)
        else:
            error = f"购电次数不符: 表内 {money.purchase_count}, 命令 {count}，需人工核对"
            await cmds.transition(cmd, CommandStatus.FAILED, now=self.clock(), error=error)
            return
        result = await driver.write_recharge(amount, count)
        await self.replied(cmd)
        await self._recharge_acked(cmd, result, resent=True)

    async def _recharge_acked(
        self, cmd: MeterCommand, money: MoneyRegister, *, resent: bool
    ) -> None:
        now = self.clock()
        amount = int(cmd.params["amount_fen"])
        async with in_transaction():
            meter = await Meter.filter(id=cmd.meter_id).select_for_update().first()
            assert meter is not None
            meter.purchase_count, meter.money_fen = money.purchase_count, money.remaining_fen
            meter.money_read_at = now
            await meter.save(update_fields=["purchase_count", "money_fen", "money_read_at"])
            if meter.account_id is not None:
                kind = ChargeType.WATER if meter.kind == MeterKind.WATER else ChargeType.ELECTRICITY
                await ledger.charge(
                    meter.account_id,
                    kind,
                    amount,
                    key=f"meter-recharge:{cmd.id}",
                    actor=ACTOR,
                    memo=f"表端充值 {meter.address} 第 {money.purchase_count} 次",
                    allow_arrears=True,  # the meter already holds the money
                )
            result = {
                "remaining_fen": money.remaining_fen,
                "purchase_count": money.purchase_count,
                "sent": resent,
            }
            await cmds.transition(cmd, CommandStatus.ACKED, now=now, result=result)

    async def _read(self, cmd: MeterCommand, driver: MeterDriver) -> None:
        await self._mark_sent(cmd)
        snap = await driver.read_snapshot()
        item = IncomingReading(
            meter_id=cmd.meter_id,
            reading=snap.reading,
            source=ReadingSource.READ_NOW,
            relay=snap.status.relay,
            protected=snap.status.protected,
            money=snap.money,
            instant=snap.instant or Instant(),  # 点抄 reads everything: refresh meter_live
        )
        await process_readings([item], now=self.clock())
        result = {"total": str(snap.reading.total), "relay": snap.status.relay.value}
        await cmds.transition(cmd, CommandStatus.ACKED, now=self.clock(), result=result)

    async def _write(self, cmd: MeterCommand, op: CommandOp, driver: MeterDriver) -> None:
        await self._mark_sent(cmd)
        if op is CommandOp.PRICES:
            from decimal import Decimal

            prices = {int(k): Decimal(str(v)) for k, v in cmd.params["prices"].items()}
            await driver.write_prices(prices)
        else:
            await driver.write_alarm_amounts(
                int(cmd.params["alarm_1_fen"]), int(cmd.params["alarm_2_fen"])
            )
        await cmds.transition(cmd, CommandStatus.ACKED, now=self.clock(), result={})


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Worker entry point: connect, then execute commands until `stop` is set."""
    from server.core.db import close_db, init_db
    from workers.mqtt import gateway_link_from

    await init_db(settings)
    try:
        async with gateway_link_from(settings) as client:
            registry = DriverRegistry(
                clock=clock_from_spec(settings.sim_clock),
                gateway_client=client,
                timeout=settings.meter_timeout_s,
            )
            controller = Controller(registry, leases=leases_for(settings.db_url, "controller"))
            controller.status = StatusFile.for_worker(
                settings.data_dir, "controller", settings.worker_name
            )
            try:
                await controller.run(stop)
            finally:
                controller.status.remove()
                await controller.leases.close()
                await registry.close()
    finally:
        await close_db()
