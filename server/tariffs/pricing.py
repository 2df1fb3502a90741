"""Pricing: usage in, itemised exact charge out. Pure; never rounds money.

A `UsageSlice` is use between two instants: a total and, when the meter keeps them, the use
per TOU band register. `price_usage` prices it under a `Tariff` (or a bare plan); each plan
kind is priced by one function, whichever way a slice gets there:

    price_usage(tariff, usage)    refuses a slice it cannot price (`check_usage`), then:
      ├ the newest version flat or TOU and in force over the whole slice (`untiered_energy`):
      │   one piece, priced straight away — the common case; billing's batch
      │   (server.billing.round) prices it with the same two functions
      └ otherwise cut into pieces (1.), each under the one plan in force over it, by its kind:
          FlatPlan     price_energy    total × unit price      (电量; 用水量 for water, in m³)
          TouPlan      price_energy    band use × band price   (尖峰平谷 by season, 2.)
          TieredPlan   _price_tiered   tier use × tier price; or price_energy's lines for the
                                       flat/TOU base + tier use × surcharge (加价) (3.)
          TwoPartPlan  its energy plan, as above; `basic_charge` prices the monthly kVA / kW

A property test holds the short way to the cut one, digit for digit
(tests/billing/test_pricing_fast_path.py).

1. **Pieces.** The slice is cut where a new plan version takes effect and, for tiered plans,
   where a new tier period (calendar month/year, Asia/Shanghai) begins. With one piece
   (the usual case: readings every 15 minutes, the newest version in force) the slice is
   the piece and quantities are used as measured. With several, each quantity (the total and
   each band) is split across the pieces in proportion to elapsed time — the only honest
   guess a single long reading allows. The split is exact (largest remainder on a 10⁻⁶ grid,
   so the parts add up to the measured quantity); staff who want no guessing schedule a
   reading at the change.
2. **Bands.** A TOU piece uses the band registers when present; without them the piece's
   use is split across the bands by the time the piece spends in each (`band_at` logic).
   Non-TOU plans price the total register.
3. **Tiers.** Tier use is counted as cumulative-before + delta in the current tier period, so
   pricing a period in one slice or in any split of it crosses the thresholds at the same
   kWh and gives the same total. Tier prices are unit prices, or surcharges (加价) on top of
   a flat/TOU base — then the charge is Σ band kWh × band price + Σ tier kWh × surcharge.
4. **Exactness.** Quantities × prices are computed with plain operators in the exact
   Decimal context (`exact()`: 60 digits, Inexact and InvalidOperation trapped): amounts are
   exact yuan, never rounded; turning them into fen (with a per-account carry) is billing's
   job. A public function that computes enters that context unless its caller already
   computes in one that refuses to round (`computing_exactly()`): a check costs next to
   nothing, entering a context costs more than pricing a reading, so billing's batch enters it
   once per round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, getcontext, localcontext
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType
from typing import NamedTuple

from server.core.money import split_by_weights
from server.tariffs.calendar import (
    MICROSECOND,
    HolidayRule,
    band_at,
    band_weights,
    period_start,
    period_starts_between,
)
from server.tariffs.errors import InvalidUsage
from server.tariffs.plans import (
    Band,
    ChargeBasis,
    FlatPlan,
    Plan,
    Tariff,
    TieredPlan,
    TouPlan,
    TwoPartPlan,
    Unit,
    as_tariff,
    tiered_of,
)

QUANTUM = Decimal("0.000001")  # finest grid a quantity is split on (kWh or m³)
ZERO = Decimal(0)
# Every money operation runs here: a rounded result raises instead of silently losing digits.
EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])
# Splitting rounds on purpose (largest remainder, then a check that nothing was lost): it runs
# in Python's default context, whatever context its caller computes in.
_SPLITTING = Context()
_ORDINALS = "一二三四五六七八九十"
_ENERGY_LABELS = {Unit.KWH: "电量", Unit.M3: "用水量"}
_BAND_LABELS = {band: f"{band.label}时段电量" for band in Band}


class LineKind(StrEnum):
    ENERGY = "energy"  # flat or band energy
    TIER = "tier"  # tier at its own unit price
    TIER_SURCHARGE = "tier_surcharge"  # tier surcharge on top of a base price
    CAPACITY = "capacity"  # 基本电费 by transformer kVA
    DEMAND = "demand"  # 基本电费 by maximum demand kW


class PriceLine(NamedTuple):
    """One line of a bill: quantity × unit price = amount (exact yuan). (A named tuple, as
    `PriceResult`: every reading of a round makes them, at a third of a frozen dataclass's
    cost.)"""

    kind: LineKind
    label: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    band: Band | None = None
    tier: int | None = None

    def __str__(self) -> str:
        return f"{self.label} {self.quantity} {self.unit} × ¥{self.unit_price} = ¥{self.amount}"


class UsageSlice(NamedTuple):
    """Use over [start, end): `total` and, if the meter has them, per-band quantities.

    `price_usage` refuses a slice with naive times, an end before its start or negative use
    (`check_usage`); billing's `usage_between` makes none. (A named tuple, not a checked
    frozen dataclass: billing makes one per reading of every round, at a fifth of the cost.)"""

    start: datetime
    end: datetime
    total: Decimal
    bands: Mapping[Band, Decimal] = MappingProxyType({})


def check_usage(usage: UsageSlice) -> None:
    """Refuse a slice that cannot be priced: naive times, an end before its start, negative use."""
    if usage.start.utcoffset() is None or usage.end.utcoffset() is None:
        raise InvalidUsage("用量时间必须带时区")
    if usage.end < usage.start:
        raise InvalidUsage("用量的结束时间早于开始时间", start=usage.start, end=usage.end)
    if usage.total < ZERO or (usage.bands and min(usage.bands.values()) < ZERO):
        raise InvalidUsage("用量不能为负数", total=usage.total)


class PriceResult(NamedTuple):
    """An exact, itemised charge. `total` == Σ line amounts, in yuan, not rounded."""

    lines: tuple[PriceLine, ...]
    total: Decimal
    quantity: Decimal  # units priced (Σ band kWh for TOU, the total register otherwise)
    tier_period_start: datetime | None = None  # tier period the slice ends in, if tiered
    cumulative_after: Decimal = ZERO  # use in that period including this slice


def exact() -> AbstractContextManager[Context]:
    """Compute in the exact context (`with exact(): ...`)."""
    return localcontext(EXACT)


def computing_exactly() -> bool:
    """Whether the current Decimal context refuses to round (traps Inexact): then plain
    operators give exact amounts or raise."""
    return bool(getcontext().traps[Inexact])


def split_quantity(total: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """Split a quantity by integer weights; the parts add up to `total` exactly."""
    with localcontext(_SPLITTING):
        # The grid is 10⁻⁶ or the quantity's own finer one: `total` is a whole number of steps.
        exponent = min(QUANTUM.as_tuple().exponent, total.as_tuple().exponent)
        steps = int(total.scaleb(-exponent))  # type: ignore[arg-type]
        parts = split_by_weights(steps, list(weights))
        return [_tidy(Decimal(p).scaleb(exponent), total) for p in parts]  # type: ignore[arg-type]


def _tidy(part: Decimal, like: Decimal) -> Decimal:
    """`part` with `like`'s decimals when that loses nothing (7 kWh, not 7.000000 kWh)."""
    short = part.quantize(Decimal(1).scaleb(like.as_tuple().exponent))  # type: ignore[arg-type]
    return short if short == part else part


