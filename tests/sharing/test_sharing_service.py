"""Common-area sharing end to end: readings in, the master meter measured and never charged,
the period priced at the pool's tariff, shared by area, charged through the ledger once."""

from __future__ import annotations

import pytest

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.core.errors import Conflict, NotFound
from server.ledger.models import LedgerTransaction
from server.metering.models import Reading as StoredReading
from server.sharing.service.pools import add_member, create_pool, set_method
from server.sharing.service.sharing import preview, run_sharing
from tests.sharing.conftest import TZ, three_floors

pytestmark = pytest.mark.usefixtures("db")


async def test_lifts_shared_by_area_charged_once() -> None:
    b = await three_floors()
    site = [b.site.id]
    # the master meter's readings were measured, not billed: no account, nothing charged
    lift_readings = await StoredReading.filter(meter_id=b.lift.id).values_list("billing", flat=True)
    assert set(lift_readings) == {"none"}
    pool = await create_pool(
        site, b.site.id, name="A栋电梯", meter_address=b.lift.address, plan_id=b.plan.id,
        method="area", actor="staff:1",
    )  # fmt: skip
    for account in b.accounts:
        await add_member(site, pool.id, account.number, "1", actor="staff:1")
    before = {a.id: (await Account.get(id=a.id)).balance_fen for a in b.accounts}

    seen = await preview(site, pool.id, "2026-11", TZ)
    # 1,234.5 kWh × ¥0.80 = ¥987.60, by area 120 : 200 : 180 (see test_allocation)
    assert (seen.quantity, seen.amount_fen, seen.posted) == (1234.5, 98_760, False)
    assert [x.amount_fen for x in seen.lines] == [23_702, 39_504, 35_554]

    (done,) = await run_sharing("2026-11", site_ids=site, tz=TZ, actor="staff:1")
    assert done.posted and [x.amount_fen for x in done.lines] == [23_702, 39_504, 35_554]
    after = {a.id: (await Account.get(id=a.id)).balance_fen for a in b.accounts}
    assert [before[a.id] - after[a.id] for a in b.accounts] == [23_702, 39_504, 35_554]
    keys = await LedgerTransaction.filter(key__startswith=f"share:{pool.id}:").count()
    assert keys == 3

    # again, even with another rule chosen since: nothing more posted, the posted figures shown
    await set_method(site, pool.id, "equal", actor="staff:1")
    (again,) = await run_sharing("2026-11", site_ids=site, tz=TZ, actor="staff:1")
    assert [x.amount_fen for x in again.lines] == [23_702, 39_504, 35_554]
    assert {a.id: (await Account.get(id=a.id)).balance_fen for a in b.accounts} == after
    assert await LedgerTransaction.filter(key__startswith=f"share:{pool.id}:").count() == 3
    assert (await preview(site, pool.id, "2026-11", TZ)).posted
    assert await OperationLog.filter(action="sharing.run").count() == 1


async def test_usage_rule_and_scope() -> None:
    b = await three_floors(use=("300", "500", "400"))
    site = [b.site.id]
    pool = await create_pool(
        site, b.site.id, name="水泵", meter_address=b.lift.address, plan_id=b.plan.id,
        method="usage", actor="staff:1",
    )  # fmt: skip
    for account in b.accounts:
        await add_member(site, pool.id, account.number, "1", actor="staff:1")
    seen = await preview(site, pool.id, "2026-11", TZ)
    # 98,760 by 300 : 500 : 400 → 24,690 / 41,150 / 32,920
    assert [x.amount_fen for x in seen.lines] == [24_690, 41_150, 32_920]
    with pytest.raises(NotFound):
        await preview([b.site.id + 1000], pool.id, "2026-11", TZ)
    with pytest.raises(Conflict):  # a tenant's meter cannot be a master meter
        await create_pool(
            site, b.site.id, name="错表", meter_address=b.meters[0].address,
            plan_id=b.plan.id, method="area", actor="staff:1",
        )  # fmt: skip
