"""Pricing: usage in, itemised exact charge out. Pure; never rounds money.

A `UsageSlice` is use between two instants: a total and, when the meter keeps them, the use
per TOU band register. `price_usage` prices it under a `Tariff` (or a bare plan):

1. **Pieces.** The slice is cut where a new plan version takes effect and, for tiered plans,
   where a new tier period (calendar month/year, Asia/Shanghai) begins. With one piece
   (the usual case: readings every 15 minutes) quantities are used as measured. With several,
   each quantity (the total and each band) is split across the pieces in proportion to
   elapsed time — the only honest guess a single long reading allows. The split is exact
   (largest remainder on a 10⁻⁶ grid, so the parts add up to the measured quantity); staff
   who want no guessing schedule a reading at the change.
2. **Bands.** A TOU piece uses the band registers when present; without them the piece's
   use is split across the bands by the time the piece spends in each (`band_at` logic).
   Non-TOU plans price the total register.
3. **Tiers.** Tier use is counted as cumulative-before + delta in the current tier period, so
   pricing a period in one slice or in any split of it crosses the thresholds at the same
   kWh and gives the same total. Tier prices are unit prices, or surcharges (加价) on top of
   a flat/TOU base — then the charge is Σ band kWh × band price + Σ tier kWh × surcharge.
4. **Exactness.** Quantities × prices are computed in a Decimal context that traps Inexact:
   amounts are exact yuan, never rounded; turning them into fen (with a per-account carry)
   is billing's job.

The common case — newest version in force over the whole slice, no tiers, a flat price or TOU
band registers — takes a short path (`_price_common`) doing the same Decimal operations in
the same order; a property test holds it to the general path's result, digit for digit.

Two-part plans: `price_usage` prices their energy part; `basic_charge` prices the monthly
capacity (kVA) or demand (kW) charge, which the scheduler levies once per month.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from enum import StrEnum
from itertools import pairwise

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
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])
_ORDINALS = "一二三四五六七八九十"


class LineKind(StrEnum):
    ENERGY = "energy"  # flat or band energy
    TIER = "tier"  # tier at its own unit price
    TIER_SURCHARGE = "tier_surcharge"  # tier surcharge on top of a base price
    CAPACITY = "capacity"  # 基本电费 by transformer kVA
    DEMAND = "demand"  # 基本电费 by maximum demand kW


@dataclass(frozen=True, slots=True)
class PriceLine:
    """One line of a bill: quantity × unit price = amount (exact yuan)."""

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


@dataclass(frozen=True, slots=True)
class UsageSlice:
    """Use over [start, end): `total` and, if the meter has them, per-band quantities."""

    start: datetime
    end: datetime
    total: Decimal
    bands: Mapping[Band, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise InvalidUsage("用量时间必须带时区")
        if self.end < self.start:
            raise InvalidUsage("用量的结束时间早于开始时间", start=self.start, end=self.end)
        if self.total < ZERO or (self.bands and min(self.bands.values()) < ZERO):
            raise InvalidUsage("用量不能为负数", total=self.total)


@dataclass(frozen=True, slots=True)
class PriceResult:
    """An exact, itemised charge. `total` == Σ line amounts, in yuan, not rounded."""

    lines: tuple[PriceLine, ...]
    total: Decimal
    quantity: Decimal  # units priced (Σ band kWh for TOU, the total register otherwise)
    tier_period_start: datetime | None = None  # tier period the slice ends in, if tiered
    cumulative_after: Decimal = ZERO  # use in that period including this slice


@dataclass(frozen=True, slots=True)
class _Piece:
    start: datetime
    end: datetime
    plan: Plan


def split_quantity(total: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """Split a quantity by integer weights; the parts add up to `total` exactly."""
    # The grid is 10⁻⁶ or the quantity's own finer one, so `total` is a whole number of steps.
    exponent = min(QUANTUM.as_tuple().exponent, total.as_tuple().exponent)
    steps = int(total.scaleb(-exponent))  # type: ignore[arg-type]
    parts = [Decimal(p).scaleb(exponent) for p in split_by_weights(steps, list(weights))]  # type: ignore[arg-type]
    return [_tidy(p, total) for p in parts]


def _tidy(part: Decimal, like: Decimal) -> Decimal:
    """`part` with `like`'s decimals when that loses nothing (7 kWh, not 7.000000 kWh)."""
    short = part.quantize(Decimal(1).scaleb(like.as_tuple().exponent))  # type: ignore[arg-type]
    return short if short == part else part


def tier_split(plan: TieredPlan, before: Decimal, quantity: Decimal) -> list[tuple[int, Decimal]]:
    """(tier number, quantity) for `quantity` used after `before` in the tier period."""
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
    tariff = as_tariff(tariff)
    fast = _price_common(tariff, usage)
    if fast is not None:
        return fast
    return _price_general(tariff, usage, cumulative_before, is_holiday)


