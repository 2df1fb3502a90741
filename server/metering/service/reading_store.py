"""Ingest's database reads and writes, one statement per table per batch.

Used by readings.py only. PostgreSQL gets array parameters, `unnest` and one LATERAL query
for every meter's neighbours; SQLite (the embedded mode, small parks) gets plain statements
per meter. Rows come back as small dataclasses, not ORM objects: a 20,000-meter round would
otherwise spend most of its time building models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from server.ledger.sql import Col, fetch, in_list, insert_rows, is_pg
from server.metering.reading import Reading

_FOUR = Decimal("0.0001")


def as_datetime(value: Any) -> datetime:
    """asyncpg gives datetimes; SQLite gives the text Tortoise stored (always UTC)."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _opt_dt(value: Any) -> datetime | None:
    return None if value is None else as_datetime(value)


def bands_of(raw: Any) -> dict[int, Decimal]:
    data = json.loads(raw) if isinstance(raw, str) else (raw or {})
    return {int(k): Decimal(str(v)) for k, v in data.items()}


def reading_of(taken_at: Any, total: Any, bands: Any) -> Reading:
    """A stored reading's registers from its columns (as the driver gives them back)."""
    return Reading(as_datetime(taken_at), Decimal(str(total)), bands_of(bands))


def bands_json(bands: Any) -> str:
    """{"1":"12.34",…}: keys are ints and values Decimals, so nothing needs escaping."""
    if not bands:
        return "{}"
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in sorted(bands.items())) + "}"


@dataclass(slots=True)
class MeterState:
    """The columns ingest reads and writes of one locked meter row."""

    id: int
    site_id: int
    account_id: int | None
    kind: str
    billing: str
    multiplier: int
    rated_kw: Decimal
    removed_at: datetime | None  # set when the meter was replaced or taken away
    # Written back (the order of `MUTABLE`):
    missed_reads: int
    online: bool
    last_reading_at: datetime | None
    relay_state: str
    relay_confirmed_at: datetime | None
    trip_cause: str | None
    protected: bool
    money_fen: int | None
    money_read_at: datetime | None

    def mutable(self) -> tuple[Any, ...]:
        return (
            self.missed_reads, self.online, self.last_reading_at, self.relay_state,
            self.relay_confirmed_at, self.trip_cause, self.protected, self.money_fen,
            self.money_read_at,
        )  # fmt: skip


MUTABLE = [
    Col("missed_reads", "int"), Col("online", "bool"), Col("last_reading_at", "timestamptz"),
    Col("relay_state", "text"), Col("relay_confirmed_at", "timestamptz"),
    Col("trip_cause", "text"), Col("protected", "bool"), Col("money_fen", "bigint"),
    Col("money_read_at", "timestamptz"),
]  # fmt: skip


async def lock_meters(conn: BaseDBAsyncClient, ids: Sequence[int]) -> dict[int, MeterState]:
    """Lock the meter rows (in id order) and return their state."""
    where, params = in_list(conn, "id", sorted(ids), 1, "int")
    lock = " FOR UPDATE" if is_pg(conn) else ""
    rows = await fetch(
        conn,
        "SELECT id, site_id, account_id, kind, billing, ct_ratio * pt_ratio AS multiplier,"
        " rated_kw, CASE WHEN status = 'active' THEN NULL ELSE removed_at END AS removed_at,"
        " missed_reads, online, last_reading_at, relay_state, relay_confirmed_at,"
        " trip_cause, protected, money_fen, money_read_at"
        f" FROM meter WHERE {where} ORDER BY id{lock}",
        params,
    )
    return {
        r["id"]: MeterState(
            r["id"],
            r["site_id"],
            r["account_id"],
            r["kind"],
            r["billing"],
            int(r["multiplier"]),
            Decimal(str(r["rated_kw"])),
            _opt_dt(r["removed_at"]),
            int(r["missed_reads"]),
            bool(r["online"]),
            _opt_dt(r["last_reading_at"]),
            r["relay_state"],
            _opt_dt(r["relay_confirmed_at"]),
            r["trip_cause"],
            bool(r["protected"]),
            r["money_fen"],
            _opt_dt(r["money_read_at"]),
        )
        for r in rows
    }


async def save_meters(conn: BaseDBAsyncClient, meters: Iterable[MeterState]) -> None:
    rows = [(m.id, *m.mutable()) for m in meters]
    if not rows:
        return
    names = [c.name for c in MUTABLE]
    if is_pg(conn):
        arrays = [list(col) for col in zip(*rows, strict=True)]
        types = ["int", *(c.pg_type for c in MUTABLE)]
        unnest = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
        sets = ", ".join(f"{n} = u.{n}" for n in names)
        await conn.execute_query(
            f"UPDATE meter AS m SET {sets} FROM unnest({unnest}) AS u(id, {', '.join(names)})"
            " WHERE m.id = u.id",
            arrays,
        )
        return
    sets = ", ".join(f"{n} = ?" for n in names)
    await conn.execute_many(f"UPDATE meter SET {sets} WHERE id = ?", [[*r[1:], r[0]] for r in rows])


