"""Daily load curves for simulated meters.

Each profile is 24 hourly fractions of the rated power (weekday and weekend), interpolated
linearly within the hour and multiplied by a little noise. For WATER the "power" is a flow
rate in m³/h and `rated_kw` is read as the maximum flow in m³/h.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
POWER_STEP = Decimal("0.0001")  # DL/T 645 power resolution XX.XXXX kW


class LoadProfile(StrEnum):
    SHOP = "shop"
    OFFICE = "office"
    APARTMENT = "apartment"
    FACTORY = "factory"
    WATER = "water"


# fmt: off
_WEEKDAY: dict[LoadProfile, tuple[float, ...]] = {
    #                  0     1     2     3     4     5     6     7     8     9    10    11
    #                 12    13    14    15    16    17    18    19    20    21    22    23
    LoadProfile.SHOP: (0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.08, 0.20, 0.60, 0.75, 0.80,
                       0.85, 0.80, 0.75, 0.75, 0.80, 0.85, 0.90, 0.90, 0.85, 0.70, 0.30, 0.08),
    LoadProfile.OFFICE: (0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.05, 0.10, 0.50, 0.75, 0.80, 0.80,
                         0.60, 0.70, 0.80, 0.80, 0.75, 0.60, 0.30, 0.15, 0.10, 0.06, 0.05, 0.04),
    LoadProfile.APARTMENT: (0.10, 0.08, 0.07, 0.07, 0.07, 0.08, 0.20, 0.40, 0.35, 0.15, 0.12,
                            0.15, 0.25, 0.15, 0.12, 0.12, 0.15, 0.35, 0.60, 0.75, 0.80, 0.70,
                            0.45, 0.20),
    LoadProfile.FACTORY: (0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.35, 0.60, 0.85, 0.90, 0.90, 0.85,
                          0.70, 0.85, 0.90, 0.90, 0.85, 0.80, 0.80, 0.80, 0.80, 0.75, 0.60, 0.40),
    LoadProfile.WATER: (0.02, 0.01, 0.01, 0.01, 0.01, 0.03, 0.20, 0.50, 0.40, 0.15, 0.10, 0.20,
                        0.30, 0.15, 0.10, 0.10, 0.12, 0.25, 0.45, 0.55, 0.50, 0.40, 0.20, 0.05),
}
# fmt: on

# Weekend scaling of the weekday curve: offices and factories mostly idle, homes busier.
_WEEKEND_SCALE = {
    LoadProfile.SHOP: 1.1,
    LoadProfile.OFFICE: 0.2,
    LoadProfile.APARTMENT: 1.2,
    LoadProfile.FACTORY: 0.45,
    LoadProfile.WATER: 1.1,
}


def load_fraction(profile: LoadProfile, local_dt: datetime) -> float:
    """Noise-free share of rated power at `local_dt` (converted to Asia/Shanghai)."""
    t = local_dt.astimezone(SHANGHAI)
    curve = _WEEKDAY[profile]
    frac_hour = (t.minute * 60 + t.second) / 3600
    here, nxt = curve[t.hour], curve[(t.hour + 1) % 24]
    value = here + (nxt - here) * frac_hour
    if t.weekday() >= 5:
        value *= _WEEKEND_SCALE[profile]
    return min(value, 1.0)


def power_kw(
    profile: LoadProfile, local_dt: datetime, rated_kw: Decimal, rng: random.Random
) -> Decimal:
    """Momentary power (kW, or m³/h for WATER) drawn from the profile with ±15 % noise.

    The result is quantized to the register resolution, so everything integrated from it
    is exact Decimal arithmetic; only this simulated input comes from floats.
    """
    if profile is LoadProfile.WATER and rng.random() < 0.3:
        return Decimal("0.0000")  # taps are closed a good share of the time
    share = load_fraction(profile, local_dt) * rng.uniform(0.85, 1.15)
    return (rated_kw * Decimal(f"{share:.6f}")).quantize(POWER_STEP)
