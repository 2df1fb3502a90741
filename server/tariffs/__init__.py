"""Tariffs: plans (flat, TOU, tiered, two-part; electricity and water), their versions, and
pure pricing. Import the public API from here."""

from server.tariffs.calendar import LOCAL_TZ, HolidayRule, band_at, no_holidays, weekends
from server.tariffs.errors import InvalidTariff, InvalidUsage, NoPlanInForce
from server.tariffs.plans import (
    Band,
    ChargeBasis,
    DaySchedule,
    FlatPlan,
    Plan,
    PlanVersion,
    Season,
    Tariff,
    Tier,
    TieredPlan,
    TierPeriod,
    TimeSegment,
    TouPlan,
    TwoPartPlan,
    Unit,
)
from server.tariffs.pricing import (
    LineKind,
    PriceLine,
    PriceResult,
    UsageSlice,
    basic_charge,
    price_usage,
    tier_period_start_at,
)

__all__ = [
    "LOCAL_TZ",
    "Band",
    "ChargeBasis",
    "DaySchedule",
    "FlatPlan",
    "HolidayRule",
    "InvalidTariff",
    "InvalidUsage",
    "LineKind",
    "NoPlanInForce",
    "Plan",
    "PlanVersion",
    "PriceLine",
    "PriceResult",
    "Season",
    "Tariff",
    "Tier",
    "TierPeriod",
    "TieredPlan",
    "TimeSegment",
    "TouPlan",
    "TwoPartPlan",
    "Unit",
    "UsageSlice",
    "band_at",
    "basic_charge",
    "no_holidays",
    "price_usage",
    "tier_period_start_at",
    "weekends",
]