def _price_general(
    tariff: Tariff, usage: UsageSlice, cumulative_before: Decimal, is_holiday: HolidayRule
) -> PriceResult:
    pieces = _pieces(tariff, usage.start, usage.end)
    lines: list[PriceLine] = []
    quantity = ZERO
    tier_key: tuple[object, datetime] | None = None
    cumulative = ZERO
    for piece, (total, bands) in zip(pieces, _piece_quantities(usage, pieces), strict=True):
        tiered = tiered_of(piece.plan)
        if tiered is not None:
            key = (tiered.period, period_start(tiered.period, piece.start))
            if key != tier_key:
                # The caller's figure only describes the period the slice starts in.
                first = piece is pieces[0]
                tier_key, cumulative = key, (cumulative_before if first else ZERO)
        else:
            tier_key = None
        piece_lines, priced = _price_piece(piece, total, bands, cumulative, is_holiday)
        lines += piece_lines
        quantity += priced
        cumulative += priced
    merged = _merge(lines)
    return PriceResult(
        lines=merged,
        total=_sum(line.amount for line in merged),
        quantity=quantity,
        tier_period_start=tier_key[1] if tier_key else None,
        cumulative_after=cumulative if tier_key else ZERO,
    )


def basic_charge(
    plan: TwoPartPlan, amount: Decimal, *, months: Decimal = Decimal(1)
) -> PriceResult:
    """Monthly basic charge: `amount` kVA (capacity) or kW of maximum demand × rate × months.

    `months` must be exact (e.g. Decimal("0.5")); pro-rating rules are the caller's."""
    if amount < 0 or months < 0:
        raise InvalidUsage("容量、需量和月数不能为负数", amount=amount, months=months)
    by_capacity = plan.basis is ChargeBasis.CAPACITY
    quantity = _EXACT.multiply(amount, months)
    line = PriceLine(
        kind=LineKind.CAPACITY if by_capacity else LineKind.DEMAND,
        label="基本电费（按容量）" if by_capacity else "基本电费（按最大需量）",
        quantity=quantity,
        unit="kVA·月" if by_capacity else "kW·月",
        unit_price=plan.rate,
        amount=_EXACT.multiply(quantity, plan.rate),
    )
    return PriceResult(lines=(line,), total=line.amount, quantity=quantity)


def _price_common(tariff: Tariff, usage: UsageSlice) -> PriceResult | None:
    """The common case, priced without the general machinery: the newest version in force
    over the whole slice (so one piece), no tiers, and a flat price or TOU band registers.

    Same operations in the same order as the general path below, so the same Decimals to the
    digit and exponent (a property test compares the two); None when it does not apply."""
    version = tariff.versions[-1]
    if version.effective_from > usage.start:
        return None
    plan = version.plan
    if isinstance(plan, TwoPartPlan):
        plan = plan.energy
    if isinstance(plan, FlatPlan):
        label = _ENERGY_LABELS[plan.unit]
        line = _line(LineKind.ENERGY, label, usage.total, plan.unit, plan.price)
        return PriceResult((line,), _EXACT.add(ZERO, line.amount), ZERO + usage.total)
    if not isinstance(plan, TouPlan) or not usage.bands:
        return None
    prices, unit = plan.prices, plan.unit
    lines = []
    total = quantity = ZERO
    for band in sorted(usage.bands):
        q = usage.bands[band]
        quantity = _EXACT.add(quantity, q)
        if q == 0:
            continue
        price = prices.get(band)
        if price is None:
            return None  # the general path refuses it, with its message
        line = PriceLine(
            LineKind.ENERGY, _BAND_LINE_LABELS[band], q, unit.value, price,
            _EXACT.multiply(q, price), band=band,
        )  # fmt: skip
        lines.append(line)
        total = _EXACT.add(total, line.amount)
    return PriceResult(tuple(lines), total, ZERO + quantity)


_ENERGY_LABELS = {Unit.KWH: "电量", Unit.M3: "用水量"}
_BAND_LINE_LABELS = {band: f"{band.label}时段电量" for band in Band}


@dataclass(frozen=True, slots=True)
class RegisterPrices:
    """A tariff's common case made ready once for a batch of readings: from `since` on (its
    newest version), a slice is priced at one flat price, or per TOU band register, without
    tiers — what `_price_common` prices, looked up once instead of per reading.

    `flat`: the flat plan's (line label, unit price); `bands`: a TOU plan's band register
    number → (line label, unit price) (empty for a flat plan)."""

    since: datetime
    flat: tuple[str, Decimal] | None
    bands: Mapping[int, tuple[str, Decimal]]


