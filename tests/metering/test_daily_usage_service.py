"""Daily usage on the database: maintained by ingest and billing in their transactions,
exact across midnight, never double-counted by a replay, moved by a late reading, and the
same table when back-filled from stored readings and charges."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from server.billing.pipeline import process_readings
from server.metering.models import DailyUsage, Meter, MeterBilling
from server.metering.reading import Reading
from server.metering.service import daily_usage
from server.metering.service.readings import IncomingReading
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_meter
from workers.meters.base import MeterKind, MoneyRegister

SH = ZoneInfo("Asia/Shanghai")
DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH)


def reading(meter: Meter, when: datetime, total: str, **kw: Any) -> IncomingReading:
    return IncomingReading(meter.id, Reading(when, Decimal(total), kw.pop("bands", {})), **kw)


async def platform_meter(price: str = "1.00", **kw: Any) -> Meter:
    account = await create_account(credit_limit_fen=100_000)
    meter = await create_meter(account, rated_kw=Decimal(20), online=True, **kw)
    plan = await create_plan(
        account.site_id,
        "平价",
        TariffKind.ELECTRICITY if meter.kind == MeterKind.ELECTRICITY else TariffKind.WATER,
        {"kind": "flat", "unit": "kWh", "price": price},
        effective_from=at(DAY1, 0) - timedelta(days=30),
        actor="test",
    )
    await assign(account.id, plan.id)
    return meter


async def vacant_meter(**kw: Any) -> Meter:
    """A meter on no account: a vacant room, a master or common-area meter."""
    meter = await create_meter(await create_account(), rated_kw=Decimal(20), **kw)
    await Meter.filter(id=meter.id).update(account_id=None)
    await meter.refresh_from_db()
    return meter


async def days_of(meter: Meter) -> dict[date, tuple[Decimal, int | None]]:
    rows = await DailyUsage.filter(meter_id=meter.id).order_by("day")
    return {r.day: (Decimal(r.quantity_e4).scaleb(-4), r.amount_fen) for r in rows}


async def table() -> list[tuple[Any, ...]]:
    fields = ["meter_id", "account_id", "day", "quantity_e4", "band1_e4", "band2_e4"]
    fields += ["band3_e4", "band4_e4", "band5_e4", "amount_fen"]
    return [
        tuple(r) for r in await DailyUsage.all().order_by("meter_id", "day").values_list(*fields)
    ]


async def test_use_across_midnight_is_split_by_time_and_charged_per_day(db: None) -> None:
    meter = await platform_meter()
    now = at(DAY2, 12)
    await process_readings([reading(meter, at(DAY1, 23, 30), "100.00")], now=now)
    report = await process_readings([reading(meter, at(DAY2, 0, 30), "102.00")], now=now)
    assert report.billed == 1
    # 2.00 kWh × ¥1.00 = 200 fen over 23:30 → 00:30: half an hour on each day.
    assert await days_of(meter) == {
        DAY1: (Decimal("1.0000"), 100),
        DAY2: (Decimal("1.0000"), 100),
    }
    row = await DailyUsage.get(meter_id=meter.id, day=DAY1)
    assert row.account_id == meter.account_id
    # What a page reads: by account or by meter, a range of days.
    pages = await daily_usage.days(account_id=meter.account_id, start=DAY1, end=DAY2)
    assert pages == await daily_usage.days(meter_id=meter.id, start=DAY1, end=DAY2)
    assert [(d.day, d.quantity, d.amount_fen) for d in pages] == [
        (DAY1, Decimal("1.0000"), 100),
        (DAY2, Decimal("1.0000"), 100),
    ]
    assert await daily_usage.days(meter_id=meter.id, start=DAY2, end=DAY2) == pages[1:]


async def test_a_replay_counts_nothing_twice_and_a_late_reading_moves_use_not_money(
    db: None,
) -> None:
    meter = await platform_meter()
    now = at(DAY2, 12)
    first = [reading(meter, at(DAY1, 20), "100.00"), reading(meter, at(DAY2, 4), "108.00")]
    await process_readings(first, now=now)
    assert await days_of(meter) == {DAY1: (Decimal(4), 400), DAY2: (Decimal(4), 400)}
    await process_readings(list(reversed(first)), now=now)  # a gateway replays both
    assert await days_of(meter) == {DAY1: (Decimal(4), 400), DAY2: (Decimal(4), 400)}
    # A late reading: 7.00 of the 8.00 kWh were used by 23:00. The use moves to its day;
    # the money stays as the ledger charged it (20:00 → 04:00 billed as one delta).
    late = await process_readings([reading(meter, at(DAY1, 23), "107.00")], now=now)
    assert late.ingest.outcomes == {"out_of_order": 1} and late.billed == 0
    assert await days_of(meter) == {
        DAY1: (Decimal("7.2"), 400),
        DAY2: (Decimal("0.8"), 400),
    }
    await process_readings([reading(meter, at(DAY1, 23), "107.00")], now=now)  # replayed
    assert await days_of(meter) == {DAY1: (Decimal("7.2"), 400), DAY2: (Decimal("0.8"), 400)}


async def test_bands_and_the_multiplier(db: None) -> None:
    meter = await platform_meter(ct_ratio=10)
    now = at(DAY2, 12)
    await process_readings(
        [
            reading(meter, at(DAY1, 8), "10.00", bands={2: Decimal("4.00"), 3: Decimal("6.00")}),
            reading(meter, at(DAY1, 9), "10.50", bands={2: Decimal("4.50"), 3: Decimal("6.00")}),
        ],
        now=now,
    )
    row = await DailyUsage.get(meter_id=meter.id, day=DAY1)
    assert (row.quantity_e4, row.band2_e4, row.band3_e4, row.amount_fen) == (50000, 50000, 0, 500)
    (day,) = await daily_usage.days(meter_id=meter.id, start=DAY1, end=DAY1)
    assert day.bands == {2: Decimal("5.0000")}


async def test_meter_billed_master_and_vacant_meters_get_quantity_without_money(
    db: None,
) -> None:
    account = await create_account()
    billed_by_meter = await create_meter(account, billing=MeterBilling.METER, rated_kw=Decimal(20))
    vacant = await vacant_meter()
    water = await vacant_meter(kind=MeterKind.WATER)
    money = MoneyRegister(remaining_fen=5000, purchase_count=1)
    now = at(DAY2, 12)
    for m in (billed_by_meter, vacant, water):
        extra = {"money": money} if m is billed_by_meter else {}
        await process_readings(
            [reading(m, at(DAY1, 9), "5.000", **extra), reading(m, at(DAY1, 10), "6.250", **extra)],
            now=now,
        )
        assert await days_of(m) == {DAY1: (Decimal("1.25"), None)}
    assert (await DailyUsage.get(meter_id=vacant.id)).account_id is None
    assert (await DailyUsage.get(meter_id=billed_by_meter.id)).account_id == account.id


async def test_backfill_rebuilds_the_same_table_and_is_idempotent(db: None) -> None:
    meter = await platform_meter(price="0.73")
    other = await vacant_meter()
    now = at(DAY2, 12)
    totals = ["100.00", "100.37", "101.11", "101.50", "103.99", "104.00"]
    times = [at(DAY1, 21, 7), at(DAY1, 22, 50), at(DAY1, 23, 59), at(DAY2, 0, 1), at(DAY2, 3)]
    times.append(at(DAY2, 3, 15))
    items = [reading(meter, t, v) for t, v in zip(times, totals, strict=True)]
    items += [reading(other, t, v) for t, v in zip(times, totals, strict=True)]
    await process_readings(items[::2], now=now)  # every other one, then the rest late
    await process_readings(items[1::2], now=now)
    maintained = await table()
    assert sum(r[3] for r in maintained if r[0] == meter.id) == 40000
    charged = sum(r[-1] or 0 for r in maintained)
    assert charged > 0
    report = await daily_usage.backfill(tz=SH, meters_per_batch=1)
    assert (report.meters, report.readings) == (2, 12)
    assert await table() == maintained
    await DailyUsage.all().delete()
    await daily_usage.backfill(tz=SH)
    assert await table() == maintained
    await daily_usage.backfill(tz=SH)
    assert await table() == maintained
