"""The real-time bill adds up to the ledger: opening position + every cause of the month
(energy by band, capacity, fees deducted and billed, common-area and loss shares, payments)
= closing position = the wallet + the receivable, to the fen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from server.accounts.models import Account
from server.billing.service import ReadingToBill, bill_readings
from server.ledger import Channel, balance_of, recharge
from server.ledger import service as ledger
from server.ledger.posting import ChargeType
from server.metering.reading import Reading
from server.property.service import items
from server.property.service.items import ItemForm
from server.property.service.run import run_month
from server.property.service.statement import realtime_bill
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_meter

pytestmark = pytest.mark.usefixtures("db")
TZ = ZoneInfo("Asia/Shanghai")
ACTOR = "staff:1"


async def test_the_months_causes_add_up_to_the_ledger() -> None:
    account = await create_account(opened_at=datetime(2026, 1, 1, tzinfo=TZ))
    site_id = account.site_id  # type: ignore[attr-defined]
    await recharge(account.id, Channel.CASH, 50_000, key="before", actor=ACTOR)
    plan = await create_plan(
        site_id, "平价", TariffKind.ELECTRICITY, {"kind": "flat", "unit": "kWh", "price": "0.80"},
        effective_from=datetime(2026, 1, 1, tzinfo=TZ), actor=ACTOR,
    )  # fmt: skip
    await assign(account.id, plan.id)
    meter = await create_meter(account)
    start = datetime(2026, 11, 1, tzinfo=TZ)
    readings = [Reading(start + timedelta(days=d), Decimal(100 + 12 * d)) for d in range(6)]
    # the month of the bill is the month the money moved: now
    now = datetime.now(UTC).astimezone(TZ)
    month = f"{now.year:04d}-{now.month:02d}"
    await bill_readings([ReadingToBill(meter.id, a, b) for a, b in pairwise(readings)])
    await items.create_item(site_id, ItemForm("租金", "rent", "fixed", "300.00", "monthly"),
                            actor=ACTOR)  # fmt: skip
    await items.create_item(site_id, ItemForm("卫生费", "custom", "fixed", "20.00", "monthly",
                                              collection="bill"), actor=ACTOR)  # fmt: skip
    await run_month(site_id, "2026-11", preview=False, actor=ACTOR, tz=TZ)
    await ledger.charge(account.id, ChargeType.CAPACITY, 1_234, key="cap", actor=ACTOR)
    await ledger.charge(account.id, ChargeType.COMMON_SHARE, 567, key="common", actor=ACTOR)
    await ledger.charge(account.id, ChargeType.LOSS_SHARE, 89, key="loss", actor=ACTOR)
    await recharge(account.id, Channel.WECHAT, 10_000, key="during", actor=ACTOR)

    bill = await realtime_bill(account.id, month, TZ)
    assert bill.opening_fen == 0  # everything here moved this month, the first recharge too
    assert bill.adds_up
    wallet = (await Account.get(id=account.id)).balance_fen
    assert bill.closing_fen == wallet + await balance_of(f"receivable:{account.id}")
    assert bill.section_fen("energy") == -(60 * 80)  # 5 days × 12 kWh × ¥0.80
    assert [(b.label, b.quantity) for b in bill.bands] == [(bill.bands[0].label, Decimal(60))]
    assert bill.section_fen("fees") == -(30_000 + 2_000)  # deducted and billed alike
    assert {ln.label for ln in bill.lines if ln.section == "fees"} == {"租金", "卫生费"}
    assert (bill.section_fen("capacity"), bill.section_fen("common"), bill.section_fen("loss")) == (
        -1_234, -567, -89,
    )  # fmt: skip
    assert bill.section_fen("payments") == 50_000 + 10_000