_READING = "SELECT meter_id, taken_at, total, bands FROM meter_reading WHERE meter_id = "


async def neighbours(
    conn: BaseDBAsyncClient, spans: dict[int, tuple[datetime, datetime]]
) -> dict[int, list[Reading]]:
    """Per meter, the accepted readings that can neighbour a reading in [lo, hi]: the latest
    at or before lo, all within (lo, hi], and the earliest after hi — in time order."""
    out: dict[int, list[Reading]] = {m: [] for m in spans}
    if not spans:
        return out
    ids = sorted(spans)
    los = [spans[m][0].astimezone(UTC) for m in ids]
    his = [spans[m][1].astimezone(UTC) for m in ids]
    if is_pg(conn):
        rows = await fetch(
            conn,
            "SELECT r.* FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[])"
            " AS b(m, lo, hi) CROSS JOIN LATERAL ("
            f"({_READING}b.m AND taken_at <= b.lo ORDER BY taken_at DESC LIMIT 1)"
            f" UNION ALL ({_READING}b.m AND taken_at > b.lo AND taken_at <= b.hi)"
            f" UNION ALL ({_READING}b.m AND taken_at > b.hi ORDER BY taken_at LIMIT 1)) r",
            [ids, los, his],
        )
    else:
        rows = []
        for m, lo, hi in zip(ids, los, his, strict=True):
            rows += await fetch(
                conn,
                f"SELECT * FROM ({_READING}$1 AND taken_at <= $2 ORDER BY taken_at DESC LIMIT 1)"
                f" UNION ALL SELECT * FROM ({_READING}$1 AND taken_at > $2 AND taken_at <= $3)"
                f" UNION ALL SELECT * FROM ({_READING}$1 AND taken_at > $3"
                " ORDER BY taken_at LIMIT 1)",
                [m, lo, hi],
            )
    for r in rows:
        out[r["meter_id"]].append(reading_of(r["taken_at"], r["total"], r["bands"]))
    for timeline in out.values():
        timeline.sort(key=lambda x: x.taken_at)
    return out


READING_COLS = [
    Col("meter_id", "int"), Col("taken_at", "timestamptz"), Col("total", "text", "numeric"),
    Col("bands", "text", "jsonb"), Col("outcome", "text"), Col("source", "text"),
    Col("billing", "text"), Col("prev_taken_at", "timestamptz"), Col("energy", "text"),
    Col("billing_error", "text"), Col("money_fen", "bigint"), Col("purchase_count", "int"),
    Col("received_at", "timestamptz"),
]  # fmt: skip
HELD_COLS = [
    Col("meter_id", "int"), Col("taken_at", "timestamptz"), Col("total", "text", "numeric"),
    Col("bands", "text", "jsonb"), Col("outcome", "text"), Col("reason", "text"),
    Col("source", "text"), Col("status", "text"), Col("created_at", "timestamptz"),
]  # fmt: skip


def total_text(total: Decimal) -> str:
    return str(total.quantize(_FOUR))


async def insert_new(
    conn: BaseDBAsyncClient, table: str, cols: Sequence[Col], rows: Sequence[Sequence[Any]]
) -> dict[tuple[int, datetime], int]:
    """Insert rows keyed (meter_id, taken_at) unless present; {(meter, taken_at): id} of the
    rows this call inserted (a row a concurrent writer stored first is absent)."""
    inserted = await insert_rows(
        conn, table, cols, rows,
        suffix="ON CONFLICT (meter_id, taken_at) DO NOTHING RETURNING id, meter_id, taken_at",
    )  # fmt: skip
    return {(r["meter_id"], as_datetime(r["taken_at"])): int(r["id"]) for r in inserted}


async def set_billing(conn: BaseDBAsyncClient, results: Sequence[tuple[int, str, str]]) -> None:
    """(reading id, billing status, error) for each billed or refused reading."""
    if not results:
        return
    if is_pg(conn):
        ids, statuses, errors = (list(c) for c in zip(*results, strict=True))
        await conn.execute_query(
            "UPDATE meter_reading AS r SET billing = u.s, billing_error = u.e"
            " FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, s, e)"
            " WHERE r.id = u.id",
            [ids, statuses, errors],
        )
        return
    await conn.execute_many(
        "UPDATE meter_reading SET billing = ?, billing_error = ? WHERE id = ?",
        [[s, e, i] for i, s, e in results],
    )
