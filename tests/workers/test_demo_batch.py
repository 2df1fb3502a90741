"""The demo's finished batch (`server.runtime._demo_batch`): at start-up a 点抄 of the first
floor's answering wired meters is created through the batch service and run by a controller
against the simulated park, so the 批量操作 page has a finished batch with per-meter results."""

from __future__ import annotations

from datetime import UTC, datetime

from server.core.paging import Paging
from server.core.settings import Settings
from server.metering.models import BatchStatus, Meter, MeterBatch
from server.metering.service import batches
from server.metering.vocabulary import MeterProtocol
from server.runtime import _demo_batch
from server.seed import seed_park
from workers.sim.run import Simulation


async def test_the_demo_starts_with_a_finished_batch(
    db: None, sim: Simulation, settings: Settings
) -> None:
    summary = await seed_park(sim.park.meters.values(), sim.directory, now=datetime.now(UTC))
    batch_id = await _demo_batch(summary.site_id, sim, settings)
    assert batch_id is not None
    batch = await MeterBatch.get(id=batch_id)
    assert batch.status is BatchStatus.DONE and batch.title == "A栋 1F 巡检点抄"
    items = (await batches.batch_items([summary.site_id], batch_id, Paging.everything())).items
    assert items and {i.status for i in items} == {"acked"}
    assert all(i.result["total"] and "读数" in i.result_text for i in items)
    protocols = await Meter.filter(id__in=[i.meter_id for i in items]).values_list(
        "protocol", flat=True
    )
    assert MeterProtocol.MQTT_GATEWAY not in protocols
    assert batch.outcome == {"acked": len(items)}
