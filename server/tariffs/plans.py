"""Tariff plans as frozen values.

A plan is one of four shapes, each usable for electricity (kWh) or water (m³):

- `FlatPlan`      one unit price.
- `TouPlan`       time-of-use (分时): up to five bands (尖/峰/平/谷/深谷), each with a price; the
                  day is cut into segments per season (e.g. July–August add a sharp band), with
                  an optional different schedule for holidays/weekends.
- `TieredPlan`    stepped (阶梯) on cumulative use per calendar month or year. Without a base plan
                  each tier's price is the unit price; with a flat or TOU base the tier price is
                  a surcharge (加价) added on top of the base price, as Chinese residential
                  TOU + tier tariffs work.
- `TwoPartPlan`   two-part (两部制): a basic charge per transformer kVA or per kW of the
                  period's maximum demand, per month, plus an energy part under any plan above.

A `Tariff` is a plan's history: versions with an aware `effective_from`; usage spanning a
change is priced piece by piece (see pricing.py). Every invariant is checked when a value is
built, so an invalid plan never exists; the messages are for staff, in Chinese.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from enum import IntEnum, StrEnum

from server.tariffs.errors import InvalidTariff, NoPlanInForce

MINUTES_PER_DAY = 24 * 60
MAX_PRICE_DECIMALS = 5


class Band(IntEnum):
    """TOU band, numbered as meters number their band registers."""

    SHARP = 1  # 尖
    PEAK = 2  # 峰
    FLAT = 3  # 平
    VALLEY = 4  # 谷
    DEEP_VALLEY = 5  # 深谷

    @property
    def label(self) -> str:
        return _BAND_LABELS[self]


_BAND_LABELS = {
    Band.SHARP: "尖",
    Band.PEAK: "峰",
    Band.FLAT: "平",
    Band.VALLEY: "谷",
    Band.DEEP_VALLEY: "深谷",
}


class Unit(StrEnum):
    KWH = "kWh"
    M3 = "m³"


class TierPeriod(StrEnum):
    """The calendar period (Asia/Shanghai) over which tier use accumulates."""

    MONTH = "month"
    YEAR = "year"


class ChargeBasis(StrEnum):
    """What the basic charge of a two-part plan is levied on."""

    CAPACITY = "capacity"  # 按容量: transformer kVA
    DEMAND = "demand"  # 按需量: the period's maximum demand, kW


def check_price(value: Decimal, what: str) -> Decimal:
    """A price or rate: a finite Decimal ≥ 0 with at most five decimals."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidTariff(f"{what}必须是数字", value=value)
    if value < 0:
        raise InvalidTariff(f"{what}不能为负数", value=value)
    if value.as_tuple().exponent < -MAX_PRICE_DECIMALS:  # type: ignore[operator]
        raise InvalidTariff(f"{what}最多保留{MAX_PRICE_DECIMALS}位小数", value=value)
    return value


def _minute_of(t: time, what: str) -> int:
    if t.second or t.microsecond or t.tzinfo is not None:
        raise InvalidTariff(f"{what}只能精确到分钟，且不带时区", value=t)
    return t.hour * 60 + t.minute


@dataclass(frozen=True, slots=True)
class TimeSegment:
    """[start, end) of a day in one band. `end` 00:00 means midnight; end < start wraps past
    midnight (谷 23:00–次日07:00); start == end == 00:00 is the whole day."""

    start: time
    end: time
    band: Band

    def minute_ranges(self) -> list[tuple[int, int]]:
        s = _minute_of(self.start, "时段开始时间")
        e = _minute_of(self.end, "时段结束时间") or MINUTES_PER_DAY
        if s < e:
            return [(s, e)]
        if s == e and s != 0:
            raise InvalidTariff("时段的开始和结束时间不能相同", start=self.start)
        return [(s, MINUTES_PER_DAY), (0, e)] if e != MINUTES_PER_DAY else [(s, e)]