def register_prices(tariff: Tariff | Plan) -> RegisterPrices | None:
    """The tariff's `RegisterPrices`; None when its newest version is tiered."""
    version = as_tariff(tariff).versions[-1]
    plan = version.plan.energy if isinstance(version.plan, TwoPartPlan) else version.plan
    if isinstance(plan, FlatPlan):
        flat = (_ENERGY_LABELS[plan.unit], plan.price)
        return RegisterPrices(version.effective_from, flat, {})
    if isinstance(plan, TouPlan):
        bands = {int(b): (_BAND_LINE_LABELS[b], price) for b, price in plan.prices.items()}
        return RegisterPrices(version.effective_from, None, bands)
    return None


def _pieces(tariff: Tariff, start: datetime, end: datetime) -> list[_Piece]:
    cuts = [start, *tariff.changes_between(start, end), end]
    pieces = []
    for a, b in pairwise(cuts):
        plan = tariff.plan_at(a)
        tiered = tiered_of(plan)
        inner = period_starts_between(tiered.period, a, b) if tiered else []
        pieces += [_Piece(c, d, plan) for c, d in pairwise([a, *inner, b])]
    return pieces


def _piece_quantities(
    usage: UsageSlice, pieces: list[_Piece]
) -> list[tuple[Decimal, dict[Band, Decimal]]]:
    if len(pieces) == 1:
        return [(usage.total, dict(usage.bands))]
    weights = [(p.end - p.start) // MICROSECOND for p in pieces]
    totals = split_quantity(usage.total, weights)
    per_band = {band: split_quantity(q, weights) for band, q in usage.bands.items()}
    return [(t, {b: parts[i] for b, parts in per_band.items()}) for i, t in enumerate(totals)]


def _price_piece(
    piece: _Piece,
    total: Decimal,
    bands: dict[Band, Decimal],
    cumulative: Decimal,
    is_holiday: HolidayRule,
) -> tuple[list[PriceLine], Decimal]:
    plan = piece.plan.energy if isinstance(piece.plan, TwoPartPlan) else piece.plan
    if isinstance(plan, TieredPlan) and plan.base is None:
        return _tier_lines(plan, cumulative, total, surcharge=False), total
    base = plan.base if isinstance(plan, TieredPlan) else plan
    assert base is not None
    lines, quantity = _energy_lines(base, piece, total, bands, is_holiday)
    if isinstance(plan, TieredPlan):
        lines += _tier_lines(plan, cumulative, quantity, surcharge=True)
    return lines, quantity


def _energy_lines(
    plan: FlatPlan | TouPlan,
    piece: _Piece,
    total: Decimal,
    bands: dict[Band, Decimal],
    is_holiday: HolidayRule,
) -> tuple[list[PriceLine], Decimal]:
    if isinstance(plan, FlatPlan):
        label = _ENERGY_LABELS[plan.unit]
        return [_line(LineKind.ENERGY, label, total, plan.unit, plan.price)], total
    if not bands:
        bands = _bands_by_time(plan, piece, total, is_holiday)
    lines = []
    for band in sorted(bands):
        q = bands[band]
        if q == 0:
            continue
        if band not in plan.prices:
            raise InvalidUsage(f"电表记录了“{band.label}”时段用量，但价格方案没有该时段", band=band)
        label = f"{band.label}时段电量"
        lines.append(_line(LineKind.ENERGY, label, q, plan.unit, plan.prices[band], band=band))
    return lines, _sum(bands.values())


def _bands_by_time(
    plan: TouPlan, piece: _Piece, total: Decimal, is_holiday: HolidayRule
) -> dict[Band, Decimal]:
    if piece.start == piece.end:
        return {band_at(plan, piece.start, is_holiday): total}
    weights = band_weights(plan, piece.start, piece.end, is_holiday)
    order = sorted(weights)
    return dict(zip(order, split_quantity(total, [weights[b] for b in order]), strict=True))


def _tier_lines(
    plan: TieredPlan, before: Decimal, quantity: Decimal, *, surcharge: bool
) -> list[PriceLine]:
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


def _line(
    kind: LineKind,
    label: str,
    quantity: Decimal,
    unit: Unit,
    price: Decimal,
    *,
    band: Band | None = None,
    tier: int | None = None,
) -> PriceLine:
    amount = _EXACT.multiply(quantity, price)
    return PriceLine(kind, label, quantity, unit.value, price, amount, band=band, tier=tier)


def _merge(lines: list[PriceLine]) -> tuple[PriceLine, ...]:
    """Lines with the same meaning and price (split by a tier period or version) become one."""
    merged: dict[tuple[object, ...], PriceLine] = {}
    for line in lines:
        key = (line.kind, line.label, line.band, line.tier, line.unit_price)
        if key in merged:
            old = merged[key]
            quantity = _EXACT.add(old.quantity, line.quantity)
            amount = _EXACT.add(old.amount, line.amount)
            merged[key] = PriceLine(
                line.kind, line.label, quantity, line.unit, line.unit_price, amount,
                band=line.band, tier=line.tier,
            )  # fmt: skip
        else:
            merged[key] = line
    return tuple(merged.values())


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for v in values:
        total = _EXACT.add(total, v)
    return total
