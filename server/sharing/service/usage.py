"""A period's measured use, read from daily usage (server.metering's `daily_usage` rows, kept
per meter and local day as readings are ingested): a meter's kWh and TOU bands, the
electricity use and energy charge of each account, and the site's electricity in total.
One query each, whatever the number of days."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from tortoise.functions import Sum

from server.metering.daily import from_units
from server.metering.models import DailyUsage
from server.metering.vocabulary import MeterKind
from server.sharing.periods import Period

BAND_COLUMNS = {b: f"band{b}_e4" for b in (1, 2, 3, 4, 5)}
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class MeterUse:
    quantity: Decimal = ZERO
    bands: Mapping[int, Decimal] = field(default_factory=dict)  # only when they add up


@dataclass(frozen=True, slots=True)
class AccountUse:
    kwh: Decimal
    energy_fen: int


async def meter_use(meter_ids: Iterable[int], period: Period) -> dict[int, MeterUse]:
    """Each meter's use in the period; band quantities only where they add up to the total
    (a meter without band registers has none: pricing then splits by time)."""
    ids = list(meter_ids)
    if not ids:
        return {}
    rows = (
        await DailyUsage.filter(meter_id__in=ids, day__gte=period.first, day__lte=period.last)
        .annotate(q=Sum("quantity_e4"), **{f"b{b}": Sum(c) for b, c in BAND_COLUMNS.items()})
        .group_by("meter_id")
        .values("meter_id", "q", *(f"b{b}" for b in BAND_COLUMNS))
    )
    found: dict[int, MeterUse] = {}
    for r in rows:
        total = int(r["q"] or 0)
        bands = {b: int(r[f"b{b}"] or 0) for b in BAND_COLUMNS}
        kept = (
            {b: from_units(u) for b, u in bands.items() if u}
            if sum(bands.values()) == total
            else {}
        )
        found[r["meter_id"]] = MeterUse(from_units(total), kept)
    return found


async def account_use(account_ids: Iterable[int], period: Period) -> dict[int, AccountUse]:
    """Each account's electricity in the period: kWh and the energy charged for it (fen)."""
    ids = list(account_ids)
    if not ids:
        return {}
    rows = (
        await DailyUsage.filter(
            account_id__in=ids,
            meter__kind=MeterKind.ELECTRICITY,
            day__gte=period.first,
            day__lte=period.last,
        )
        .annotate(q=Sum("quantity_e4"), fen=Sum("amount_fen"))
        .group_by("account_id")
        .values("account_id", "q", "fen")
    )
    return {
        r["account_id"]: AccountUse(from_units(int(r["q"] or 0)), int(r["fen"] or 0)) for r in rows
    }


async def site_account_use(site_id: int, period: Period) -> dict[int, AccountUse]:
    """Every account's electricity in the site's period (closed ones too: they used it)."""
    rows = (
        await DailyUsage.filter(
            meter__site_id=site_id,
            account_id__isnull=False,
            meter__kind=MeterKind.ELECTRICITY,
            day__gte=period.first,
            day__lte=period.last,
        )
        .annotate(q=Sum("quantity_e4"), fen=Sum("amount_fen"))
        .group_by("account_id")
        .values("account_id", "q", "fen")
    )
    return {
        r["account_id"]: AccountUse(from_units(int(r["q"] or 0)), int(r["fen"] or 0)) for r in rows
    }
