"""Line losses and the compliance statement end to end, and the tenant's view of it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.accounts.models import Account
from server.core.errors import NotFound, ValidationFailed
from server.ledger.models import LedgerTransaction
from server.sharing.compliance import Flag
from server.sharing.losses import LossNotPositive
from server.sharing.service.losses import entry_of, preview_losses, run_losses
from server.sharing.service.pools import add_member, create_pool
from server.sharing.service.sharing import run_sharing
from server.sharing.service.statements import site_statement
from server.tenant.service.compliance import compliance
from tests.factories import bind, create_identity
from tests.sharing.conftest import TZ, flat_plan, three_floors

# The grid: 10,000 → 12,000 kWh (2,000) for ¥1,400.00 (¥0.70/kWh). Tenants 300 + 500 + 400,
# lifts 300, the operator 400: 1,900 measured, 100 kWh lost: 5 %, 7,000 fen.
FORM = {
    "period": "2026-11", "start_reading": "10000", "end_reading": "12000", "multiplier": "1",
    "bill": "1400.00", "own_use": "400", "method": "usage", "cap_pct": "10",
}  # fmt: skip


async def test_losses_shared_by_usage_and_a_seeded_markup_flagged(db: None) -> None:
    # the second floor's tenant was put on ¥0.85 while the grid sells at ¥0.70: a mark-up
    b = await three_floors(prices=("0.70", "0.85", "0.70"), lift_use="300")
    site = [b.site.id]
    common_plan = await flat_plan(b.site, "公共区域按电网价", "0.70")
    pool = await create_pool(
        site, b.site.id, name="A栋电梯", meter_address=b.lift.address, plan_id=common_plan.id,
        method="area", actor="staff:1",
    )  # fmt: skip
    for account in b.accounts:
        await add_member(site, pool.id, account.number, "1", actor="staff:1")
    await run_sharing("2026-11", site_ids=site, tz=TZ, actor="staff:1")

    seen = await preview_losses(site, b.site.id, entry_of(FORM), TZ)
    assert not seen.posted
    bal = seen.balance
    assert (bal.grid_kwh, bal.tenant_kwh, bal.common_kwh) == (2000, 1200, 300)
    assert (bal.loss_kwh, bal.loss_rate, bal.loss_fen) == (100, Decimal("0.0500"), 7_000)
    # 7,000 fen by 300 : 500 : 400 kWh: 1,750 / 2,916.67 / 2,333.33 → the fen to the .67
    assert [x.amount_fen for x in seen.lines] == [1_750, 2_917, 2_333]

    before = [(await Account.get(id=a.id)).balance_fen for a in b.accounts]
    done = await run_losses(site, b.site.id, entry_of(FORM), tz=TZ, actor="staff:1")
    again = await run_losses(site, b.site.id, entry_of(FORM | {"bill": "1.00"}), tz=TZ,
                             actor="staff:1")  # fmt: skip
    assert done.posted and again.balance == done.balance  # the first figures stand
    after = [(await Account.get(id=a.id)).balance_fen for a in b.accounts]
    assert [x - y for x, y in zip(before, after, strict=True)] == [1_750, 2_917, 2_333]
    assert await LedgerTransaction.filter(key__startswith=f"loss:{b.site.id}:").count() == 3

    s = (await site_statement(site, b.site.id, "2026-11", TZ)).statement
    assert [line.flags for line in s.lines] == [(), (Flag.MARKUP,), ()]
    first, marked = s.lines[0], s.lines[1]
    assert (first.use.energy_fen, first.energy_price) == (21_000, Decimal("0.700000"))
    assert (marked.use.energy_fen, marked.energy_price) == (42_500, Decimal("0.850000"))
    # first floor: ¥210 energy + ¥50.40 lifts (120/500 of 300 kWh × ¥0.70) + ¥17.50 loss
    assert (first.use.common_fen, first.use.loss_fen, first.total_fen) == (5_040, 1_750, 27_790)
    assert first.effective_price == Decimal("0.926333")  # ¥277.90 / 300 kWh
    assert Flag.MARKUP in s.flags and Flag.LOSS_OVER_CAP not in s.flags

    # the tenant reads its own line and the site's figures; another period is not published
    identity = await create_identity()
    await bind(identity, b.accounts[1])
    body = await compliance(identity.id, b.accounts[1].id, "2026-11")
    assert body["site"]["loss_rate"] == "5.00%" and body["site"]["grid_price"] == "0.700000"
    assert body["site"]["own_use_passed_on"] is False
    assert body["mine"]["energy_price"] == "0.850000"
    assert [f["code"] for f in body["mine"]["flags"]] == ["markup"]
    assert (await compliance(identity.id, b.accounts[1].id, "2026-10"))["published"] is False
    with pytest.raises(NotFound):  # not bound to this identity
        await compliance(identity.id, b.accounts[0].id, "2026-11")


async def test_bad_entries_are_refused_and_change_nothing(db: None) -> None:
    b = await three_floors()
    site = [b.site.id]
    with pytest.raises(LossNotPositive):  # the grid measured less than the meters below it
        await run_losses(site, b.site.id, entry_of(FORM | {"end_reading": "11000"}), tz=TZ,
                         actor="staff:1")  # fmt: skip
    for bad in ({"bill": "12.345"}, {"method": "ratio"}, {"multiplier": "0"},
                {"start_reading": "abc"}):  # fmt: skip
        with pytest.raises(ValidationFailed):
            entry_of(FORM | bad)
    with pytest.raises(NotFound):
        await run_losses([b.site.id + 99], b.site.id, entry_of(FORM), tz=TZ, actor="staff:1")
    assert await LedgerTransaction.filter(key__startswith="loss:").count() == 0
