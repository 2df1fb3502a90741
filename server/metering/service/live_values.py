"""Live values (`meter_live`): the latest snapshot of each meter, one row per meter, updated
in place — what room monitoring and the mini-program show.

Live values come on their own cadence: a reading carries `IncomingReading.instant` (possibly
with every value None: a water meter has no U, I, PF; an older gateway sends none) only from a
*live round* — polled buses every `settings.live_every_poll_rounds`-th round, read with the
drivers' `read_snapshot`; gateways every `live_every_gateway_rounds`-th round. Other rounds
read what billing needs and leave this table alone (the meter row keeps the newest
`last_reading_at` and confirmed relay state of every round).

`record(items)` writes a batch with one upsert: per meter the newest live-round reading's
time, total register and relay/valve state, and its U, I, P, PF when it has them
(`instant_at`: their time; a round without them keeps the last ones). Anything older than
what is stored is ignored, so a gateway replaying last week's history or a slow batch
finishing late never moves the row back. Readings of meters the platform does not know are
skipped. Held readings (conflicts, resets) still show here: the row is what the meter said,
not what was billed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.ledger.sql import Col, is_pg, q
from server.metering.models import LiveValues
from server.metering.service.readings import IncomingReading
from server.metering.vocabulary import Instant, RelayState

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


_NOTHING = Instant()  # a live round's reading without U, I, P, PF


def rows_of(items: Iterable[IncomingReading]) -> list[tuple[Any, ...]]:
    """One row per meter: its newest reading of a live round (`instant` not None), and the
    newest U, I, P, PF among them."""
    newest: dict[int, IncomingReading] = {}
    valued: dict[int, IncomingReading] = {}
    for it in items:
        if it.instant is None:
            continue
        have = newest.get(it.meter_id)
        at = it.reading.taken_at
        if have is None or at > have.reading.taken_at:
            newest[it.meter_id] = it
        if it.instant != _NOTHING:
            have = valued.get(it.meter_id)
            if have is None or at > have.reading.taken_at:
                valued[it.meter_id] = it
    stamp = datetime.now(UTC)
    unknown = RelayState.UNKNOWN.value
    rows = []
    for meter_id in sorted(newest):
        it, v = newest[meter_id], valued.get(meter_id)
        inst = v.instant if v is not None and v.instant is not None else _NOTHING
        values = (inst.voltage, inst.current, inst.power, inst.power_factor)
        rows.append(
            (
                meter_id, it.reading.taken_at.astimezone(UTC), str(it.reading.total),
                it.relay.value if it.relay is not None else unknown,
                v.reading.taken_at.astimezone(UTC) if v is not None else None,
                *(None if x is None else str(x) for x in values), stamp,
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


async def latest(meter_ids: Iterable[int]) -> dict[int, LiveValues]:
    """The live row of each of `meter_ids` that has one (one query)."""
    rows = await LiveValues.filter(meter_id__in=list(meter_ids))
    return {r.meter_id: r for r in rows}
