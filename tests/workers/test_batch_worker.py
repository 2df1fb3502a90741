"""Batch operations (server/metering/service/batches.py) executed by the controller against
the simulated park over sockets: run now with per-meter results, a scheduled batch that
survives a restart of the worker, retry of the failed meters only, cancel of the unsent."""

from __future__ import annotations

from datetime import timedelta

from server.audit.models import OperationLog
from server.core.paging import Paging
from server.metering.models import (
    BatchAction,
    BatchItemState,
    BatchStatus,
    CommandStatus,
    MeterBatch,
    MeterBatchItem,
    MeterCommand,
)
from server.metering.service import batches
from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState
from tests.workers.conftest import Park
from tests.workers.helpers import Workers

OPEN = [CommandStatus.QUEUED, CommandStatus.SENT]


async def drain(park: Park) -> None:
    """A controller process (with its gateway link) runs until no command is open."""
    async with Workers(park) as w:
        for _ in range(10):
            await w.controller.run_once()
            if not await MeterCommand.filter(status__in=OPEN).exists():
                break
        await batches.settle(park.now())


async def one_pass(park: Park) -> None:
    async with Workers(park) as w:
        await w.controller.run_once()


def electricity(park: Park) -> batches.Selection:
    """The park's electricity meters on wired buses, as an uploaded list would name them
    (the simulated MQTT gateways judge a command's expiry by the wall clock, and the park's
    clock stands still in March 2026)."""
    wired = [
        a for a, m in park.meters.items()
        if m.kind == MeterKind.ELECTRICITY and m.protocol != MeterProtocol.MQTT_GATEWAY
    ]  # fmt: skip
    return batches.Selection(
        site_id=park.site.id, kind=MeterKind.ELECTRICITY, addresses=tuple(wired)
    )


