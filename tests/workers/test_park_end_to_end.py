"""A simulated park run through collector, billing, alarms and controller over real sockets
(DL/T 645, Modbus TCP / RTU, CJ/T 188, MQTT gateways on Mosquitto) and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.ledger import service as ledger
from server.ledger.check import check_ledger
from server.ledger.posting import ChargeType
from server.metering import service
from server.metering.models import AlarmRecord, CommandOp, Meter, MeterBilling, MeterCommand
from server.metering.vocabulary import MeterKind, RelayState
from server.metering.vocabulary import MeterProtocol as P
from tests.workers.conftest import Park, credit, register
from tests.workers.helpers import Workers, assert_books_close, platform_meters
from workers.sim.run import Simulation


def biggest_unprotected(park: Park) -> Meter:
    candidates = [
        m
        for a, m in park.meters.items()
        if m.billing == MeterBilling.PLATFORM
        and not m.protected
        and m.kind == MeterKind.ELECTRICITY
        and m.protocol == P.DLT645
    ]
    return max(candidates, key=lambda m: m.rated_kw)


async def test_balances_fall_alarms_fire_once_relay_trips_at_zero_and_recharge_closes(
    db: None, sim: Simulation
) -> None:
    park = await register(sim, price="2.00")
    target = biggest_unprotected(park)
    sim_target = park.sim.park.meters[target.address]
    # Bring the target down to 60 元 so it crosses 50 / 20 / 0 within the working day.
    await ledger.charge(
        target.account_id, ChargeType.SERVICE_FEE, 4_000, key="test-fee", actor="staff:1"
    )
    async with Workers(park) as w:
        await w.step(0)  # baselines
        for _ in range(36):  # 10:00 → 19:00 in 15-minute rounds
            await w.step(15)
            if sim_target.relay is RelayState.OPEN:
                break
        assert sim_target.relay is RelayState.OPEN
        account = await Account.get(id=target.account_id)
        assert account.balance_fen <= 0
        levels = await AlarmRecord.filter(account_id=account.id, kind="balance").values_list(
            "level", flat=True
        )
        assert sorted(levels) == [1, 2, 3]
        trips = await MeterCommand.filter(meter_id=target.id, op=CommandOp.TRIP)
        assert len(trips) == 1 and trips[0].actor == "system:alarms"

        key = await credit(account.id, 10_000)
        await service.on_wallet_credited(
            account.id, reason="微信充值", credit_key=key, now=park.now()
        )
        await w.controller.run_once()
        assert sim_target.relay is RelayState.CLOSED
        await w.step(15)  # one more round: everything read back and billed

    for meter in await platform_meters(park):
        if meter.protected:  # 保电: never tripped, whatever the balance
            assert park.sim.park.meters[meter.address].relay is RelayState.CLOSED
            assert not await MeterCommand.filter(meter_id=meter.id, op=CommandOp.TRIP).exists()
    await assert_books_close(park)
    assert await check_ledger() == []


async def test_nothing_trips_inside_a_no_cut_window(db: None, mqtt_broker: tuple[str, int]) -> None:
    from datetime import datetime

    from tests.workers.conftest import SHANGHAI, make_config, register
    from workers.sim.run import Simulation

    # Saturday night: weekend and night window both forbid cutting.
    sim = Simulation(
        make_config(10, mqtt_broker, start=datetime(2026, 3, 7, 21, 0, tzinfo=SHANGHAI))
    )
    await sim.start()
    try:
        park = await register(sim, balance_fen=100)  # 1 元: every account runs dry at once
        async with Workers(park) as w:
            for _ in range(6):
                await w.step(30)
        assert not await MeterCommand.filter(op=CommandOp.TRIP).exists()
        deferred = await OperationLog.filter(action="meter.trip_deferred").count()
        assert deferred >= 1
        for meter in await platform_meters(park):
            assert park.sim.park.meters[meter.address].relay is RelayState.CLOSED
        await assert_books_close(park)
    finally:
        await sim.stop()


async def test_a_gateway_link_down_for_a_week_replays_without_gaps_or_double_counts(
    park: Park,
) -> None:
    gw = park.sim.gateways[0]
    async with Workers(park) as w:
        await w.step(0)
        await gw.set_link(False)
        for _ in range(7 * 4):  # a week in 6-hour rounds; the gateway buffers
            park.sim.park.clock.jump(timedelta(hours=6))
            await gw.collect()
            await w.collector.sweep_silent(timedelta(hours=1))
        silent = await Meter.filter(gateway__code=gw.gw_id).values_list("online", flat=True)
        assert not any(silent)  # offline after missed reports
        expected = w.collector.received + sum(len(c) for _, c in gw.buffer)
        gw.duplicates = gw.reorder = True  # the replay arrives twice and shuffled
        await gw.set_link(True)
        from tests.workers.helpers import until

        await until(lambda: w.collector.received >= expected)
        await w.collector.flush()
        await w.step(15)
    online = await Meter.filter(gateway__code=gw.gw_id).values_list("online", flat=True)
    assert all(online)
    ids = await Meter.filter(gateway__code=gw.gw_id).values_list("id", flat=True)
    offline_logs = await OperationLog.filter(
        action="meter.offline", target_id__in=[str(i) for i in ids]
    ).count()
    assert offline_logs == len(gw.meters)  # once per meter, not once per missed report
    await assert_books_close(park)
    assert await check_ledger() == []
