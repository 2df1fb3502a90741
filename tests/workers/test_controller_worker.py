"""Controller against the simulated park over sockets: read-back, refusals, crash safety."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.ledger.check import check_ledger
from server.ledger.models import LedgerTransaction
from server.metering import service
from server.metering.models import CommandOp, CommandStatus, Meter, MeterBilling, MeterCommand
from server.metering.vocabulary import MeterKind, RelayState
from server.metering.vocabulary import MeterProtocol as P
from tests.workers.conftest import Park, credit
from workers.controller import Controller
from workers.registry import DriverRegistry


def pick(
    park: Park, *, billing: MeterBilling, protected: bool = False, proto: P = P.DLT645
) -> Meter:
    for address, meter in park.meters.items():
        sm = park.sim.park.meters[address]
        if (
            meter.protocol == proto
            and meter.billing == billing
            and sm.protected is protected
            and sm.kind is MeterKind.ELECTRICITY
        ):
            return meter
    raise LookupError(f"no {proto} {billing} protected={protected} meter in the park")


def controller(park: Park, **kw: object) -> Controller:
    return Controller(DriverRegistry(clock=park.now, timeout=0.3), clock=park.now, **kw)  # type: ignore[arg-type]


async def test_relay_commands_are_read_back_and_the_confirmed_state_is_shown(park: Park) -> None:
    meter = pick(park, billing=MeterBilling.PLATFORM)
    sm = park.sim.park.meters[meter.address]
    trip = await service.queue_command(
        meter.id, CommandOp.TRIP, {}, actor="staff:9", reason="欠费停电", now=park.now()
    )
    await controller(park).run_once()
    await trip.refresh_from_db()
    await meter.refresh_from_db()
    assert trip.status == CommandStatus.ACKED and trip.attempts == 1
    assert sm.relay is RelayState.OPEN
    assert (meter.relay_state, meter.trip_cause) == (RelayState.OPEN, "staff")
    close = await service.queue_command(
        meter.id, CommandOp.CLOSE, {}, actor="staff:9", reason="已缴费", now=park.now()
    )
    await controller(park).run_once()
    await close.refresh_from_db()
    await meter.refresh_from_db()
    assert close.status == CommandStatus.ACKED
    assert sm.relay is RelayState.CLOSED and meter.relay_state == RelayState.CLOSED
    logged = await OperationLog.filter(target_id=str(meter.id)).values_list("action", flat=True)
    assert logged == ["command.trip", "command.acked", "command.close", "command.acked"]


async def test_a_protected_meter_refuses_a_trip_and_stays_on(park: Park) -> None:
    meter = pick(park, billing=MeterBilling.PLATFORM, protected=True)
    cmd = await service.queue_command(
        meter.id, CommandOp.TRIP, {}, actor="staff:9", reason="试跳", now=park.now()
    )
    await controller(park).run_once()
    await cmd.refresh_from_db()
    assert cmd.status == CommandStatus.FAILED and "拒绝" in cmd.last_error
    assert park.sim.park.meters[meter.address].relay is RelayState.CLOSED


async def test_a_crash_between_sent_and_acked_never_recharges_twice(park: Park) -> None:
    meter = pick(park, billing=MeterBilling.METER)
    sm = park.sim.park.meters[meter.address]
    count0, money0 = sm.purchase_count, sm.remaining_fen
    key = await credit(meter.account_id, 5_000)
    for _ in range(2):  # a notification delivered twice
        await service.on_wallet_credited(
            meter.account_id, reason="微信充值", credit_key=key, now=park.now()
        )
    cmd = await MeterCommand.get(meter_id=meter.id, op=CommandOp.RECHARGE)
    assert cmd.params["amount_fen"] == 15_000  # the registration credit and this one

    reached = asyncio.Event()

    async def die_after_reply(_: MeterCommand) -> None:
        reached.set()
        await asyncio.Event().wait()  # hang here until the "process" is killed

    crashing = controller(park, replied=die_after_reply)
    run = asyncio.create_task(crashing.run_once())
    await asyncio.wait_for(reached.wait(), 10)
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    await cmd.refresh_from_db()
    assert cmd.status == CommandStatus.SENT
    assert sm.purchase_count == count0 + 1  # the meter has the money, we have no ack

    await controller(park).run_once()  # the restarted controller resolves it by reading
    await cmd.refresh_from_db()
    assert cmd.status == CommandStatus.ACKED and cmd.result["sent"] is False
    assert sm.purchase_count == count0 + 1
    assert sm.remaining_fen <= money0 + 15_000
    account = await Account.get(id=meter.account_id)
    assert account.balance_fen == 0
    assert await LedgerTransaction.filter(key=f"meter-recharge:{cmd.id}").count() == 1
    await meter.refresh_from_db()
    assert meter.purchase_count == count0 + 1
    assert await check_ledger() == []


async def test_a_meter_that_never_answers_ends_failed_or_expired(park: Park) -> None:
    meter = pick(park, billing=MeterBilling.PLATFORM)
    park.sim.park.meters[meter.address].online = False
    cmd = await service.queue_command(
        meter.id,
        CommandOp.TRIP,
        {},
        actor="staff:9",
        reason="试跳",
        ttl=timedelta(minutes=30),
        now=park.now(),
    )
    ctl = controller(park, backoff=timedelta(minutes=4))
    for _ in range(20):
        await ctl.run_once()
        await cmd.refresh_from_db()
        if cmd.status not in (CommandStatus.QUEUED, CommandStatus.SENT):
            break
        park.sim.park.clock.jump(timedelta(minutes=5))
    assert cmd.status in (CommandStatus.FAILED, CommandStatus.EXPIRED)
    assert cmd.attempts >= 2 and cmd.last_error
    await meter.refresh_from_db()
    assert meter.relay_state != RelayState.OPEN
