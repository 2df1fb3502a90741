"""Properties of usage billing: nothing lost or invented, splits change nothing."""

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from decimal import Decimal as D
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from server.billing import BillingRequest, BillingState, bill_usage
from server.billing.round import bill_round
from server.metering.reading import Reading
from server.tariffs import (
    LOCAL_TZ,
    Band,
    DaySchedule,
    FlatPlan,
    Season,
    Tier,
    TieredPlan,
    TierPeriod,
    TimeSegment,
    TouPlan,
)

START = datetime(2025, 2, 1, tzinfo=LOCAL_TZ)
WHOLE_DAY = DaySchedule((TimeSegment(START.time(), START.time(), Band.FLAT),))

prices = st.decimals(min_value=0, max_value=3, places=5)
steps = st.decimals(min_value=0, max_value=500, places=2)


@st.composite
def plans(draw: st.DrawFn) -> FlatPlan | TieredPlan:
    """A flat plan, plain monthly tiers, or tier surcharges on a TOU base."""
    kind = draw(st.sampled_from(["flat", "tiered", "tou_tiered"]))
    if kind == "flat":
        return FlatPlan(draw(prices))
    uptos = sorted(draw(st.lists(st.integers(1, 3000), max_size=3, unique=True)))
    tiers = (*(Tier(D(u), draw(prices)) for u in uptos), Tier(None, draw(prices)))
    if kind == "tiered":
        return TieredPlan(tiers, TierPeriod.MONTH)
    band_prices = {b: draw(prices) for b in Band}
    base = TouPlan(band_prices, (Season("全年", frozenset(range(1, 13)), WHOLE_DAY),))
    return TieredPlan(tiers, TierPeriod.MONTH, base=base)


def readings(increments: list[dict[int, Decimal]]) -> list[Reading]:
    """Cumulative band registers (1–5) and total from per-reading increments, one a day."""
    registers = {b: D("1000.00") for b in range(1, 6)}
    out = [Reading(START, sum(registers.values()), dict(registers))]
    for i, step in enumerate(increments, start=1):
        registers = {b: registers[b] + step.get(b, D(0)) for b in registers}
        out.append(Reading(START + timedelta(days=i), sum(registers.values()), registers))
    return out


band_steps = st.dictionaries(st.integers(1, 5), steps)


def floor_fen(yuan: Decimal) -> int:
    return int((yuan * 100).to_integral_value(rounding=ROUND_FLOOR))


@settings(max_examples=150, deadline=None)
@given(
    plan=plans(),
    increments=st.lists(band_steps, min_size=1, max_size=20),
    multiplier=st.sampled_from([D(1), D(30), D("2.5"), D(1000)]),
)
def test_nothing_is_lost_or_invented(plan, increments, multiplier) -> None:
    rs = readings(increments)
    state, deducted, exact = BillingState(), 0, D(0)
    for prev, curr in pairwise(rs):
        charge = bill_usage(prev, curr, tariff=plan, state=state, multiplier=multiplier)
        assert D(0) <= charge.carry_fen_decimal < D(1)
        assert charge.exact_yuan == sum(line.amount for line in charge.lines)
        deducted += charge.deduct_fen
        exact += charge.exact_yuan
        state = charge.state
    assert deducted == floor_fen(exact)
    assert state.carry_fen == exact * 100 - deducted


@settings(max_examples=150, deadline=None)
@given(
    plan=plans(),
    increments=st.lists(band_steps, min_size=1, max_size=20),
    cuts=st.sets(st.integers(1, 19)),
    cumulative=st.decimals(min_value=0, max_value=4000, places=2),
)
def test_one_piece_or_any_split_gives_the_same_total(plan, increments, cuts, cumulative) -> None:
    rs = readings(increments)
    first = BillingState(tier_period_start=START, cumulative=cumulative)
    whole = bill_usage(rs[0], rs[-1], tariff=plan, state=first)
    kept = [rs[0], *(rs[i] for i in sorted(cuts) if i < len(rs) - 1), rs[-1]]
    state, deducted, exact = first, 0, D(0)
    for prev, curr in pairwise(kept):
        charge = bill_usage(prev, curr, tariff=plan, state=state)
        deducted, exact, state = (
            deducted + charge.deduct_fen,
            exact + charge.exact_yuan,
            charge.state,
        )
    assert exact == whole.exact_yuan
    assert deducted == whole.deduct_fen
    assert state == whole.state


@settings(max_examples=100, deadline=None)
@given(
    plan=plans(),
    per_account=st.lists(st.lists(band_steps, min_size=1, max_size=6), min_size=1, max_size=4),
)
def test_a_round_bills_as_the_readings_would_one_by_one(plan, per_account) -> None:
    pairs = {n: list(pairwise(readings(inc))) for n, inc in enumerate(per_account)}
    # Interleave the accounts' readings, each account's in order, as a collector round would.
    requests = []
    for i in range(max(len(p) for p in pairs.values())):
        requests += [BillingRequest(n, *p[i], plan) for n, p in pairs.items() if i < len(p)]
    _, states = bill_round(requests)
    for n, account_pairs in pairs.items():
        state = BillingState()
        for prev, curr in account_pairs:
            state = bill_usage(prev, curr, tariff=plan, state=state).state
        assert states[n] == state
