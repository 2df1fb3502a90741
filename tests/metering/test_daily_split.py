"""Daily usage rules (server.metering.daily): worked examples a clerk can check by hand, and
properties — the days' parts always add up to the whole, and the table is the same whatever
order the readings arrive in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from server.metering.daily import (
    DayUse,
    Use,
    add,
    day_weights,
    from_units,
    on_insert,
    pair_use,
    spread,
    timeline_usage,
    to_units,
)
from server.metering.reading import Reading

SH = ZoneInfo("Asia/Shanghai")


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def r(at: datetime, total: str, **bands: str) -> Reading:
    return Reading(at, Decimal(total), {int(k[1:]): Decimal(v) for k, v in bands.items()})


def test_a_pair_within_one_day_goes_to_that_day() -> None:
    days = spread(Use(to_units(Decimal("1.50"))), local(2026, 3, 2, 8), local(2026, 3, 2, 9), SH)
    assert days == [DayUse(date(2026, 3, 2), 15000, {})]


def test_a_pair_across_midnight_is_split_by_time() -> None:
    # 23:45 → 00:15, 1.00 kWh: 15 minutes on each side, 0.50 kWh each.
    use = pair_use(r(local(2026, 3, 2, 23, 45), "100.00"), r(local(2026, 3, 3, 0, 15), "101.00"), 1)
    days = spread(use, local(2026, 3, 2, 23, 45), local(2026, 3, 3, 0, 15), SH)
    assert [(d.day, from_units(d.quantity)) for d in days] == [
        (date(2026, 3, 2), Decimal("0.5000")),
        (date(2026, 3, 3), Decimal("0.5000")),
    ]


def test_an_uneven_split_adds_up_to_the_unit_and_the_fen() -> None:
    # 23:50 → 00:20: a third before midnight, two thirds after. 0.0001 kWh units
    # and fen go by the largest remainder: 0.3333 + 0.6667 = 1.0000; 33 + 67 = 100 fen.
    start, end = local(2026, 3, 2, 23, 50), local(2026, 3, 3, 0, 20)
    days = spread(Use(10000, {3: 10000}), start, end, SH, amount_fen=100)
    assert [(d.quantity, d.bands[3], d.amount_fen) for d in days] == [
        (3333, 3333, 33),
        (6667, 6667, 67),
    ]


def test_a_reading_at_midnight_closes_the_day_before() -> None:
    start, end = local(2026, 3, 2, 23, 45), local(2026, 3, 3, 0, 0)
    assert day_weights(start, end, SH) == [(date(2026, 3, 2), 1)]
    start, end = local(2026, 3, 3, 0, 0), local(2026, 3, 3, 0, 15)
    assert day_weights(start, end, SH) == [(date(2026, 3, 3), 1)]


def test_a_gap_of_several_days_is_shared_among_them() -> None:
    # Offline from Monday 12:00 to Thursday 12:00 (72 h), 7.2 kWh read at Thursday noon:
    # Monday 12 h, Tuesday and Wednesday 24 h each, Thursday 12 h.
    use = Use(to_units(Decimal("7.2")))
    days = spread(use, local(2026, 3, 2, 12), local(2026, 3, 5, 12), SH, amount_fen=721)
    assert [(d.day.day, from_units(d.quantity), d.amount_fen) for d in days] == [
        (2, Decimal("1.2000"), 120),
        (3, Decimal("2.4000"), 241),  # 721 × 24/72 = 240.33…: the extra fen, earliest first
        (4, Decimal("2.4000"), 240),
        (5, Decimal("1.2000"), 120),
    ]


def test_days_are_local_days() -> None:
    # 15:30 → 16:30 UTC is 23:30 → 00:30 in Shanghai: split, although one UTC day.
    start = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    weights = day_weights(start, start + timedelta(hours=1), SH)
    assert [d for d, _ in weights] == [date(2026, 3, 2), date(2026, 3, 3)]
    assert day_weights(start, start + timedelta(hours=1), ZoneInfo("UTC"))[0][0] == date(2026, 3, 2)


def test_pair_use_applies_the_multiplier_the_bands_and_a_wrap() -> None:
    use = pair_use(
        r(local(2026, 3, 2, 8), "999999.50", b1="10.00", b3="999999.50"),
        r(local(2026, 3, 2, 9), "0.30", b1="10.10", b3="0.20"),
        20,
    )
    # total 0.80 wrapped × CT 20 = 16 kWh; band 1 0.10 × 20 = 2; band 3 0.70 × 20 = 14.
    assert use == Use(160000, {1: 20000, 3: 140000})
    # Readings without the same bands count no bands (as ingest).
    assert (
        pair_use(r(local(2026, 3, 2, 8), "1"), r(local(2026, 3, 2, 9), "2", b1="1"), 1).bands == {}
    )


def test_a_late_reading_moves_use_between_days_but_not_the_total() -> None:
    a, c = r(local(2026, 3, 2, 20), "100.00"), r(local(2026, 3, 3, 4), "108.00")
    b = r(local(2026, 3, 2, 23), "107.00")  # most of it was used before midnight
    table = add({}, timeline_usage([a, c], 1, SH))  # 20:00 → 04:00: half each side
    assert {d: from_units(u.quantity) for d, u in table.items()} == {
        date(2026, 3, 2): Decimal("4.0000"),
        date(2026, 3, 3): Decimal("4.0000"),
    }
    add(table, on_insert(a, b, c, 1, SH))
    assert {d: from_units(u.quantity) for d, u in table.items()} == {
        date(2026, 3, 2): Decimal("7.2000"),  # 7.00 by 23:00, and 1/5 of 23:00 → 04:00
        date(2026, 3, 3): Decimal("0.8000"),
    }
    assert table == add({}, timeline_usage([a, b, c], 1, SH))


# -- properties ------------------------------------------------------------------------------
T0 = datetime(2026, 3, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=14 * 24 * 3600).map(
    lambda s: T0 + timedelta(seconds=s)
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.integers(min_value=-(10**6), max_value=10**6),
    moments,
    st.integers(min_value=0, max_value=10 * 24 * 3600),
)
def test_the_parts_always_add_up(units: int, fen: int, start: datetime, seconds: int) -> None:
    days = spread(Use(units, {2: units // 3}), start, start + timedelta(seconds=seconds), SH, fen)
    assert sum(d.quantity for d in days) == units
    assert sum(d.bands[2] for d in days) == units // 3
    assert sum(d.amount_fen or 0 for d in days) == fen
    assert len({d.day for d in days}) == len(days)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 14 * 24 * 4), st.integers(0, 400)),
        min_size=1,
        max_size=25,
        unique_by=lambda t: t[0],
    ),
    st.randoms(use_true_random=False),
)
def test_any_arrival_order_gives_the_table_of_the_final_timeline(
    points: list[tuple[int, int]], rnd: object
) -> None:
    """Readings every 15 minutes with growing registers, arriving in any order: maintaining the
    table with `on_insert` gives exactly `timeline_usage` of all of them."""
    steps = sorted(points)
    total, readings = Decimal(0), []
    for quarter, grow in steps:
        total += Decimal(grow) / 100
        readings.append(r(T0 + timedelta(minutes=15 * quarter), str(total)))
    arrival = list(readings)
    rnd.shuffle(arrival)  # type: ignore[attr-defined]
    table: dict[date, DayUse] = {}
    known: list[Reading] = []
    for new in arrival:
        before = [x for x in known if x.taken_at < new.taken_at]
        after = [x for x in known if x.taken_at > new.taken_at]
        add(
            table,
            on_insert(before[-1] if before else None, new, after[0] if after else None, 3, SH),
        )
        known = sorted([*known, new], key=lambda x: x.taken_at)
    expected = add({}, timeline_usage(readings, 3, SH))
    zero = DayUse(date.min)
    for day in set(table) | set(expected):
        got, want = table.get(day, zero), expected.get(day, zero)
        assert (got.quantity, dict(got.bands)) == (want.quantity, dict(want.bands)), day
