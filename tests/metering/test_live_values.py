"""Live values: one row per meter, updated in place by one upsert per batch from the readings
of live rounds (`instant` set); the newest wins, older values (a replay, a slow batch) are
ignored; U/I/P/PF keep their own time and survive a live round without them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from server.billing.pipeline import process_readings
from server.metering.models import LiveValues
from server.metering.reading import Reading
from server.metering.service import live_values
from server.metering.service.readings import IncomingReading
from tests.factories import create_meter
from workers.meters.base import Instant, RelayState

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _r(meter_id: int, minutes: int, total: str, **kw: object) -> IncomingReading:
    return IncomingReading(
        meter_id,
        Reading(T0 + timedelta(minutes=minutes), Decimal(total), kw.pop("bands", {})),
        **kw,
    )  # type: ignore[arg-type]


def _i(u: str, i: str, p: str, pf: str) -> Instant:
    return Instant(Decimal(u), Decimal(i), Decimal(p), Decimal(pf))


async def test_the_newest_values_are_kept_one_row_per_meter(db: None) -> None:
    meter = await create_meter(rated_kw=Decimal(20))
    await live_values.record(
        [
            _r(
                meter.id,
                0,
                "100.00",
                relay=RelayState.CLOSED,
                instant=_i("220.1", "5", "1.1", "0.95"),
            ),
            _r(
                meter.id,
                15,
                "101.00",
                relay=RelayState.CLOSED,
                instant=_i("221.0", "6", "1.3", "0.96"),
            ),
            _r(meter.id, 30, "102.00", relay=RelayState.OPEN, instant=Instant()),  # no U/I/P/PF
            _r(meter.id, 45, "103.00", relay=RelayState.OPEN),  # not a live round: ignored
            _r(999_999, 30, "1.00"),  # a meter the platform does not know
        ]
    )
    row = await LiveValues.get(meter_id=meter.id)
    assert (row.read_at, row.total, row.relay_state) == (
        T0 + timedelta(minutes=30),
        Decimal("102.0000"),
        RelayState.OPEN,
    )
    assert row.instant_at == T0 + timedelta(minutes=15)
    assert (row.voltage, row.current, row.power, row.power_factor) == (
        Decimal("221.0000"), Decimal("6.0000"), Decimal("1.3000"), Decimal("0.9600"),
    )  # fmt: skip
    assert await LiveValues.all().count() == 1

    # Older than stored: a replayed history message changes nothing.
    await live_values.record(
        [_r(meter.id, 5, "100.50", relay=RelayState.CLOSED, instant=_i("230", "9", "2", "0.9"))]
    )
    again = await LiveValues.get(meter_id=meter.id)
    assert (again.read_at, again.total, again.voltage) == (row.read_at, row.total, row.voltage)

    # Newer instant values without a newer reading time still land (their own time).
    await live_values.record(
        [_r(meter.id, 30, "102.00", relay=RelayState.OPEN, instant=_i("0", "0", "0", "1"))]
    )
    last = await LiveValues.get(meter_id=meter.id)
    assert (last.instant_at, last.power, last.read_at) == (
        T0 + timedelta(minutes=30),
        Decimal("0.0000"),
        T0 + timedelta(minutes=30),
    )
    assert await LiveValues.all().count() == 1


async def test_the_pipeline_records_live_values_of_every_batch(db: None) -> None:
    meters = [await create_meter(rated_kw=Decimal(20)) for _ in range(3)]
    now = T0 + timedelta(hours=1)
    batch = [_r(m.id, 0, "10.00", relay=RelayState.CLOSED) for m in meters]
    await process_readings(batch, now=now)  # a billing-only round
    assert await LiveValues.all().count() == 0
    live = _i("220", "1", "0.2", "0.9")
    await process_readings(
        [_r(m.id, 15, "10.50", relay=RelayState.CLOSED, instant=live) for m in meters], now=now
    )
    rows = await LiveValues.all().order_by("meter_id")
    assert [r.meter_id for r in rows] == [m.id for m in meters]
    assert set(await live_values.latest([meters[0].id, 424242])) == {meters[0].id}
    assert {(r.total, r.relay_state, r.voltage) for r in rows} == {
        (Decimal("10.5000"), RelayState.CLOSED, Decimal("220.0000"))
    }