async def test_a_trip_batch_runs_now_with_every_meters_result(park: Park) -> None:
    site = [park.site.id]
    batch = await batches.create_batch(
        site, action=BatchAction.TRIP, selection=electricity(park), actor="staff:7", now=park.now()
    )
    meters = electricity(park).addresses
    assert await MeterBatchItem.filter(batch_id=batch.id).count() == len(meters)
    assert not await MeterCommand.exists()  # nothing is queued until a worker releases it
    await drain(park)
    view = await batches.batch_view(site, batch.id)
    assert view.status is BatchStatus.DONE and view.total == len(meters)
    rows = (await batches.batch_items(site, batch.id, Paging.everything())).items
    for row in rows:
        sim = park.sim.park.meters[row.address]
        if sim.protected:  # 保电 meters refuse a trip: failed with the meter's reason
            assert row.status == "failed" and "拒绝" in row.error
        else:
            assert row.status == "acked" and sim.relay is RelayState.OPEN, row
            assert row.result_text.startswith("继电器断开")
    assert view.counts == {
        "acked": sum(r.status == "acked" for r in rows),
        **({"failed": view.failed} if view.failed else {}),
    }
    logged = (
        await OperationLog.filter(target_type="meter_batch")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert logged == ["batch.create", "batch.queue", "batch.release", "batch.done"]
    done = await OperationLog.get(action="batch.done")
    assert done.detail["outcome"] == view.counts
    # the failed meters and why are in the batch's entry, no entry per command's outcome
    assert done.detail["failures"] == [[r.address, r.error] for r in rows if r.status == "failed"]
    assert not await OperationLog.filter(action__in=["command.acked", "command.failed"]).exists()
    # another site's staff see nothing of it
    assert (await batches.list_batches([park.site.id + 999], Paging())).total == 0


async def test_a_scheduled_batch_survives_a_restart_of_the_worker(park: Park) -> None:
    site = [park.site.id]
    at = park.now() + timedelta(hours=1)
    batch = await batches.create_batch(
        site, action=BatchAction.READ, selection=electricity(park), run_at=at, actor="staff:7",
        now=park.now(),
    )  # fmt: skip
    await one_pass(park)  # before its time: nothing happens
    await batch.refresh_from_db()
    assert batch.status is BatchStatus.SCHEDULED and not await MeterCommand.exists()
    # the worker process ends; an hour later a new one starts from the database alone
    park.sim.park.clock.jump(timedelta(hours=1, seconds=1))
    await drain(park)
    await batch.refresh_from_db()
    assert batch.status is BatchStatus.DONE and batch.released_at is not None
    assert set((await states_of(site, batch.id)).values()) == {"acked"}


async def states_of(site: list[int], batch_id: int) -> dict[int, str]:
    page = await batches.batch_items(site, batch_id, Paging.everything())
    return {r.meter_id: r.status for r in page.items}


async def links(batch_id: int) -> list[tuple[int, int]]:
    return await MeterBatchItem.filter(batch_id=batch_id).values_list("meter_id", "command_id")


async def test_retry_queues_the_failed_meters_only(park: Park) -> None:
    site = [park.site.id]
    batch = await batches.create_batch(
        site, action=BatchAction.TRIP, selection=electricity(park), actor="staff:7", now=park.now()
    )
    await drain(park)
    first = await states_of(site, batch.id)
    failed = {m for m, s in first.items() if s == "failed"}
    assert failed and failed != set(first)  # the park has protected meters
    before = dict(
        await MeterBatchItem.filter(batch_id=batch.id).values_list("meter_id", "command_id")
    )
    assert await batches.retry_failed(site, batch.id, actor="staff:8", now=park.now()) == len(
        failed
    )
    after = dict(
        await MeterBatchItem.filter(batch_id=batch.id).values_list("meter_id", "command_id")
    )
    changed = {m for m in before if before[m] != after[m]}
    assert changed == failed
    for m in failed:  # the protected meters are released from 保电 by hand, then it works
        address = next(a for a, row in park.meters.items() if row.id == m)
        park.sim.park.meters[address].protected = False
    await drain(park)
    assert set((await states_of(site, batch.id)).values()) == {"acked"}
    await MeterBatch.get(id=batch.id, status=BatchStatus.DONE)
    tries = await MeterBatchItem.filter(batch_id=batch.id).values_list("meter_id", "tries")
    assert {m for m, t in tries if t == 2} == failed
    assert await OperationLog.filter(action="batch.retry", actor="staff:8").exists()
    assert await OperationLog.filter(action="batch.done").count() == 2


async def test_cancel_stops_what_was_not_sent(park: Park) -> None:
    site = [park.site.id]
    later = await batches.create_batch(
        site, action=BatchAction.TRIP, selection=electricity(park), actor="staff:7",
        run_at=park.now() + timedelta(days=1), now=park.now(),
    )  # fmt: skip
    assert await batches.cancel(site, later.id, actor="staff:7", now=park.now()) > 0
    await later.refresh_from_db()
    assert later.status is BatchStatus.CANCELLED
    now = await batches.create_batch(
        site, action=BatchAction.TRIP, selection=electricity(park), actor="staff:7", now=park.now()
    )
    assert await batches.release_due(park.now()) == 1  # queued, not yet sent
    relays = {a: sm.relay for a, sm in park.sim.park.meters.items()}
    cancelled = await batches.cancel(site, now.id, actor="staff:7", now=park.now())
    assert cancelled == await MeterBatchItem.filter(batch_id=now.id).count()
    await drain(park)
    assert {a: sm.relay for a, sm in park.sim.park.meters.items()} == relays
    assert set((await states_of(site, now.id)).values()) == {"cancelled"}
    assert set(await MeterBatchItem.filter(batch_id=later.id).values_list("state", flat=True)) == {
        BatchItemState.CANCELLED
    }
    assert not await MeterCommand.filter(status=CommandStatus.ACKED).exists()
    assert await OperationLog.filter(action="batch.cancel").count() == 2
    await MeterBatch.get(id=now.id, status=BatchStatus.DONE)
