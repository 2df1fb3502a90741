"""Daily usage: how the use between two readings is shared among local calendar days.

The rules (docs/daily-usage.md, with worked examples):

- A meter's daily usage is the sum, over each pair of *consecutive* accepted readings, of
  the use between them (how far the registers advanced × CT×PT, by
  `server.metering.reading.advance`, the roll-over rule ingest and billing apply),
  spread over the local days (`tz`, Asia/Shanghai by default) the pair's interval covers.
- **Midnight.** A pair whose interval straddles one or more midnights is split **by time,
  proportionally**: each day gets the share of the interval that falls in it. The split is
  exact: quantities are whole units of 0.0001 kWh / m³ (`QUANTUM`), money whole fen, and
  each is divided with the largest-remainder method (`server.core.money.split_by_weights`),
  so the days' parts add up to the whole, to the unit. A reading at exactly 00:00 closes the
  day before: the interval (23:45, 00:00] lies wholly in it.
- **Late readings.** A reading that lands between two stored ones (P, F) replaces the pair
  (P, F) by (P, N) and (N, F): `on_insert` returns the days' changes, which are negative
  where the finer pair moved use out of a day. The table therefore always equals the sum
  over the current consecutive pairs, whatever order the readings came in, and a back-fill
  from stored readings gives the same rows.
- **Money** is what the ledger charged for a reading (usage_charge.amount_fen), spread over
  the days of the interval that reading was billed for (previous → this reading) with the
  same time weights. A late reading moves no money: its interval was already billed whole.

Quantities here are ints in `QUANTUM` units; bands map band number → units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from server.core.money import split_by_weights
from server.metering.reading import MODULUS, Reading, advance

QUANTUM = Decimal("0.0001")  # kWh or m³ per stored unit (registers are stored to 4 places)
UNITS_PER = 10_000
_MICRO = timedelta(microseconds=1)


def to_units(quantity: Decimal) -> int:
    """kWh / m³ → whole `QUANTUM` units (quantities are kept to four places)."""
    return int(quantity.quantize(QUANTUM).scaleb(4))


def from_units(units: int) -> Decimal:
    return Decimal(units).scaleb(-4).quantize(QUANTUM)


@dataclass(frozen=True, slots=True)
class Use:
    """Use between two readings, multiplier applied, in `QUANTUM` units."""

    quantity: int
    bands: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DayUse:
    """One local day's share of a use (and of its charge, when there is one)."""

    day: date
    quantity: int = 0
    bands: Mapping[int, int] = field(default_factory=dict)
    amount_fen: int | None = None  # None: no money moved (not charged by the platform)

    def negated(self) -> DayUse:
        return DayUse(
            self.day,
            -self.quantity,
            {b: -v for b, v in self.bands.items()},
            None if self.amount_fen is None else -self.amount_fen,
        )


def pair_use(prev: Reading, curr: Reading, multiplier: int) -> Use:
    """The use between two consecutive accepted readings (raw registers, before CT×PT).

    A register below the previous one wrapped: ingest accepted the pair as a ROLLOVER by the
    same `advance` and holds every other fall for review, so none reaches here (one would
    raise `RegisterWentBack`). Bands count only when both readings carry the same bands, as
    in `ingest._band_usage`. Registers count to four places, as stored.
    """
    total = _advanced(prev.total, curr.total) * multiplier
    bands: dict[int, int] = {}
    before = prev.bands
    if before and before.keys() == curr.bands.keys():
        for b, v in curr.bands.items():
            bands[b] = _advanced(before[b], v) * multiplier
    return Use(total, bands)


def _advanced(prev: Decimal, curr: Decimal) -> int:
    """How far a register advanced, in `QUANTUM` units of its stored (four-place) values."""
    return int(advance(prev.quantize(QUANTUM), curr.quantize(QUANTUM), MODULUS).scaleb(4))


def day_weights(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[date, int]]:
    """The local days the interval (start, end] covers, each with its microseconds in it.

    A zero-length interval belongs wholly to the day of `end`.
    """
    if end < start:
        raise ValueError("an interval must not end before it starts")
    first = _local_day(start, tz)
    last = _local_day(end - _MICRO, tz) if end > start else _local_day(end, tz)
    if first >= last:  # the common case: both readings on one day
        return [(last, 1)]
    out: list[tuple[date, int]] = []
    cursor, day = start.astimezone(UTC), first
    while day <= last:
        midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
        stop = min(midnight, end.astimezone(UTC))
        micros = (stop - cursor) // _MICRO  # UTC arithmetic: a DST day is 23 or 25 hours
        if micros > 0:
            out.append((day, micros))
        cursor, day = stop, day + timedelta(days=1)
    return out


@lru_cache(maxsize=4096)  # a round's thousands of readings share a few instants
def _local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def spread(
    use: Use, start: datetime, end: datetime, tz: ZoneInfo, amount_fen: int | None = None
) -> list[DayUse]:
    """Share `use` (and `amount_fen`) among the local days of (start, end] by time."""
    weights = day_weights(start, end, tz)
    if len(weights) == 1:
        return [DayUse(weights[0][0], use.quantity, dict(use.bands), amount_fen)]
    ws = [w for _, w in weights]
    quantities = split_by_weights(use.quantity, ws)
    bands = {b: split_by_weights(v, ws) for b, v in use.bands.items()}
    money = [None] * len(ws) if amount_fen is None else split_by_weights(amount_fen, ws)
    return [
        DayUse(day, quantities[i], {b: parts[i] for b, parts in bands.items()}, money[i])
        for i, (day, _) in enumerate(weights)
    ]


def on_insert(
    prev: Reading | None,
    new: Reading,
    following: Reading | None,
    multiplier: int,
    tz: ZoneInfo,
) -> list[DayUse]:
    """The days' changes when `new` joins a meter's accepted readings between `prev` and
    `following` (either may be None): + (prev, new) + (new, following) − (prev, following)."""
    out: list[DayUse] = []
    if prev is not None:
        out += spread(pair_use(prev, new, multiplier), prev.taken_at, new.taken_at, tz)
    if following is not None:
        out += spread(pair_use(new, following, multiplier), new.taken_at, following.taken_at, tz)
        if prev is not None:
            whole = pair_use(prev, following, multiplier)
            out += [d.negated() for d in spread(whole, prev.taken_at, following.taken_at, tz)]
    return out


def timeline_usage(readings: Iterable[Reading], multiplier: int, tz: ZoneInfo) -> list[DayUse]:
    """Every consecutive pair of one meter's readings (in time order), spread over days."""
    out: list[DayUse] = []
    prev: Reading | None = None
    for r in readings:
        if prev is not None:
            out += spread(pair_use(prev, r, multiplier), prev.taken_at, r.taken_at, tz)
        prev = r
    return out


def add(into: dict[date, DayUse], items: Iterable[DayUse]) -> dict[date, DayUse]:
    """Sum `items` per day into `into` (money stays None until some is added)."""
    for d in items:
        have = into.get(d.day)
        if have is None:
            into[d.day] = DayUse(d.day, d.quantity, dict(d.bands), d.amount_fen)
            continue
        bands = dict(have.bands)
        for b, v in d.bands.items():
            bands[b] = bands.get(b, 0) + v
        money = have.amount_fen
        if d.amount_fen is not None:
            money = (money or 0) + d.amount_fen
        into[d.day] = DayUse(d.day, have.quantity + d.quantity, bands, money)
    return into