def tier_split(plan: TieredPlan, before: Decimal, quantity: Decimal) -> list[tuple[int, Decimal]]:
    """(tier number, quantity) for `quantity` used after `before` in the tier period."""
    if not computing_exactly():
        with exact():
            return tier_split(plan, before, quantity)
    out: list[tuple[int, Decimal]] = []
    at, left = before, quantity
    for number, tier in enumerate(plan.tiers, start=1):
        if left <= 0:
            break
        room = left if tier.upto is None else max(ZERO, min(left, tier.upto - at))
        if room > 0:
            out.append((number, room))
            at, left = at + room, left - room
    return out


def tier_period_start_at(tariff: Tariff | Plan, at: datetime) -> datetime | None:
    """Start of the tier period containing `at` under the plan then in force (None: not
    tiered). Billing compares it with the stored one to know whether cumulative use resets."""
    tiered = tiered_of(as_tariff(tariff).plan_at(at))
    return period_start(tiered.period, at) if tiered else None


def price_usage(
    tariff: Tariff | Plan,
    usage: UsageSlice,
    *,
    cumulative_before: Decimal = ZERO,
    is_holiday: HolidayRule = None,
) -> PriceResult:
    """Price `usage`; `cumulative_before` is the use already counted in the tier period
    containing `usage.start` (ignored by plans without tiers)."""
    if not computing_exactly():
        with exact():
            return price_usage(
                tariff, usage, cumulative_before=cumulative_before, is_holiday=is_holiday
            )
    check_usage(usage)
    tariff = as_tariff(tariff)
    in_force = untiered_energy(tariff)
    if in_force is not None and in_force[0] <= usage.start:  # one piece, nothing to cut
        return price_energy(in_force[1], usage, is_holiday)
    return _price_pieces(tariff, usage, cumulative_before, is_holiday)


