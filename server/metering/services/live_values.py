"""Live values (`meter_live`): the latest reading of each meter, one row per meter, updated
in place — what room monitoring and the mini-program show.

`record(items)` takes a batch of incoming readings (any source) and writes it with one
upsert: per meter the newest reading's time, total register and relay/valve state, and the
newest U, I, P, PF the batch carries (polled buses read them every
`settings.live_every_poll_rounds`-th round, gateways send them — `instant_at` is their own
time). Anything older than what is stored is ignored, so a gateway replaying last week's
history or a slow batch finishing late never moves the row back. Readings of meters the
platform does not know are skipped. Held readings (conflicts, resets) still show here: the
row is what the meter said, not what was billed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.ledger.sql import Col, is_pg, q
from server.metering.services.readings import IncomingReading
from workers.meters.base import Instant, RelayState

INSTANT = ("voltage", "current", "power", "power_factor")
COLS = [
    Col("meter_id", "int"), Col("read_at", "timestamptz"), Col("total", "text", "numeric"),
    Col("relay_state", "text"), Col("instant_at", "timestamptz"),
    *(Col(n, "text", "numeric") for n in INSTANT), Col("updated_at", "timestamptz"),
]  # fmt: skip
_NEWER = "excluded.read_at > meter_live.read_at"
_INSTANT_NEWER = (
    "excluded.instant_at IS NOT NULL AND (meter_live.instant_at IS NULL"
    " OR excluded.instant_at > meter_live.instant_at)"
)


def _set(column: str, when: str) -> str:
    return f"{column} = CASE WHEN {when} THEN excluded.{column} ELSE meter_live.{column} END"


UPSERT = (
    "ON CONFLICT (meter_id) DO UPDATE SET "
    + ", ".join(
        [_set(c, _NEWER) for c in ("read_at", "total", "relay_state")]
        + [_set(c, _INSTANT_NEWER) for c in ("instant_at", *INSTANT)]
        + ["updated_at = excluded.updated_at"]
    )
    + f" WHERE {_NEWER} OR ({_INSTANT_NEWER})"
)


def has_values(instant: Instant | None) -> bool:
    return instant is not None and any(getattr(instant, n) is not None for n in INSTANT)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def rows_of(items: Iterable[IncomingReading]) -> list[tuple[Any, ...]]:
    """One row per meter: its newest reading, and the newest instant values of the batch."""
    newest: dict[int, IncomingReading] = {}
    instant: dict[int, IncomingReading] = {}
    for it in items:
        have = newest.get(it.meter_id)
        if have is None or it.taken_at > have.taken_at:
            newest[it.meter_id] = it
        if has_values(it.instant):
            have = instant.get(it.meter_id)
            if have is None or it.taken_at > have.taken_at:
                instant[it.meter_id] = it
    stamp = datetime.now(UTC)
    rows = []
    for meter_id in sorted(newest):
        it, inst = newest[meter_id], instant.get(meter_id)
        values = inst.instant if inst is not None and inst.instant is not None else Instant()
        relay = it.relay.value if it.relay is not None else RelayState.UNKNOWN.value
        rows.append(
            (
                meter_id, it.taken_at.astimezone(UTC), str(it.total), relay,
                inst.taken_at.astimezone(UTC) if inst is not None else None,
                *(_text(getattr(values, n)) for n in INSTANT), stamp,
            )
        )  # fmt: skip
    return rows


async def record(items: Sequence[IncomingReading], conn: BaseDBAsyncClient | None = None) -> None:
    """Upsert the batch's live values: one statement (see the module docstring)."""
    rows = rows_of(items)
    if not rows:
        return
    conn = conn or connections.get("default")
    names = ", ".join(c.name for c in COLS)
    known = "EXISTS (SELECT 1 FROM meter m WHERE m.id = {})"
    if is_pg(conn):
        arrays = [list(col) for col in zip(*rows, strict=True)]
        unnest = ", ".join(f"${i + 1}::{c.pg_type}[]" for i, c in enumerate(COLS))
        select = ", ".join(
            f"u.c{i}" + (f"::{c.cast}" if c.cast else "") for i, c in enumerate(COLS)
        )
        alias = ", ".join(f"c{i}" for i in range(len(COLS)))
        await conn.execute_query(
            f"INSERT INTO meter_live ({names}) SELECT {select} FROM unnest({unnest}) AS u({alias})"
            f" WHERE {known.format('u.c0')} {UPSERT}",
            arrays,
        )
        return
    # SQLite (embedded, small parks): one prepared statement run for each row.
    marks = ", ".join(f"${i + 1}" for i in range(len(COLS)))
    await conn.execute_many(
        q(
            conn,
            f"INSERT INTO meter_live ({names}) SELECT {marks} WHERE {known.format('$1')} {UPSERT}",
        ),
        [list(r) for r in rows],
    )
