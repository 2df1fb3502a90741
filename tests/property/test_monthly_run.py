"""The monthly run on a real database: a tenant moving in on the 17th (prorated, checked by
hand), a wallet that cannot cover its fees (the rest billed, never a trip), a postpaid month
from readings to a settled bill, and a second run that changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from server.accounts.models import Account, BillingMode
from server.billing.service import ReadingToBill, bill_readings
from server.ledger import Channel, balance_of, recharge
from server.ledger.check import check_ledger
from server.ledger.models import LedgerLeg, LedgerTransaction
from server.metering.reading import Reading
from server.property.models import Bill, BillStatus, FeeRunLine, LineOutcome
from server.property.service import bills, items
from server.property.service.bills import BillFilter
from server.property.service.items import ItemForm
from server.property.service.run import run_month
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_meter, create_room

pytestmark = pytest.mark.usefixtures("db")
TZ = ZoneInfo("Asia/Shanghai")
ACTOR = "staff:1"
RENT = ItemForm("租金", "rent", "fixed", "3000.00", "monthly")
PROPERTY = ItemForm("物业费", "property_fee", "area", "3.50", "monthly", collection="bill")
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=TZ)


async def _snapshot() -> tuple[int, int, list[tuple[int, int]]]:
    wallets = await Account.all().order_by("id").values_list("id", "balance_fen")
    return await LedgerTransaction.all().count(), await LedgerLeg.all().count(), wallets


async def test_a_tenant_moving_in_on_the_17th_pays_14_of_30_days_once() -> None:
    room = await create_room(area_m2=Decimal("56.30"))
    newcomer = await create_account(room, opened_at=datetime(2026, 11, 17, 9, 30, tzinfo=TZ))
    site_id = newcomer.site_id  # type: ignore[attr-defined]
    rich = await create_account(site=await newcomer.site, opened_at=datetime(2026, 1, 1, tzinfo=TZ))
    await recharge(newcomer.id, Channel.CASH, 100_000, key="r1", actor=ACTOR)
    await recharge(rich.id, Channel.CASH, 1_000_000, key="r2", actor=ACTOR)
    rent = await items.create_item(site_id, RENT, actor=ACTOR)
    fee = await items.create_item(site_id, PROPERTY, actor=ACTOR)

    before = await _snapshot()
    preview = await run_month(site_id, "2026-11", preview=True, actor=ACTOR, tz=TZ, now=NOW)
    assert await _snapshot() == before  # a preview posts nothing
    # rent 3,000.00 × 14/30 = 1,400.00, of which the wallet's 1,000.00 covers 999.99 (one fen
    # stays: a fee never trips) and 400.01 is billed; property 56.30 m² × 3.50 = 197.05 ×
    # 14/30 = 91.96, billed. The other tenant (56.30 m² too): 3,000.00 deducted, 197.05 billed.
    assert preview.charged_fen == 99_999 + 300_000
    assert preview.billed_fen == 40_001 + 9_196 + 19_705

    real = await run_month(site_id, "2026-11", preview=False, actor=ACTOR, tz=TZ, now=NOW)
    assert (real.charged_fen, real.billed_fen) == (preview.charged_fen, preview.billed_fen)
    await newcomer.refresh_from_db()
    assert newcomer.balance_fen == 1  # one fen above the trip threshold: no trip from a fee
    [bill] = await bills.list_bills(BillFilter([site_id], account_id=newcomer.id), today=NOW.date())
    assert (bill.status, bill.total_fen) == (BillStatus.ISSUED, 40_001 + 9_196)
    assert await balance_of(f"receivable:{newcomer.id}") == -(40_001 + 9_196)
    assert await balance_of(rent.revenue_code) == 140_000 + 300_000
    assert fee.revenue_code == "revenue:property_fee"
    assert await check_ledger() == []

    after = await _snapshot()
    again = await run_month(site_id, "2026-11", preview=False, actor=ACTOR, tz=TZ, now=NOW)
    assert await _snapshot() == after  # re-running the month changes nothing
    assert (again.charged_fen, again.billed_fen, again.already) == (0, 0, 4)
    assert await Bill.all().count() == 2
    outcomes = await FeeRunLine.filter(run_id=again.id).values_list("outcome", flat=True)
    assert set(outcomes) == {LineOutcome.ALREADY}


async def test_a_custom_item_gets_its_own_revenue_account() -> None:
    account = await create_account(opened_at=datetime(2026, 1, 1, tzinfo=TZ))
    await recharge(account.id, Channel.CASH, 50_000, key="r", actor=ACTOR)
    form = ItemForm("垃圾清运费", "custom", "fixed", "25.00", "once", due="2026-11-05")
    custom = await items.create_item(account.site_id, form, actor=ACTOR)  # type: ignore[attr-defined]
    assert custom.revenue_code == f"revenue:item:{custom.id}"
    await run_month(account.site_id, "2026-11", preview=False, actor=ACTOR, tz=TZ, now=NOW)  # type: ignore[attr-defined]
    assert await balance_of(custom.revenue_code) == 2_500


async def test_a_postpaid_month_from_readings_to_a_settled_bill() -> None:
    account = await create_account(
        billing_mode=BillingMode.POSTPAID, opened_at=datetime(2026, 1, 1, tzinfo=TZ)
    )
    site_id = account.site_id  # type: ignore[attr-defined]
    flat = {"kind": "flat", "unit": "kWh", "price": "1.00"}
    plan = await create_plan(
        site_id, "商业平价", TariffKind.ELECTRICITY, flat,
        effective_from=datetime(2026, 1, 1, tzinfo=TZ), actor=ACTOR,
    )  # fmt: skip
    await assign(account.id, plan.id)
    meter = await create_meter(account)
    start = datetime(2026, 11, 1, tzinfo=TZ)
    readings = [Reading(start + timedelta(days=d), Decimal(1000 + 10 * d)) for d in range(31)]
    pairs = [ReadingToBill(meter.id, a, b) for a, b in pairwise(readings)]
    await bill_readings(pairs)  # 30 days × 10 kWh × ¥1.00 = ¥300.00, charged as used
    await account.refresh_from_db()
    assert account.balance_fen == -30_000  # postpaid: used now, paid after the bill
    await items.create_item(site_id, RENT, actor=ACTOR)

    run = await run_month(site_id, "2026-11", preview=False, actor=ACTOR, tz=TZ, now=NOW)
    assert run.steps["postpaid"]["bills"] == 1
    [draft] = await bills.list_bills(BillFilter([site_id]), today=NOW.date())
    assert (draft.status, draft.total_fen) == (BillStatus.DRAFT, 30_000 + 300_000)
    with pytest.raises(Exception, match="须先审核"):
        await bills.issue_bill([site_id], draft.id, actor=ACTOR, tz=TZ, now=NOW)
    await bills.confirm_bill([site_id], draft.id, actor=ACTOR)
    await bills.issue_bill([site_id], draft.id, actor=ACTOR, tz=TZ, now=NOW)
    await account.refresh_from_db()
    assert account.balance_fen == 0  # the month's usage moved onto the bill
    assert await balance_of(f"receivable:{account.id}") == -330_000

    paid = await bills.pay_bill([site_id], draft.id, actor=ACTOR, channel=Channel.CASH)
    assert (paid.status, paid.paid_fen) == (BillStatus.PAID, 330_000)
    assert await balance_of(f"receivable:{account.id}") == 0
    await account.refresh_from_db()
    assert account.balance_fen == 0
    assert await check_ledger() == []
    again = await run_month(site_id, "2026-11", preview=False, actor=ACTOR, tz=TZ, now=NOW)
    assert again.steps["postpaid"]["bills"] == 0 and await Bill.all().count() == 1