def untiered_energy(tariff: Tariff | Plan) -> tuple[datetime, FlatPlan | TouPlan] | None:
    """When the newest version takes effect and its energy plan, if that is flat or TOU: a
    slice from then on is priced by `price_energy` under that plan alone. None if tiered."""
    version = as_tariff(tariff).versions[-1]
    plan = version.plan.energy if isinstance(version.plan, TwoPartPlan) else version.plan
    return None if isinstance(plan, TieredPlan) else (version.effective_from, plan)


def _price_pieces(
    tariff: Tariff, usage: UsageSlice, cumulative_before: Decimal, is_holiday: HolidayRule
) -> PriceResult:
    """`price_usage` in general: the slice cut into pieces, each priced, the lines merged."""
    pieces = _pieces(tariff, usage)
    if len(pieces) == 1:
        ((plan, piece),) = pieces
        return _price_piece(plan, piece, cumulative_before, is_holiday)
    results: list[PriceResult] = []
    period: tuple[object, datetime] | None = None  # the tier period the last piece was in
    for plan, piece in pieces:
        tiered = tiered_of(plan)
        key = (tiered.period, period_start(tiered.period, piece.start)) if tiered else None
        # Tier use goes on within a tier period and restarts in a new one; the caller's
        # figure only describes the period the slice starts in.
        if not results:
            before = cumulative_before
        else:
            before = results[-1].cumulative_after if key is not None and key == period else ZERO
        results.append(_price_piece(plan, piece, before, is_holiday))
        period = key
    lines = _merge(line for result in results for line in result.lines)
    last = results[-1]
    quantity = sum((result.quantity for result in results), ZERO)
    return PriceResult(
        lines, line_total(lines), quantity, last.tier_period_start, last.cumulative_after
    )


def _price_piece(
    plan: Plan, piece: UsageSlice, cumulative_before: Decimal, is_holiday: HolidayRule
) -> PriceResult:
    """`piece` under `plan`, in force over all of it, by the plan's kind; a tiered plan's piece
    lies in one tier period, `cumulative_before` of it already used."""
    if isinstance(plan, TwoPartPlan):
        plan = plan.energy  # the basic charge is levied apart (`basic_charge`)
    if isinstance(plan, TieredPlan):
        return _price_tiered(plan, piece, cumulative_before, is_holiday)
    return price_energy(plan, piece, is_holiday)


def _price_tiered(
    plan: TieredPlan, piece: UsageSlice, before: Decimal, is_holiday: HolidayRule
) -> PriceResult:
    """Tier unit prices, or a flat/TOU base plus tier surcharges, `before` already used."""
    if plan.base is None:
        lines = _tier_lines(plan, before, piece.total, surcharge=False)
        quantity = ZERO + piece.total
    else:
        base = price_energy(plan.base, piece, is_holiday)
        lines = [*base.lines, *_tier_lines(plan, before, base.quantity, surcharge=True)]
        quantity = base.quantity
    period = period_start(plan.period, piece.start)
    return PriceResult(tuple(lines), line_total(lines), quantity, period, before + quantity)


def price_energy(
    plan: FlatPlan | TouPlan, piece: UsageSlice, is_holiday: HolidayRule = None
) -> PriceResult:
    """`piece` (one `check_usage` accepts) under a flat or TOU plan, in the exact context: the
    quantity priced is as a sum from zero gives it (1E+2 kWh reads 100 kWh)."""
    if isinstance(plan, FlatPlan):  # one unit price: 电量 (kWh) or 用水量 (m³)
        line = _line(LineKind.ENERGY, _ENERGY_LABELS[plan.unit], piece.total, plan.unit, plan.price)
        return PriceResult((line,), ZERO + line.amount, ZERO + piece.total)
    return _price_tou(plan, piece.bands or _bands_by_time(plan, piece, is_holiday))


def _price_tou(plan: TouPlan, bands: Mapping[Band, Decimal]) -> PriceResult:
    """A line per band with use, at the band's price, in band order (尖 first)."""
    lines = []
    quantity = total = ZERO
    prices, unit = plan.prices, plan.unit
    for band in sorted(bands):
        q = bands[band]
        quantity += q
        if q == ZERO:
            continue
        price = prices.get(band)
        if price is None:
            raise InvalidUsage(f"电表记录了“{band.label}”时段用量，但价格方案没有该时段", band=band)
        amount = q * price
        lines.append(PriceLine(LineKind.ENERGY, _BAND_LABELS[band], q, unit, price, amount, band))
        total += amount
    return PriceResult(tuple(lines), total, quantity)


