"""A register that wraps (999999.99 → 000000.00) is accepted by ingest *and* billed: the two
must agree on the wrap point, or the reading would be refused as running backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from server.billing.pipeline import process_readings
from server.ledger.check import check_ledger
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_meter

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


async def test_a_rolled_over_register_is_billed_for_the_wrapped_advance(db: None) -> None:
    account = await create_account(credit_limit_fen=0)
    meter = await create_meter(account, rated_kw=Decimal(10), online=True)
    plan = await create_plan(
        account.site_id,
        "一元电价",
        TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "1.00"},
        effective_from=T0 - timedelta(days=1),
        actor="test",
    )
    await assign(account.id, plan.id)
    now = T0 + timedelta(hours=1)

    await process_readings([IncomingReading(meter.id, Reading(T0, Decimal("999999.50")))], now=now)
    report = await process_readings(
        [IncomingReading(meter.id, Reading(T0 + timedelta(minutes=15), Decimal("0.30")))], now=now
    )

    # 999999.50 → 1000000.00 is 0.50 kWh, then 0.30 more: 0.80 kWh × ¥1.00 = ¥0.80.
    assert report.ingest.outcomes == {"rollover": 1}
    assert (report.billed, report.failed) == (1, 0)
    await account.refresh_from_db()
    assert account.balance_fen == -80
    assert await check_ledger() == []
