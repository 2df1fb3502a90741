"""Scheduler: daily reconciliation of meter-billed meters, command expiry, alarm sweep."""

from __future__ import annotations

from datetime import timedelta

from server.metering import service
from server.metering.models import (
    AlarmRecord,
    CommandOp,
    CommandStatus,
    MeterBilling,
    ReconciliationItem,
)
from tests.workers.conftest import Park, credit
from tests.workers.helpers import Workers
from tests.workers.test_controller_worker import pick
from workers.scheduler import Scheduler


async def test_reconciliation_matches_after_a_platform_recharge_and_reports_one_outside(
    park: Park,
) -> None:
    meter = pick(park, billing=MeterBilling.METER)
    other = next(
        m
        for a, m in park.meters.items()
        if m.billing == MeterBilling.METER and m.id != meter.id and m.protocol == meter.protocol
    )
    async with Workers(park) as w:
        await w.step(0)
        key = await credit(meter.account_id, 3_000)
        await service.on_wallet_credited(
            meter.account_id, reason="充值", credit_key=key, now=park.now()
        )
        await w.controller.run_once()
        # Someone recharges the other meter at a counter, outside the platform.
        sm = park.sim.park.meters[other.address]
        sm.recharge(50_000, sm.purchase_count + 1)
        scheduler = Scheduler(w.registry, clock=park.now)
        assert await scheduler.reconcile() >= 2
        assert await scheduler.reconcile() >= 2  # a re-run of the day adds nothing
    mine = await ReconciliationItem.filter(meter_id=meter.id).values_list("kind", flat=True)
    assert mine == ["match"]
    theirs = await ReconciliationItem.filter(meter_id=other.id).values_list("kind", flat=True)
    assert sorted(theirs) == ["count_mismatch", "money_mismatch"]


async def test_stale_commands_expire_and_the_sweep_repeats_nothing_early(park: Park) -> None:
    meter = pick(park, billing=MeterBilling.PLATFORM)
    cmd = await service.queue_command(
        meter.id, CommandOp.TRIP, {}, actor="staff:3", reason="测试", ttl=timedelta(minutes=5),
        now=park.now(),
    )  # fmt: skip
    park.sim.park.clock.jump(timedelta(minutes=10))
    scheduler = Scheduler(None, clock=park.now)  # type: ignore[arg-type]
    assert await scheduler.expire_commands() == 1
    await cmd.refresh_from_db()
    assert cmd.status == CommandStatus.EXPIRED and cmd.finished_at is not None
    before = await AlarmRecord.all().count()
    await scheduler.sweep_alarms()
    await scheduler.sweep_alarms()
    assert await AlarmRecord.all().count() == before


async def test_each_period_runs_once_however_many_schedulers_run(db: None) -> None:
    """Two scheduler processes enqueue the same periods: one job per period, run once."""
    from datetime import datetime, time

    from server.jobs.models import Job, JobStatus
    from server.jobs.runner import Runner
    from workers.scheduler import SHANGHAI

    now = datetime(2026, 3, 2, 1, 59, 30, tzinfo=SHANGHAI)
    schedulers = [Scheduler(None, clock=lambda: now) for _ in range(2)]  # type: ignore[arg-type]
    for s in schedulers:
        await s.enqueue_due(tick=60, daily_at=time(2, 0))
    assert await Job.all().values_list("kind", flat=True) == ["scheduler.tick"]  # no daily yet
    now = now + timedelta(seconds=45)  # 02:00:15: a new tick slot, and the day's run
    for s in schedulers:
        await s.enqueue_due(tick=60, daily_at=time(2, 0))
    kinds = sorted(await Job.all().values_list("kind", flat=True))
    # …and February's basic charge of two-part plans (server.tariffs.levy) and property
    # billing run, once a month each.
    assert kinds == [
        "property.monthly", "scheduler.daily", "scheduler.levy", "scheduler.tick",
        "scheduler.tick",
    ]  # fmt: skip
    assert await Job.filter(kind="scheduler.levy").values_list("dedupe_key", flat=True) == [
        "scheduler.levy:2026-02"
    ]
    ran = [await Runner(s.handlers(), clock=lambda: now).run_once() for s in schedulers]
    assert sorted(ran) == [0, 5]
    assert set(await Job.all().values_list("status", flat=True)) == {JobStatus.DONE}