def _tier_lines(
    plan: TieredPlan, before: Decimal, quantity: Decimal, *, surcharge: bool
) -> list[PriceLine]:
    """A line per tier `quantity` reaches after `before`: its unit price, or its surcharge."""
    lines = []
    for number, q in tier_split(plan, before, quantity):
        price = plan.tiers[number - 1].price
        if surcharge and price == 0:
            continue  # a zero surcharge line only clutters the bill
        name = _ORDINALS[number - 1] if number <= len(_ORDINALS) else str(number)
        kind = LineKind.TIER_SURCHARGE if surcharge else LineKind.TIER
        label = f"第{name}档加价" if surcharge else f"第{name}档"
        lines.append(_line(kind, label, q, plan.unit, price, tier=number))
    return lines


def _bands_by_time(
    plan: TouPlan, piece: UsageSlice, is_holiday: HolidayRule
) -> dict[Band, Decimal]:
    """The piece's total split across the bands by the time spent in each."""
    if piece.start == piece.end:
        return {band_at(plan, piece.start, is_holiday): piece.total}
    weights = band_weights(plan, piece.start, piece.end, is_holiday)
    order = sorted(weights)
    return dict(zip(order, split_quantity(piece.total, [weights[b] for b in order]), strict=True))


def basic_charge(
    plan: TwoPartPlan, amount: Decimal, *, months: Decimal = Decimal(1)
) -> PriceResult:
    """Monthly basic charge: `amount` kVA (capacity) or kW of maximum demand × rate × months.

    `months` must be exact (e.g. Decimal("0.5")); pro-rating rules are the caller's."""
    if amount < 0 or months < 0:
        raise InvalidUsage("容量、需量和月数不能为负数", amount=amount, months=months)
    if not computing_exactly():
        with exact():
            return basic_charge(plan, amount, months=months)
    by_capacity = plan.basis is ChargeBasis.CAPACITY
    quantity = amount * months
    line = PriceLine(
        kind=LineKind.CAPACITY if by_capacity else LineKind.DEMAND,
        label="基本电费（按容量）" if by_capacity else "基本电费（按最大需量）",
        quantity=quantity,
        unit="kVA·月" if by_capacity else "kW·月",
        unit_price=plan.rate,
        amount=quantity * plan.rate,
    )
    return PriceResult(lines=(line,), total=line.amount, quantity=quantity)


def _pieces(tariff: Tariff, usage: UsageSlice) -> list[tuple[Plan, UsageSlice]]:
    """`usage` cut at version changes and tier period starts, each piece with its plan."""
    cuts = [usage.start, *tariff.changes_between(usage.start, usage.end), usage.end]
    spans = []
    for a, b in pairwise(cuts):
        plan = tariff.plan_at(a)
        tiered = tiered_of(plan)
        inner = period_starts_between(tiered.period, a, b) if tiered else []
        spans += [(plan, c, d) for c, d in pairwise([a, *inner, b])]
    if len(spans) == 1:
        return [(spans[0][0], usage)]
    weights = [(end - start) // MICROSECOND for _, start, end in spans]
    totals = split_quantity(usage.total, weights)
    per_band = {band: split_quantity(q, weights) for band, q in usage.bands.items()}
    return [
        (plan, UsageSlice(start, end, totals[i], {b: parts[i] for b, parts in per_band.items()}))
        for i, (plan, start, end) in enumerate(spans)
    ]


def _line(
    kind: LineKind,
    label: str,
    quantity: Decimal,
    unit: Unit,
    price: Decimal,
    band: Band | None = None,
    tier: int | None = None,
) -> PriceLine:
    return PriceLine(kind, label, quantity, unit, price, quantity * price, band, tier)


def _merge(lines: Iterable[PriceLine]) -> tuple[PriceLine, ...]:
    """Lines with the same meaning and price (split by a tier period or version) become one."""
    merged: dict[tuple[object, ...], PriceLine] = {}
    for line in lines:
        key = (line.kind, line.label, line.band, line.tier, line.unit_price)
        if key in merged:
            old = merged[key]
            merged[key] = line._replace(
                quantity=old.quantity + line.quantity, amount=old.amount + line.amount
            )
        else:
            merged[key] = line
    return tuple(merged.values())


def line_total(lines: Iterable[PriceLine]) -> Decimal:
    """Σ line amounts: a bill's total (in the exact context)."""
    total = ZERO
    for line in lines:
        total += line.amount
    return total
