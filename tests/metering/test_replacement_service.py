"""换表: the old meter's final reading and the new meter's first keep the account's history
continuous — every kWh billed once, at the CT×PT of the meter that measured it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.billing.models import UsageChargeRow
from server.billing.pipeline import process_readings, process_replacement
from server.core.errors import NotFound, ValidationFailed
from server.ledger import service as ledger
from server.ledger.posting import Channel
from server.metering.models import Meter, MeterStatus
from server.metering.models import Reading as StoredReading
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.metering.vocabulary import MeterProtocol
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_meter

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Tuesday
SWAP = T0 + timedelta(days=1)
NEW = {
    "address": "000000009999",
    "protocol": MeterProtocol.DLT645,
    "model": "DTSD1352",
    "unit": 0,
    "ct_ratio": 20,  # a 100/5 A current transformer: one register kWh is 20 kWh
    "pt_ratio": 1,
    "rated_kw": Decimal(50),
}


async def _park() -> Meter:
    account = await create_account()
    plan = await create_plan(
        account.site_id, "电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "0.6583"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:1",
    )  # fmt: skip
    await assign(account.id, plan.id)
    await ledger.recharge(account.id, Channel.CASH, 10_000, key="open-1", actor="staff:1")
    meter = await create_meter(account, rated_kw=Decimal(10), ct_ratio=1, online=True)
    await process_readings([IncomingReading(meter.id, Reading(T0, Decimal("1200.00")))], now=T0)
    return meter


async def _balance(meter: Meter) -> int:
    return (await Account.get(id=meter.account_id)).balance_fen


async def test_worked_example_old_final_1234_56_new_starts_at_zero(db: None) -> None:
    old = await _park()
    result = await process_replacement(
        old.id, new_meter=NEW, old_final_reading=Decimal("1234.56"),
        new_first_reading=Decimal("0.00"), actor="staff:7", at=SWAP,
    )  # fmt: skip
    # Old meter: 1234.56 − 1200.00 = 34.56 kWh × CT 1 × 0.6583 = 22.750848 元 → 2,275 fen.
    assert (result.closing.value, result.closing_energy) == ("accept", Decimal("34.56"))
    assert result.offset == Decimal("1234.56")  # account cumulative 1200 + 34.56, new at 0
    assert await _balance(old) == 10_000 - 2_275
    await old.refresh_from_db()
    assert (old.status, old.removed_at) == (MeterStatus.REMOVED, SWAP)
    new = await Meter.get(id=result.new_meter_id)
    assert (new.status, new.account_id, new.multiplier) == (MeterStatus.ACTIVE, old.account_id, 20)
    assert (await StoredReading.get(meter_id=new.id)).outcome == "baseline"

    # New meter: 0.50 register kWh × CT 20 = 10 kWh × 0.6583 = 6.583 元. With the 0.0848 fen
    # carried from the old meter's charge: 22.750848 + 6.583 = 29.333848 元 → 2,933 fen in
    # all, so this reading takes 2,933 − 2,275 = 658 fen.
    later = SWAP + timedelta(minutes=15)
    await process_readings([IncomingReading(new.id, Reading(later, Decimal("0.50")))], now=later)
    assert await _balance(old) == 10_000 - 2_933
    assert result.offset + Decimal("0.50") * new.multiplier == Decimal("1244.56")
    quantities = await UsageChargeRow.filter(account_id=old.account_id).order_by("reading_at")
    assert [Decimal(c.quantity) for c in quantities] == [Decimal("34.56"), Decimal("10.00")]
    assert sum(Decimal(c.quantity) for c in quantities) == Decimal("1244.56") - Decimal("1200.00")
    log = await OperationLog.get(action="meter.replaced")
    assert (log.actor, Decimal(log.detail["offset"])) == ("staff:7", Decimal("1234.56"))


async def test_replays_around_the_swap_bill_nothing_twice(db: None) -> None:
    old = await _park()
    result = await process_replacement(
        old.id, new_meter=NEW, old_final_reading=Decimal("1234.56"),
        new_first_reading=Decimal("0.00"), actor="staff:7", at=SWAP,
    )  # fmt: skip
    balance = await _balance(old)
    replay = [
        IncomingReading(old.id, Reading(SWAP, Decimal("1234.56"))),  # the final again: a duplicate
        IncomingReading(
            old.id, Reading(T0 + timedelta(hours=12), Decimal("1220.00"))
        ),  # late, before
        IncomingReading(
            old.id, Reading(SWAP + timedelta(minutes=15), Decimal("1234.60"))
        ),  # after: gone
        IncomingReading(result.new_meter_id, Reading(SWAP, Decimal("0.00"))),  # new baseline again
    ]
    report = await process_readings(replay, now=SWAP + timedelta(hours=1))
    assert report.ingest.outcomes == {"duplicate": 2, "out_of_order": 1, "removed_meter": 1}
    assert report.billed == 0
    assert await _balance(old) == balance
    assert await UsageChargeRow.filter(account_id=old.account_id).count() == 1


async def test_a_removed_meter_cannot_be_replaced_again_and_bad_ratios_are_refused(
    db: None,
) -> None:
    old = await _park()
    with pytest.raises(ValidationFailed):
        await process_replacement(
            old.id, new_meter={**NEW, "ct_ratio": 0}, old_final_reading=Decimal("1234.56"),
            new_first_reading=Decimal(0), actor="staff:7", at=SWAP,
        )  # fmt: skip
    await old.refresh_from_db()
    assert old.status == MeterStatus.ACTIVE  # nothing changed
    await process_replacement(
        old.id, new_meter=NEW, old_final_reading=Decimal("1234.56"),
        new_first_reading=Decimal(0), actor="staff:7", at=SWAP,
    )  # fmt: skip
    with pytest.raises(NotFound):
        await process_replacement(
            old.id, new_meter={**NEW, "address": "000000008888"},
            old_final_reading=Decimal("1234.56"), new_first_reading=Decimal(0),
            actor="staff:7", at=SWAP + timedelta(hours=1),
        )  # fmt: skip
