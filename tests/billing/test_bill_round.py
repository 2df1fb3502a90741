"""`bill_round` (the service's batch billing) gives the simple path's result to the digit —
`bill_usage` pair by pair, each account's state threaded through its pairs (`bill_batch`
below) — the same fen, quantities, amounts and lines with the same Decimal exponents, the same
carries and states, the same refusals, for any mix of pairs, accounts interleaved."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.billing.round import Bill, bill_round
from server.billing.usage import BillingRequest, BillingState, UsageCharge, bill_usage
from server.core.errors import ShuidianError
from server.metering.reading import Reading
from server.tariffs import LOCAL_TZ, Band, FlatPlan, PlanVersion, Season, Tariff, TouPlan, Unit
from server.tariffs.pricing import LineKind, PriceLine
from tests.billing.test_pricing_fast_path import T0, _day, quantities, tariffs


def bill_batch(
    requests: Sequence[BillingRequest], states: Mapping[Hashable, BillingState]
) -> tuple[list[UsageCharge | ShuidianError], dict[Hashable, BillingState]]:
    """The simple path: `bill_usage` pair by pair; a refused pair leaves its account's state."""
    current = dict(states)
    results: list[UsageCharge | ShuidianError] = []
    for r in requests:
        try:
            charge = bill_usage(
                r.prev, r.curr, tariff=r.tariff, state=current.get(r.account),
                multiplier=r.multiplier, register_max=r.register_max,
            )  # fmt: skip
        except ShuidianError as error:
            results.append(error)
            continue
        current[r.account] = charge.state
        results.append(charge)
    return results, current


MULTIPLIERS = [Decimal(1), Decimal(1), Decimal("1.0"), Decimal(40), Decimal("0.5"), Decimal(0)]
STEPS = [timedelta(minutes=15), timedelta(minutes=15), timedelta(hours=1), timedelta(days=1),
         timedelta(0), timedelta(minutes=-15)]  # fmt: skip


# Per meter one way of writing its registers: 6 decimals, whole numbers, or odd exponents.
STYLES = [
    st.decimals(min_value=0, max_value=Decimal("99999.999999"), places=6),
    st.decimals(min_value=0, max_value=Decimal(10**8), places=0),
    st.sampled_from([Decimal("0E+1"), Decimal("1E+2"), Decimal("2.5E+3"), Decimal("1.000000")]),
    quantities,
]


@st.composite
def registers(
    draw: st.DrawFn, values: st.SearchStrategy[Decimal], like: dict[int, Decimal] | None
) -> dict[int, Decimal]:
    """Band registers: usually the previous ones moved forward; sometimes new numbers (7 is
    not a band), one register fewer or more, or a register that went backwards."""
    if like is None or draw(st.integers(0, 9)) == 0:
        numbers = draw(st.lists(st.sampled_from([1, 2, 3, 4, 5, 7]), max_size=5, unique=True))
        return {n: draw(values) for n in numbers}
    out = {}
    for n, value in like.items():
        step = draw(values)
        out[n] = value - step if draw(st.integers(0, 19)) == 0 else value + step
    change = draw(st.integers(0, 7))
    if change == 0 and out:
        del out[draw(st.sampled_from(sorted(out)))]
    elif change == 1:
        out[draw(st.sampled_from([1, 2, 3, 4, 5, 7]))] = draw(values)
    return out


@st.composite
def meter_runs(draw: st.DrawFn, account: str) -> list[BillingRequest]:
    """One meter's consecutive reading pairs."""
    tariff = draw(tariffs(starts=(-15, 0, 7, 15, 60, 24 * 60)))
    multiplier = draw(st.sampled_from(MULTIPLIERS))
    register_max = draw(st.sampled_from([None, None, Decimal(10**9)]))
    values = draw(st.sampled_from(STYLES))
    at = T0 + timedelta(minutes=draw(st.sampled_from([-30, -15, 0, 5])))
    bands = draw(registers(values, None)) if draw(st.booleans()) else {}
    reading = Reading(at, draw(values), bands)
    pairs = []
    for _ in range(draw(st.integers(1, 4))):
        total = reading.total + draw(values)
        if draw(st.integers(0, 19)) == 0:
            total = reading.total - Decimal("0.01")  # backwards (or rolled over, with a max)
        bands = draw(registers(values, dict(reading.bands))) if reading.bands else {}
        curr = Reading(reading.taken_at + draw(st.sampled_from(STEPS)), total, bands)
        pairs.append(BillingRequest(account, reading, curr, tariff, multiplier, register_max))
        reading = curr
    return pairs


