"""Reading ingestion on the database: idempotent per (meter, time), held readings, offline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from server.audit.models import OperationLog
from server.metering.models import (
    BillingStatus,
    HeldReading,
    Meter,
    MeterBilling,
    ReadingSource,
)
from server.metering.models import Reading as StoredReading
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading, ingest, record_misses
from tests.factories import create_account, create_meter
from workers.meters.base import MoneyRegister, RelayState

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _r(meter: Meter, minutes: int, total: str, **kw: object) -> IncomingReading:
    return IncomingReading(
        meter.id,
        Reading(T0 + timedelta(minutes=minutes), Decimal(total), kw.pop("bands", {})),
        **kw,
    )  # type: ignore[arg-type]


async def _meter(**kw: object) -> Meter:
    account = await create_account()
    return await create_meter(account, rated_kw=Decimal(10), online=True, **kw)


async def test_replays_and_late_readings_are_stored_once_and_billed_once(db: None) -> None:
    meter = await _meter()
    now = T0 + timedelta(days=1)
    first = await ingest([_r(meter, 0, "100.00"), _r(meter, 15, "101.00")], now=now)
    assert first.outcomes == {"baseline": 1, "accept": 1}
    assert len(first.pending) == 1
    # A gateway replays both, plus a late reading between them, in reverse order.
    again = await ingest(
        [_r(meter, 15, "101.00"), _r(meter, 7, "100.40"), _r(meter, 0, "100.00")], now=now
    )
    assert again.outcomes == {"duplicate": 2, "out_of_order": 1}
    assert again.pending == []
    rows = await StoredReading.filter(meter_id=meter.id).order_by("taken_at")
    assert [r.billing for r in rows] == [
        BillingStatus.NONE,
        BillingStatus.NONE,
        BillingStatus.PENDING,
    ]
    assert Decimal(rows[2].energy) == Decimal("1.00")


async def test_suspect_readings_are_held_for_review_not_billed(db: None) -> None:
    meter = await _meter()
    now = T0 + timedelta(days=1)
    await ingest([_r(meter, 0, "100.00")], now=now)
    report = await ingest(
        [
            _r(meter, 0, "100.50"),  # same time, other registers: conflict
            _r(meter, 15, "180.00"),  # 80 kWh in 15 min on a 10 kW meter
            _r(meter, 30, "1.00"),  # fell to almost zero: a reset
        ],
        now=now,
    )
    assert report.outcomes == {"conflict": 1, "implausible": 1, "reset": 1}
    assert report.pending == []
    held = await HeldReading.filter(meter_id=meter.id).order_by("taken_at")
    assert [h.outcome for h in held] == ["conflict", "implausible", "reset"]
    assert await StoredReading.filter(meter_id=meter.id).count() == 1
    # The next plausible reading bills from the last accepted one.
    nxt = await ingest([_r(meter, 45, "101.50")], now=now)
    assert nxt.outcomes == {"accept": 1}
    assert await OperationLog.filter(action="reading.held").count() == 3


async def test_meter_billed_readings_mirror_money_and_are_never_billed(db: None) -> None:
    meter = await _meter(billing=MeterBilling.METER)
    money = MoneyRegister(remaining_fen=1234, purchase_count=7)
    report = await ingest(
        [_r(meter, 0, "5.00"), _r(meter, 15, "5.50", money=money, relay=RelayState.OPEN)],
        now=T0,
    )
    assert report.pending == []
    assert report.accounts == {meter.account_id}
    await meter.refresh_from_db()
    assert (meter.money_fen, meter.relay_state) == (1234, RelayState.OPEN)


async def test_offline_after_n_misses_logged_once_and_recovery_once(db: None) -> None:
    meter = await _meter()
    for _ in range(5):
        await record_misses([meter.id], {meter.id: "timeout"}, offline_after=3, now=T0)
    await meter.refresh_from_db()
    assert (meter.online, meter.missed_reads) == (False, 5)
    await ingest([_r(meter, 0, "1.00", source=ReadingSource.POLL)], now=T0)
    await ingest([_r(meter, 15, "1.10")], now=T0)
    await meter.refresh_from_db()
    assert (meter.online, meter.missed_reads) == (True, 0)
    actions = await OperationLog.filter(target_id=str(meter.id)).values_list("action", flat=True)
    assert sorted(actions) == ["meter.offline", "meter.online"]