@dataclass(frozen=True, slots=True)
class DaySchedule:
    """A day cut into band segments that cover the 24 hours exactly once."""

    segments: tuple[TimeSegment, ...]
    # Sorted minute ranges, derived once; (start_minute, end_minute, band).
    ranges: tuple[tuple[int, int, Band], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.segments:
            raise InvalidTariff("日时段表不能为空")
        cut = sorted((s, e, seg.band) for seg in self.segments for s, e in seg.minute_ranges())
        at = 0
        for s, e, _ in cut:
            if s < at:
                raise InvalidTariff("时段相互重叠", at=f"{s // 60:02d}:{s % 60:02d}")
            if s > at:
                raise InvalidTariff("时段未覆盖全天24小时", gap=f"{at // 60:02d}:{at % 60:02d}")
            at = e
        if at != MINUTES_PER_DAY:
            raise InvalidTariff("时段未覆盖全天24小时", gap=f"{at // 60:02d}:{at % 60:02d}")
        object.__setattr__(self, "ranges", tuple(cut))

    def band_at_minute(self, minute: int) -> Band:
        i = bisect_right([r[0] for r in self.ranges], minute) - 1
        return self.ranges[i][2]

    def bands(self) -> set[Band]:
        return {seg.band for seg in self.segments}


@dataclass(frozen=True, slots=True)
class Season:
    """The months a day schedule applies to; `holiday` (if any) applies on holidays/weekends."""

    name: str
    months: frozenset[int]
    workday: DaySchedule
    holiday: DaySchedule | None = None

    def __post_init__(self) -> None:
        if not self.months or not all(isinstance(m, int) and 1 <= m <= 12 for m in self.months):
            raise InvalidTariff("季节的月份必须在1到12之间", season=self.name)


@dataclass(frozen=True, slots=True)
class FlatPlan:
    """One unit price (yuan per kWh or m³)."""

    price: Decimal
    unit: Unit = Unit.KWH

    def __post_init__(self) -> None:
        check_price(self.price, "单价")


@dataclass(frozen=True, slots=True)
class TouPlan:
    """Time-of-use: a price per band, and per season which band each minute of the day is."""

    prices: Mapping[Band, Decimal]
    seasons: tuple[Season, ...]
    unit: Unit = Unit.KWH

    def __post_init__(self) -> None:
        if not self.prices:
            raise InvalidTariff("分时电价至少需要一个时段电价")
        for band, price in self.prices.items():
            if not isinstance(band, Band):
                raise InvalidTariff("时段编号必须是1到5（尖峰平谷深谷）", band=band)
            check_price(price, f"{band.label}时段单价")
        months = [m for season in self.seasons for m in season.months]
        if sorted(months) != list(range(1, 13)):
            raise InvalidTariff("各季节的月份必须恰好覆盖1到12月各一次")
        for season in self.seasons:
            for schedule in (season.workday, season.holiday):
                missing = schedule.bands() - set(self.prices) if schedule else set()
                if missing:
                    names = "、".join(b.label for b in sorted(missing))
                    raise InvalidTariff(f"时段“{names}”没有设置单价", season=season.name)

    def season_for(self, month: int) -> Season:
        return next(s for s in self.seasons if month in s.months)


@dataclass(frozen=True, slots=True)
class Tier:
    """Use up to `upto` (cumulative in the period; None = no limit) at `price` per unit."""

    upto: Decimal | None
    price: Decimal


@dataclass(frozen=True, slots=True)
class TieredPlan:
    """Stepped price on cumulative use in a calendar month or year.

    With `base` None a tier's price is the unit price; with a flat or TOU base it is a
    surcharge added to the base price (first tier usually 0).
    """

    tiers: tuple[Tier, ...]
    period: TierPeriod = TierPeriod.YEAR
    base: FlatPlan | TouPlan | None = None
    unit: Unit = Unit.KWH

    def __post_init__(self) -> None:
        if not self.tiers:
            raise InvalidTariff("阶梯至少需要一档")
        last = Decimal(0)
        for i, tier in enumerate(self.tiers, start=1):
            check_price(tier.price, f"第{i}档单价")
            is_last = i == len(self.tiers)
            if (tier.upto is None) != is_last:
                raise InvalidTariff("只有最后一档不设上限，其余各档必须设上限", tier=i)
            if tier.upto is not None and (not tier.upto.is_finite() or tier.upto <= last):
                raise InvalidTariff("阶梯上限必须大于零并逐档递增", tier=i, upto=tier.upto)
            last = tier.upto if tier.upto is not None else last
        if self.base is not None and self.base.unit != self.unit:
            raise InvalidTariff("阶梯与基础价格的计量单位不一致")


@dataclass(frozen=True, slots=True)
class TwoPartPlan:
    """两部制: a basic charge (`rate` yuan per kVA or kW per month) plus an energy plan."""

    energy: FlatPlan | TouPlan | TieredPlan
    basis: ChargeBasis
    rate: Decimal

    def __post_init__(self) -> None:
        check_price(self.rate, "基本电价")
        if self.energy.unit != Unit.KWH:
            raise InvalidTariff("两部制只适用于电")

    @property
    def unit(self) -> Unit:
        return Unit.KWH


Plan = FlatPlan | TouPlan | TieredPlan | TwoPartPlan


def tou_of(plan: Plan) -> TouPlan | None:
    """The TOU schedule a plan's energy is priced by, if any."""
    if isinstance(plan, TwoPartPlan):
        return tou_of(plan.energy)
    if isinstance(plan, TieredPlan):
        return plan.base if isinstance(plan.base, TouPlan) else None
    return plan if isinstance(plan, TouPlan) else None


def tiered_of(plan: Plan) -> TieredPlan | None:
    """The tier ladder a plan's energy climbs, if any."""
    if isinstance(plan, TwoPartPlan):
        return tiered_of(plan.energy)
    return plan if isinstance(plan, TieredPlan) else None


@dataclass(frozen=True, slots=True)
class PlanVersion:
    """A plan in force from `effective_from` (aware) until the next version."""

    effective_from: datetime
    plan: Plan


@dataclass(frozen=True, slots=True)
class Tariff:
    """A plan's versions, oldest first. Staff add a version effective now or later."""

    versions: tuple[PlanVersion, ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise InvalidTariff("价格方案至少需要一个版本")
        previous: datetime | None = None
        for v in self.versions:
            if v.effective_from.utcoffset() is None:
                raise InvalidTariff("生效时间必须带时区", effective_from=v.effective_from)
            if previous is not None and v.effective_from <= previous:
                raise InvalidTariff("各版本的生效时间必须严格递增", effective_from=v.effective_from)
            previous = v.effective_from
        if len({v.plan.unit for v in self.versions}) != 1:
            raise InvalidTariff("同一价格方案的各版本计量单位必须一致")

    @property
    def unit(self) -> Unit:
        return self.versions[0].plan.unit

    def plan_at(self, at: datetime) -> Plan:
        """The plan in force at the instant `at`."""
        i = bisect_right([v.effective_from for v in self.versions], at) - 1
        if i < 0:
            raise NoPlanInForce("该时间点尚无生效的价格方案", at=at)
        return self.versions[i].plan

    def changes_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Version changes strictly inside (start, end)."""
        return [v.effective_from for v in self.versions if start < v.effective_from < end]


def as_tariff(plan_or_tariff: Plan | Tariff) -> Tariff:
    """A bare plan is a tariff with one version in force since the beginning of time."""
    if isinstance(plan_or_tariff, Tariff):
        return plan_or_tariff
    return Tariff((PlanVersion(datetime.min.replace(tzinfo=UTC), plan_or_tariff),))