@st.composite
def rounds(draw: st.DrawFn) -> tuple[list[BillingRequest], dict[str, BillingState]]:
    """A round of several meters' pairs, interleaved (each meter's in order), and the
    accounts' stored states (none yet, a carry, a tier period under way)."""
    runs = [draw(meter_runs(a)) for a in ("a", "b", "c")[: draw(st.integers(1, 3))]]
    order = draw(st.permutations([i for i, run in enumerate(runs) for _ in run]))
    requests = [runs[i].pop(0) for i in order]
    carries = [Decimal(0), Decimal("0.0"), Decimal("0.4375"), Decimal("0.99999999")]
    states = {}
    for account in {r.account for r in requests}:
        if draw(st.booleans()):
            period = datetime(2026, 3, 1, tzinfo=LOCAL_TZ) if draw(st.booleans()) else None
            carry = draw(st.sampled_from(carries))
            states[account] = BillingState(
                carry, period, Decimal("150.5") if period else Decimal(0)
            )
    return requests, states


def _d(value: Decimal) -> tuple[object, ...]:
    return value.as_tuple()


def _general(result: UsageCharge | ShuidianError) -> tuple[object, ...]:
    if isinstance(result, ShuidianError):
        return (type(result), str(result))
    lines = tuple(
        (ln.label, _d(ln.quantity), _d(ln.unit_price), _d(ln.amount)) for ln in result.lines
    )
    return (result.deduct_fen, _d(result.quantity), _d(result.exact_yuan), lines)


def _lean(result: Bill | ShuidianError) -> tuple[object, ...]:
    if isinstance(result, ShuidianError):
        return (type(result), str(result))
    lines = tuple(
        (ln.label, _d(ln.quantity), _d(ln.unit_price), _d(ln.amount)) for ln in result.lines
    )
    return (result.deduct_fen, _d(result.quantity), _d(result.exact_yuan), lines)


def _states(states: dict[object, BillingState]) -> dict[object, tuple[object, ...]]:
    return {k: (_d(s.carry_fen), s.tier_period_start, _d(s.cumulative)) for k, s in states.items()}


@settings(max_examples=400, deadline=None)
@given(rounds())
def test_a_round_bills_as_bill_batch_does_to_the_digit(
    round_: tuple[list[BillingRequest], dict[str, BillingState]],
) -> None:
    requests, states = round_
    try:
        general, general_states = bill_batch(requests, states)
    except (ValueError, TypeError) as error:  # a multiplier of 0, say: raised, not refused
        with pytest.raises(type(error), match=re.escape(str(error))):
            bill_round(requests, states)
        return
    results, after = bill_round(requests, states)
    assert [_lean(r) for r in results] == [_general(r) for r in general]
    assert _states(after) == _states(general_states)


def test_a_round_of_a_tou_shop_and_a_water_meter() -> None:
    """A 15-minute reading of a TOU meter (band registers) and of a flat water meter, as a
    round brings them, billed to the bill a clerk would write."""
    tou = TouPlan(
        {Band.PEAK: Decimal("1.12036"), Band.VALLEY: Decimal("0.27913")},
        (Season("全年", frozenset(range(1, 13)), _day([Band.VALLEY, Band.PEAK])),),
    )
    shop = Tariff((PlanVersion(T0 - timedelta(days=1), tou),))
    water = Tariff((PlanVersion(T0 - timedelta(days=1), FlatPlan(Decimal("3.45"), Unit.M3)),))
    end = T0 + timedelta(minutes=15)
    requests = [
        BillingRequest(
            account="shop",
            prev=Reading(T0, Decimal("100.0"), {2: Decimal("60.0"), 4: Decimal("40.0")}),
            curr=Reading(end, Decimal("100.5"), {2: Decimal("60.5"), 4: Decimal("40.0")}),
            tariff=shop,
        ),
        BillingRequest(
            account="flat",
            prev=Reading(T0, Decimal("12.5")),
            curr=Reading(end, Decimal("12.75")),
            tariff=water,
        ),
    ]
    results, states = bill_round(requests, {"shop": BillingState(Decimal("0.5"))})
    # 0.5 kWh 峰 × ¥1.12036 = ¥0.560180 = 56.0180 fen, + 0.5 carried = 56 fen, 0.5180 carried.
    assert results[0] == Bill(
        deduct_fen=56,
        quantity=Decimal("0.5"),
        exact_yuan=Decimal("0.560180"),
        lines=(
            PriceLine(
                LineKind.ENERGY,
                "峰时段电量",
                Decimal("0.5"),
                Unit.KWH,
                Decimal("1.12036"),
                Decimal("0.560180"),
                Band.PEAK,
            ),
        ),
    )
    assert states["shop"] == BillingState(Decimal("0.5180"), None, Decimal(0))
    # 0.25 m³ × ¥3.45 = ¥0.8625 = 86 fen, 0.25 carried.
    assert results[1] == Bill(
        deduct_fen=86,
        quantity=Decimal("0.25"),
        exact_yuan=Decimal("0.8625"),
        lines=(
            PriceLine(
                LineKind.ENERGY,
                "用水量",
                Decimal("0.25"),
                Unit.M3,
                Decimal("3.45"),
                Decimal("0.8625"),
            ),
        ),
    )
    assert states["flat"].carry_fen == Decimal("0.25")
