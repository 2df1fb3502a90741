"""Daily usage rows (`daily_usage`): written in the transactions of the readings and charges
they derive from, one upsert per batch; never recomputed from raw readings on a page request.

- `record_ingested` — inside ingest's transaction: each stored reading changes the days of
  the pair(s) it forms with its neighbours (`daily.on_insert`);
- `record_charged` — inside billing's transaction: each reading billed *now* adds its
  ledger charge (usage_charge.amount_fen) to the days of its billed interval; a duplicate
  adds nothing, so a replay never counts twice;
- `backfill` — the same rows from stored readings and usage_charge rows (`shuidian usage
  backfill`); idempotent.

The upsert adds to what is stored (`quantity_e4 = daily_usage.quantity_e4 +
excluded.quantity_e4`): integer units add exactly in SQL on both databases, and two batches
that touch the same day add up instead of overwriting each other. Rows go in in (meter, day)
order so two concurrent batches lock them in the same order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.core.settings import load_settings
from server.ledger.sql import Col, fetch_records, in_list, insert_rows, is_pg, q
from server.metering import daily
from server.metering.ingest import Outcome
from server.metering.models import DailyUsage, Meter
from server.metering.reading import Reading
from server.metering.service import reading_store as store

BANDS = (1, 2, 3, 4, 5)  # band columns band1_e4 … band5_e4; other band numbers are not kept

COLS = [
    Col("meter_id", "int"), Col("account_id", "int"), Col("day", "date"),
    Col("quantity_e4", "bigint"), *(Col(f"band{b}_e4", "bigint") for b in BANDS),
    Col("amount_fen", "bigint"), Col("updated_at", "timestamptz"),
]  # fmt: skip
_ADD = ", ".join(
    f"{c} = daily_usage.{c} + excluded.{c}"
    for c in ["quantity_e4", *(f"band{b}_e4" for b in BANDS)]
)
UPSERT = (
    f"ON CONFLICT (meter_id, day) DO UPDATE SET {_ADD},"
    " amount_fen = CASE WHEN excluded.amount_fen IS NULL THEN daily_usage.amount_fen"
    " ELSE COALESCE(daily_usage.amount_fen, 0) + excluded.amount_fen END,"
    " account_id = COALESCE(excluded.account_id, daily_usage.account_id),"
    " updated_at = excluded.updated_at"
)


@dataclass(frozen=True, slots=True)
class Inserted:
    """A reading ingest stored, between its accepted neighbours at that moment."""

    meter_id: int
    account_id: int | None
    multiplier: int
    prev: Reading | None
    new: Reading
    following: Reading | None


class Days:
    """Per (meter, day): [account, quantity, band 1…5, amount or None] (integer units).

    A row's account is the last non-None one added: the meter's account when a reading was
    stored, the charged account when money was added."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, date], list[Any]] = {}

    def add(self, meter_id: int, account_id: int | None, items: Iterable[daily.DayUse]) -> None:
        for d in items:
            row = self.rows.get((meter_id, d.day))
            if row is None:
                row = self.rows[(meter_id, d.day)] = [None, *[0] * (1 + len(BANDS)), None]
            if account_id is not None:
                row[0] = account_id
            row[1] += d.quantity
            for band, units in d.bands.items():
                if band in BANDS:
                    row[1 + band] += units
            if d.amount_fen is not None:
                row[-1] = (row[-1] or 0) + d.amount_fen

    def values(self, conn: BaseDBAsyncClient) -> list[tuple[Any, ...]]:
        stamp = datetime.now(UTC)
        pg = is_pg(conn)
        return [
            (meter, row[0], day if pg else day.isoformat(), *row[1:], stamp)
            for (meter, day), row in sorted(self.rows.items())
        ]


def _tz(tz: ZoneInfo | None) -> ZoneInfo:
    return tz if tz is not None else _settings_zone()


def zone() -> ZoneInfo:
    """The time zone days are counted in (settings.timezone)."""
    return _settings_zone()


@functools.cache
def _settings_zone() -> ZoneInfo:
    """The configured time zone, read once per process: loading the settings reads the
    environment and the TOML file (~0.4 ms), and every ingest and billing batch needs it."""
    return load_settings().tz


async def write(conn: BaseDBAsyncClient, days: Days) -> None:
    """Add `days` to the stored rows: one statement."""
    if days.rows:
        await insert_rows(conn, "daily_usage", COLS, days.values(conn), suffix=UPSERT)


async def record_ingested(
    conn: BaseDBAsyncClient, items: Sequence[Inserted], *, tz: ZoneInfo | None = None
) -> None:
    """The days' changes of the readings ingest just stored (in its transaction)."""
    zone, days = _tz(tz), Days()
    for it in items:
        days.add(
            it.meter_id,
            it.account_id,
            daily.on_insert(it.prev, it.new, it.following, it.multiplier, zone),
        )
    await write(conn, days)


