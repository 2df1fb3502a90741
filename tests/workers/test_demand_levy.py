"""The maximum demand read from the meters (DL/T 645 01010001, 上1结算日) for two-part plans
by demand: the scheduler's monthly levy reads each account's one demand-capable meter of the
simulated park over its bus after the meters settled on the 1st, stores it (source: meter,
CT × PT applied) unless staff entered one, and levies on it; a re-run charges nothing twice."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from server.jobs.service import Claimed
from server.ledger.posting import wallet
from server.ledger.service import balance_of
from server.metering.models import Meter
from server.metering.vocabulary import MeterKind, MeterProtocol
from server.tariffs.levy import enter_demand
from server.tariffs.models import CapacityLevy, DemandEntry, DemandSource, TariffKind
from server.tariffs.service import assign, create_plan
from tests.workers.conftest import SHANGHAI, Park
from workers.registry import DriverRegistry
from workers.scheduler import Scheduler

TWO_PART = {"kind": "two_part", "basis": "demand", "rate": "40",
            "energy": {"kind": "flat", "unit": "kWh", "price": "0.6583"}}  # fmt: skip


async def test_the_levy_reads_the_months_maximum_demand_from_the_meters(park: Park) -> None:
    wired = [
        m for m in park.meters.values()
        if m.kind is MeterKind.ELECTRICITY and m.protocol is MeterProtocol.DLT645
    ]  # fmt: skip
    read, entered = wired[:2]
    await Meter.filter(id=read.id).update(ct_ratio=20)  # a meter behind a 100/5 A CT
    plan = await create_plan(
        park.site.id, "大工业按需量", TariffKind.ELECTRICITY, TWO_PART,
        effective_from=datetime(2026, 1, 1, tzinfo=SHANGHAI), actor="staff:1",
    )  # fmt: skip
    for meter in (read, entered):
        await assign(meter.account_id, plan.id)  # type: ignore[attr-defined]
    await enter_demand([park.site.id], entered.account_id, "2026-03", "55.5", actor="staff:1")  # type: ignore[attr-defined]
    sim = park.sim.park.meters[read.address]
    sim.advance(park.now())
    # Past the end of March: the meters settled at 00:00 on 1 April.
    park.sim.park.clock.jump(datetime(2026, 4, 1, 2, 30, tzinfo=SHANGHAI) - park.now())
    registry = DriverRegistry(clock=park.now, timeout=1.0)
    try:
        scheduler = Scheduler(registry, clock=park.now)
        job = Claimed(1, "scheduler.levy", {"month": "2026-03"}, 1, 3, park.now())
        await scheduler.handlers()["scheduler.levy"](job)
        await scheduler.handlers()["scheduler.levy"](job)  # again: nothing twice
    finally:
        await registry.close()
    assert sim.last_demand_at is not None and sim.last_demand_at.month == 3
    kw = (sim.last_demand_kw * 20).quantize(Decimal("0.001"), ROUND_HALF_UP)
    assert kw > 0
    stored = await DemandEntry.get(account_id=read.account_id, month="2026-03")  # type: ignore[attr-defined]
    assert (stored.kw, stored.source) == (kw, DemandSource.METER)
    kept = await DemandEntry.get(account_id=entered.account_id, month="2026-03")  # type: ignore[attr-defined]
    assert (kept.kw, kept.source) == (Decimal("55.5"), DemandSource.STAFF)
    levies = dict(await CapacityLevy.filter(month="2026-03").values_list("account_id", "quantity"))
    assert levies == {read.account_id: kw, entered.account_id: Decimal("55.5")}  # type: ignore[attr-defined]
    fen = int((kw * 40 * 100).quantize(Decimal(1), ROUND_HALF_UP))
    before = 10_000  # the park's accounts start with ¥100
    assert await balance_of(wallet(read.account_id)) == before - fen  # type: ignore[attr-defined]
