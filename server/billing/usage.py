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

One reading pair is billed in three steps, each written once and shared by
`bill_usage` (one pair, itemised as a `UsageCharge`) and `bill_round` (round.py: a
collector's round, as the lean `Bill`s the billing service stores):

    usage_between(prev, curr)             register deltas × multiplier → UsageSlice
    charge_usage(tariff, usage, state)    price_usage (tier use continued from the state),
                                          then settle → (price, fen to deduct, new state)

The arithmetic is written with plain operators and runs in pricing's exact context (a result
that would be rounded raises): `bill_usage` enters it per pair, `bill_round` once per round,
and `usage_between`, `settle` and `register_delta` enter it themselves when called outside.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from server.core.errors import Conflict, ShuidianError, ValidationFailed
from server.core.money import FEN_PER_YUAN
from server.metering.reading import Reading, RegisterWentBack, advance
from server.tariffs.calendar import HolidayRule
from server.tariffs.errors import InvalidUsage
from server.tariffs.plans import Band, Plan, Tariff, Unit, as_tariff, tou_of
from server.tariffs.pricing import (
    LineKind,
    PriceLine,
    PriceResult,
    UsageSlice,
    computing_exactly,
    exact,
    price_usage,
    tier_period_start_at,
)

ZERO = Decimal(0)
ONE = Decimal(1)
ONE_FEN = Decimal(1)
_BANDS: dict[object, Band] = {int(b): b for b in Band}
_FEN_PER_YUAN = Decimal(FEN_PER_YUAN)


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
    multiplier: Decimal = ONE
    register_max: Decimal | None = None


def _times(multiplier: Decimal) -> Decimal | None:
    """The multiplier to apply, None for × 1: it changes nothing, not even the exponent (× 1.0
    would), and most meters have no CT/PT."""
    return None if multiplier == ONE and multiplier.same_quantum(ONE) else multiplier


def register_delta(prev: Decimal, curr: Decimal, max_value: Decimal | None = None) -> Decimal:
    """Advance of a cumulative register from `prev` to `curr`.

    `max_value` is the register's modulus: the value at which it wraps to zero (1000000 for a
    register that shows 999999.99); None when unknown (then it never wraps). Whether the
    register moved forward or rolled over is metering's one rule (`server.metering.reading.
    advance`, ingest's too); a fall it refuses is a `NegativeDelta`.
    """
    with exact():
        try:
            return advance(prev, curr, max_value)
        except RegisterWentBack as fell:
            raise _went_back(fell) from None


def _went_back(fell: RegisterWentBack) -> NegativeDelta:
    """Billing's refusal of a register fall `advance` does not explain."""
    return NegativeDelta("电表读数倒走，已暂停计费待人工核查", prev=fell.prev, curr=fell.curr)


def settle(exact_yuan: Decimal, carry_fen: Decimal) -> tuple[int, Decimal]:
    """(fen to deduct, new carry): floor of the exact charge plus the carried remainder."""
    if not ZERO <= carry_fen < ONE_FEN:
        raise ValueError(f"carry must be in [0, 1) fen, got {carry_fen}")
    if exact_yuan < ZERO:
        raise ValueError(f"a usage charge cannot be negative, got {exact_yuan}")
    if not computing_exactly():
        with exact():
            return settle(exact_yuan, carry_fen)
    exact_fen = exact_yuan * _FEN_PER_YUAN + carry_fen
    deduct = int(exact_fen)  # the floor: exact_fen is not negative
    return deduct, exact_fen - deduct


def usage_between(
    prev: Reading,
    curr: Reading,
    multiplier: Decimal = ONE,
    register_max: Decimal | None = None,
) -> UsageSlice:
    """The use between two readings, multiplier applied, per band when both have bands: a
    slice pricing accepts (`check_usage`), or a typed refusal."""
    if curr.taken_at <= prev.taken_at:
        raise ReadingsOutOfOrder(
            "本次读数时间不晚于上次读数", prev_at=prev.taken_at, curr_at=curr.taken_at
        )
    if prev.taken_at.utcoffset() is None:  # curr's too: an aware and a naive time don't compare
        raise InvalidUsage("用量时间必须带时区")
    if multiplier <= ZERO:
        raise ValueError(f"multiplier must be positive, got {multiplier}")
    if not computing_exactly():
        with exact():
            return usage_between(prev, curr, multiplier, register_max)
    times = _times(multiplier)
    try:  # each register by `advance`, in the exact context
        total = advance(prev.total, curr.total, register_max)
        bands: dict[Band, Decimal] = {}
        before, after = prev.bands, curr.bands
        if before and after:
            if before.keys() != after.keys():
                raise BandRegistersMismatch("两次读数的分时寄存器不一致")
            for number, value in after.items():
                band = _BANDS.get(number)  # a dict lookup: Band(number) costs a microsecond
                if band is None:
                    raise BandRegistersMismatch("分时寄存器编号必须是1到5", band=number)
                delta = advance(before[number], value, register_max)
                bands[band] = delta if times is None else delta * times
    except RegisterWentBack as fell:
        raise _went_back(fell) from None
    if times is not None:
        total = total * times
    return UsageSlice(prev.taken_at, curr.taken_at, total, bands)


def charge_usage(
    tariff: Tariff | Plan,
    usage: UsageSlice,
    state: BillingState,
    is_holiday: HolidayRule = None,
) -> tuple[PriceResult, int, BillingState]:
    """Price `usage` for an account in `state` and settle it in fen: (the price, the fen to
    deduct now, the account's state after). Tier use goes on from the state's when the slice
    starts in the same tier period, and from zero in a new one."""
    before = ZERO
    if state.tier_period_start is not None:  # only tiered accounts look their period up
        if tier_period_start_at(tariff, usage.start) == state.tier_period_start:
            before = state.cumulative
    price = price_usage(tariff, usage, cumulative_before=before, is_holiday=is_holiday)
    deduct, carry = settle(price.total, state.carry_fen)
    return price, deduct, BillingState(carry, price.tier_period_start, price.cumulative_after)


def bill_usage(
    prev: Reading,
    curr: Reading,
    *,
    tariff: Tariff | Plan,
    state: BillingState | None = None,
    multiplier: Decimal = ONE,
    register_max: Decimal | None = None,
    is_holiday: HolidayRule = None,
) -> UsageCharge:
    """Bill the use between two consecutive readings to an account in `state`."""
    tariff = as_tariff(tariff)  # once, not in each pricing call
    with exact():
        usage = usage_between(prev, curr, multiplier, register_max)
        price, deduct, after = charge_usage(tariff, usage, state or BillingState(), is_holiday)
    return UsageCharge(
        start=usage.start,
        end=usage.end,
        quantity=price.quantity,
        meter_kwh_by_band=_by_band(tariff, usage, price),
        lines=price.lines,
        exact_yuan=price.total,
        deduct_fen=deduct,
        carry_fen_decimal=after.carry_fen,
        state=after,
        price=price,
    )


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
