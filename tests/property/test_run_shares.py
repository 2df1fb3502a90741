"""The monthly run's sharing and losses steps, through server.sharing: the lifts of a 3-floor
building shared by area and a 5 % line loss entered ahead, previewed (nothing posted), posted
once the month has ended, and a second run that finds both posted and changes nothing."""

from __future__ import annotations

from datetime import datetime

import pytest

from server.accounts.models import Account
from server.ledger.models import LedgerTransaction
from server.property.models import LineOutcome, RunShareLine
from server.property.service.run import get_run, run_month
from server.sharing.service.losses import enter_losses, entry_of
from server.sharing.service.pools import add_member, create_pool
from tests.sharing.conftest import TZ, flat_plan, three_floors
from tests.sharing.test_losses_compliance import FORM

pytestmark = pytest.mark.usefixtures("db")
ACTOR = "staff:1"
MID_NOVEMBER = datetime(2026, 11, 20, tzinfo=TZ)
DECEMBER = datetime(2026, 12, 1, 2, tzinfo=TZ)


async def test_sharing_and_losses_are_steps_of_the_month_posted_once() -> None:
    b = await three_floors(lift_use="300")
    site = [b.site.id]
    plan = await flat_plan(b.site, "公共区域按电网价", "0.70")
    pool = await create_pool(
        site, b.site.id, name="A栋电梯", meter_address=b.lift.address, plan_id=plan.id,
        method="area", actor=ACTOR,
    )  # fmt: skip
    for account in b.accounts:
        await add_member(site, pool.id, account.number, "1", actor=ACTOR)
    await enter_losses(site, b.site.id, entry_of(FORM), tz=TZ, actor=ACTOR)
    wallets = [a.id for a in b.accounts]

    async def balances() -> list[int]:
        return [a.balance_fen for a in await Account.filter(id__in=wallets).order_by("id")]

    start, posted_before = await balances(), await LedgerTransaction.all().count()
    # 300 kWh × ¥0.70 = ¥210.00 by area 120 : 200 : 180 → 50.40 / 84.00 / 75.60; the loss,
    # 7,000 fen by use 300 : 500 : 400 → 1,750 / 2,917 / 2,333 (tests/sharing).
    shares, losses = [5_040, 8_400, 7_560], [1_750, 2_917, 2_333]
    for preview, now in ((True, DECEMBER), (False, MID_NOVEMBER)):  # not ended: a preview too
        run = await run_month(b.site.id, "2026-11", preview=preview, actor=ACTOR, tz=TZ, now=now)
        _, lines = await get_run(site, run.id)
        assert [ln.amount_fen for ln in lines] == shares + losses
        assert {ln.outcome for ln in lines} == {LineOutcome.PREVIEW}
        assert run.charged_fen == sum(shares + losses)
    assert "月份未结束" in run.steps["sharing"]["skipped"]
    assert await balances() == start and await LedgerTransaction.all().count() == posted_before

    real = await run_month(b.site.id, "2026-11", preview=False, actor=ACTOR, tz=TZ, now=DECEMBER)
    _, lines = await get_run(site, real.id)
    assert [(ln.item_name[:2], ln.amount_fen, ln.deducted_fen) for ln in lines] == [
        ("公摊", x, x) for x in shares
    ] + [("线变", x, x) for x in losses]
    assert {ln.outcome for ln in lines} == {LineOutcome.CHARGED}
    assert real.steps["losses"]["loss_rate"] == "5.00%"
    assert [x - y for x, y in zip(start, await balances(), strict=True)] == [
        s + loss for s, loss in zip(shares, losses, strict=True)
    ]
    after = (await balances(), await LedgerTransaction.all().count())

    again = await run_month(b.site.id, "2026-11", preview=False, actor=ACTOR, tz=TZ, now=DECEMBER)
    _, lines = await get_run(site, again.id)
    assert {ln.outcome for ln in lines} == {LineOutcome.ALREADY}
    assert [ln.deducted_fen for ln in lines] == [0] * 6 and again.charged_fen == 0
    assert (await balances(), await LedgerTransaction.all().count()) == after
    assert await RunShareLine.filter(outcome="charged").count() == 6