@dataclass(frozen=True, slots=True)
class Charged:
    """A reading billing charged now: its billed interval and the ledger's amount."""

    meter_id: int
    account_id: int | None
    prev_at: datetime
    at: datetime
    amount_fen: int


async def record_charged(
    conn: BaseDBAsyncClient, items: Sequence[Charged], *, tz: ZoneInfo | None = None
) -> None:
    """The days' money of the readings billing just charged (in its transaction)."""
    zone, days = _tz(tz), Days()
    nothing = daily.Use(0)
    for c in items:
        money = daily.spread(nothing, c.prev_at, c.at, zone, c.amount_fen)
        days.add(c.meter_id, c.account_id, money)
    await write(conn, days)


@dataclass
class BackfillReport:
    meters: int = 0
    readings: int = 0
    charges: int = 0
    days: int = 0


async def backfill(*, tz: ZoneInfo | None = None, meters_per_batch: int = 100) -> BackfillReport:
    """Rebuild every meter's rows from its stored readings and usage_charge rows.

    Meter by meter batch, each in one transaction that locks the meter rows (ingest waits)
    and replaces the batch's rows: running it again gives the same table."""
    zone, report = _tz(tz), BackfillReport()
    meters = (
        await Meter.all().order_by("id").values_list("id", "account_id", "ct_ratio", "pt_ratio")
    )
    for i in range(0, len(meters), meters_per_batch):
        chunk = meters[i : i + meters_per_batch]
        async with in_transaction() as conn:
            ids = [m[0] for m in chunk]
            await store.lock_meters(conn, ids)
            days = Days()
            timelines = await _timelines(conn, ids)
            for meter_id, account_id, ct, pt in chunk:
                for timeline in timelines.get(meter_id, []):
                    report.readings += len(timeline)
                    days.add(meter_id, account_id, daily.timeline_usage(timeline, ct * pt, zone))
            charges = await _charges(conn, ids)
            report.charges += len(charges)
            for c in charges:
                days.add(
                    c.meter_id, c.account_id,
                    daily.spread(daily.Use(0), c.prev_at, c.at, zone, c.amount_fen),
                )  # fmt: skip
            where, params = in_list(conn, "meter_id", ids, 1, "int")
            await conn.execute_query(q(conn, f"DELETE FROM daily_usage WHERE {where}"), params)
            await write(conn, days)
            report.meters += len(chunk)
            report.days += len(days.rows)
    return report


async def _timelines(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, list[list[Reading]]]:
    """Each meter's readings in time order, cut where a person accepted a fall (a RESTART
    reading starts a new run: no use is counted across it, as ingest counted none)."""
    where, params = in_list(conn, "meter_id", ids, 1, "int")
    rows = await fetch_records(
        conn,
        f"SELECT meter_id, taken_at, total, bands, outcome FROM meter_reading WHERE {where}"
        " ORDER BY meter_id, taken_at",
        params,
    )
    out: dict[int, list[list[Reading]]] = {}
    for r in rows:
        reading = store.reading_of(r["taken_at"], r["total"], r["bands"])
        runs = out.setdefault(r["meter_id"], [[]])
        if r["outcome"] == Outcome.RESTART.value and runs[-1]:
            runs.append([])
        runs[-1].append(reading)
    return out


async def _charges(conn: BaseDBAsyncClient, ids: list[int]) -> list[Charged]:
    where, params = in_list(conn, "meter_id", ids, 1, "int")
    rows = await fetch_records(
        conn,
        "SELECT meter_id, account_id, prev_reading_at, reading_at, amount_fen"
        f" FROM usage_charge WHERE {where}",
        params,
    )
    return [
        Charged(
            r["meter_id"],
            r["account_id"],
            store.as_datetime(r["prev_reading_at"]),
            store.as_datetime(r["reading_at"]),
            int(r["amount_fen"]),
        )
        for r in rows
    ]


# -- reading it (the windows) ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Day:
    """One meter's day as pages show it: kWh / m³ as Decimals (`bands`: those with use),
    money in fen (None: the platform charged nothing)."""

    meter_id: int
    account_id: int | None
    day: date
    quantity: Decimal
    bands: dict[int, Decimal]
    amount_fen: int | None


async def days(
    *, account_id: int | None = None, meter_id: int | None = None, start: date, end: date
) -> list[Day]:
    """The stored days in [start, end] of an account's meters or of one meter, by meter, day."""
    if (account_id is None) == (meter_id is None):
        raise ValueError("give exactly one of account_id and meter_id")
    query = DailyUsage.filter(day__gte=start, day__lte=end)
    query = (
        query.filter(account_id=account_id) if meter_id is None else query.filter(meter_id=meter_id)
    )
    return [
        Day(
            r.meter_id,
            r.account_id,
            r.day,
            daily.from_units(r.quantity_e4),
            {
                b: daily.from_units(getattr(r, f"band{b}_e4"))
                for b in BANDS
                if getattr(r, f"band{b}_e4")
            },
            r.amount_fen,
        )
        for r in await query.order_by("meter_id", "day")
    ]
