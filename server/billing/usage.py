"""Usage billing math: two readings in, the fen to deduct out. Pure.

From two consecutive readings of a meter — the total register and, if the meter keeps them,
the per-band registers — `bill_usage` computes the use (register deltas × CT×PT multiplier),
prices it (server.tariffs.pricing, exact yuan) and turns the price into whole fen:

    exact fen   = exact yuan × 100 + carry          (carry: the account's sub-fen remainder)
    deduct fen  = floor(exact fen)
    new carry   = exact fen − deduct fen            (always in [0, 1) fen)

so over any run of readings Σ deducted == floor(Σ exact charges): nothing is lost to rounding
and nothing is invented. The per-account `BillingState` also holds the cumulative use in the
current tier period; pricing counts tiers as cumulative-before + delta, so billing a period
in one slice or in any split of it gives the same total.

Readings are metering's `Reading` (server.metering.reading: taken_at, total, bands), as
ingest accepted them. A reading below the previous one raises `NegativeDelta` (the collector
holds it for review): `register_delta` asks metering's `advance`, the one roll-over rule
ingest applies too, and refuses what it refuses.

`bill_batch` bills many (prev, curr) pairs, threading each account's state through its
readings in order, and reports failures per item instead of stopping the batch; `bill_round`
(round.py) gives the same result for a collector's round as lean `Bill`s, pricing the common
case inline (what the billing service uses; a property test holds the two to the digit).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import (
    ROUND_FLOOR,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    localcontext,
)
from typing import NamedTuple

from server.core.errors import Conflict, ShuidianError, ValidationFailed
from server.core.money import FEN_PER_YUAN
from server.metering.reading import Reading, RegisterWentBack, advance
from server.tariffs.calendar import HolidayRule
from server.tariffs.plans import Band, Plan, Tariff, Unit, as_tariff, tou_of
from server.tariffs.pricing import (
    LineKind,
    PriceLine,
    PriceResult,
    UsageSlice,
    price_usage,
    tier_period_start_at,
)

ZERO = Decimal(0)
ONE_FEN = Decimal(1)
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])
_BANDS: dict[object, Band] = {int(b): b for b in Band}
_FEN_PER_YUAN = Decimal(FEN_PER_YUAN)
_ONE_AS_TUPLE = Decimal(1).as_tuple()


class BillingError(ShuidianError):
    """Base of the usage-billing errors: the pair of readings cannot be billed as it is."""


class NegativeDelta(BillingError, Conflict):
    """A register went backwards (and no roll-over explains it). Billing it would refund use
    that never happened, so the reading is refused and held for review."""

    code = "negative_delta"


class ReadingsOutOfOrder(BillingError, Conflict):
    """The current reading is not later than the previous one; billing it could charge twice."""

    code = "readings_out_of_order"


class BandRegistersMismatch(BillingError, ValidationFailed):
    """The two readings carry different band registers, so per-band use is undefined."""

    code = "band_registers_mismatch"


class BillingState(NamedTuple):
    """What billing remembers per account between readings. (A named tuple: read and rebuilt
    for thousands of accounts per round, at a third of a frozen dataclass's cost.)"""

    carry_fen: Decimal = ZERO  # sub-fen remainder, in fen, in [0, 1)
    tier_period_start: datetime | None = None  # tier period `cumulative` belongs to
    cumulative: Decimal = ZERO  # use so far in that tier period


@dataclass(frozen=True, slots=True)
class UsageCharge:
    """The charge for one pair of readings, itemised, and the fen to deduct now."""

    start: datetime
    end: datetime
    quantity: Decimal  # kWh or m³ priced, multiplier applied
    meter_kwh_by_band: Mapping[Band, Decimal]  # per band (registers, or split by time)
    lines: tuple[PriceLine, ...]
    exact_yuan: Decimal  # exact charge, not rounded
    deduct_fen: int  # whole fen to take from the wallet now
    carry_fen_decimal: Decimal  # the account's new sub-fen remainder, in [0, 1)
    state: BillingState  # the account's state after this charge
    price: PriceResult


class BillingRequest(NamedTuple):
    """One (prev, curr) pair of a meter, billed to `account` under `tariff`. (A named tuple,
    not a frozen dataclass: a collector's round builds thousands, at a quarter of the cost.)"""

    account: Hashable
    prev: Reading
    curr: Reading
    tariff: Tariff | Plan
    multiplier: Decimal = Decimal(1)
    register_max: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """`results[i]` answers `requests[i]`: a charge, or the error that refused it.
    `states` holds every account's state after its last successful charge."""

    results: tuple[UsageCharge | ShuidianError, ...]
    states: dict[Hashable, BillingState]


def _times(multiplier: Decimal) -> Decimal | None:
    """The multiplier to apply, None for × 1: it changes nothing, not even the exponent (× 1.0
    would), and most meters have no CT/PT."""
    return None if multiplier.as_tuple() == _ONE_AS_TUPLE else multiplier


def register_delta(prev: Decimal, curr: Decimal, max_value: Decimal | None = None) -> Decimal:
    """Advance of a cumulative register from `prev` to `curr`, by metering's one roll-over
    rule (`server.metering.reading.advance`), computed exactly.

    `max_value` is the register's modulus: the value at which it wraps to zero (1000000 for a
    register that shows 999999.99); None when unknown (then it never wraps). A fall `advance`
    refuses is a `NegativeDelta`.
    """
    with localcontext(_EXACT):
        return _advance(prev, curr, max_value)


def _advance(prev: Decimal, curr: Decimal, max_value: Decimal | None) -> Decimal:
    """`register_delta` in the caller's (exact) context."""
    try:
        return advance(prev, curr, max_value)
    except RegisterWentBack:
        raise NegativeDelta("电表读数倒走，已暂停计费待人工核查", prev=prev, curr=curr) from None


def settle(exact_yuan: Decimal, carry_fen: Decimal) -> tuple[int, Decimal]:
    """(fen to deduct, new carry): floor of the exact charge plus the carried remainder."""
    if not ZERO <= carry_fen < ONE_FEN:
        raise ValueError(f"carry must be in [0, 1) fen, got {carry_fen}")
    if exact_yuan < ZERO:
        raise ValueError(f"a usage charge cannot be negative, got {exact_yuan}")
    exact_fen = _EXACT.add(_EXACT.multiply(exact_yuan, _FEN_PER_YUAN), carry_fen)
    deduct = int(exact_fen.to_integral_value(rounding=ROUND_FLOOR))
    return deduct, _EXACT.subtract(exact_fen, Decimal(deduct))


def usage_between(
    prev: Reading,
    curr: Reading,
    *,
    multiplier: Decimal = Decimal(1),
    register_max: Decimal | None = None,
) -> UsageSlice:
    """The use between two readings, multiplier applied, per band when both have bands."""
    if curr.taken_at <= prev.taken_at:
        raise ReadingsOutOfOrder(
            "本次读数时间不晚于上次读数", prev_at=prev.taken_at, curr_at=curr.taken_at
        )
    if multiplier <= ZERO:
        raise ValueError(f"multiplier must be positive, got {multiplier}")
    times = _times(multiplier)
    total = register_delta(prev.total, curr.total, register_max)
    bands: dict[Band, Decimal] = {}
    if prev.bands and curr.bands:
        if prev.bands.keys() != curr.bands.keys():
            raise BandRegistersMismatch("两次读数的分时寄存器不一致")
        for number in sorted(curr.bands):
            band = _BANDS.get(number)  # a dict lookup: Band(number) costs a microsecond
            if band is None:
                raise BandRegistersMismatch("分时寄存器编号必须是1到5", band=number)
            delta = register_delta(prev.bands[number], curr.bands[number], register_max)
            bands[band] = delta if times is None else _EXACT.multiply(delta, times)
    if times is not None:
        total = _EXACT.multiply(total, times)
    return UsageSlice(prev.taken_at, curr.taken_at, total, bands)


def bill_usage(
    prev: Reading,
    curr: Reading,
    *,
    tariff: Tariff | Plan,
    state: BillingState | None = None,
    multiplier: Decimal = Decimal(1),
    register_max: Decimal | None = None,
    is_holiday: HolidayRule = None,
) -> UsageCharge:
    """Bill the use between two consecutive readings to an account in `state`."""
    state = state or BillingState()
    tariff = as_tariff(tariff)  # once, not in each pricing call
    usage = usage_between(prev, curr, multiplier=multiplier, register_max=register_max)
    period = tier_period_start_at(tariff, usage.start)
    same_period = period is not None and period == state.tier_period_start
    before = state.cumulative if same_period else ZERO
    price = price_usage(tariff, usage, cumulative_before=before, is_holiday=is_holiday)
    deduct, carry = settle(price.total, state.carry_fen)
    new_state = BillingState(carry, price.tier_period_start, price.cumulative_after)
    return UsageCharge(
        start=usage.start,
        end=usage.end,
        quantity=price.quantity,
        meter_kwh_by_band=_by_band(tariff, usage, price),
        lines=price.lines,
        exact_yuan=price.total,
        deduct_fen=deduct,
        carry_fen_decimal=carry,
        state=new_state,
        price=price,
    )


def bill_batch(
    requests: Sequence[BillingRequest],
    states: Mapping[Hashable, BillingState] | None = None,
    *,
    is_holiday: HolidayRule = None,
) -> BatchResult:
    """Bill many pairs in order; an account's state flows from one of its pairs to the next.

    A refused pair leaves its account's state untouched and does not stop the batch."""
    current: dict[Hashable, BillingState] = dict(states or {})
    results: list[UsageCharge | ShuidianError] = []
    for request in requests:
        try:
            charge = bill_usage(
                request.prev,
                request.curr,
                tariff=request.tariff,
                state=current.get(request.account),
                multiplier=request.multiplier,
                register_max=request.register_max,
                is_holiday=is_holiday,
            )
        except ShuidianError as error:
            results.append(error)
            continue
        current[request.account] = charge.state
        results.append(charge)
    return BatchResult(results=tuple(results), states=current)


def _by_band(tariff: Tariff | Plan, usage: UsageSlice, price: PriceResult) -> dict[Band, Decimal]:
    """Registers when the meter has them; else the TOU split pricing made; else all 平
    (electricity only: water has no bands)."""
    if usage.bands:
        return dict(usage.bands)
    by_band: dict[Band, Decimal] = {}
    for line in price.lines:
        if line.kind is LineKind.ENERGY and line.band is not None:
            by_band[line.band] = by_band.get(line.band, ZERO) + line.quantity
    if by_band:
        return by_band
    plan = tariff if not isinstance(tariff, Tariff) else tariff.plan_at(usage.start)
    if tou_of(plan) is not None or plan.unit is Unit.M3 or usage.total == 0:
        return {}
    return {Band.FLAT: usage.total}
