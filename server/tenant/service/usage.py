"""A meter's use by day or by month, from the daily-usage table (never from raw readings).

Every period of the range is listed (a day without a row used nothing); money is the
platform's charges (null when nothing was charged, e.g. a meter-billed meter); TOU bands
are electricity's 尖峰平谷 (band 5, 深谷, as `deep_valley` where a tariff has it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from server.core.errors import NotFound, ValidationFailed
from server.metering.service.account_meters import UsageDay, meter_kind, usage_days
from server.metering.service.daily_usage import zone
from server.tenant.service.access import bound_account

MAX_DAYS = 92
MAX_MONTHS = 24
DEFAULT_DAYS = 30
DEFAULT_MONTHS = 12
BAND_NAMES = {1: "sharp", 2: "peak", 3: "flat", 4: "valley", 5: "deep_valley"}
UNIT = {"electricity": "kWh", "water": "m³"}
ZERO = Decimal("0.0000")


@dataclass(frozen=True, slots=True)
class Period:
    """The range asked for: `by` and the first and last day of it."""

    by: Literal["day", "month"]
    start: date
    end: date


def period(by: Literal["day", "month"], start: date | None, end: date | None) -> Period:
    """The range with its defaults (the last 30 days / 12 months to today); 422 naming the
    field when it is backwards or longer than 92 days / 24 months."""
    end = end or datetime.now(zone()).date()
    if by == "month":
        start = (start or _months_back(end, DEFAULT_MONTHS - 1)).replace(day=1)
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        too_long = months > MAX_MONTHS
    else:
        start = start or end - timedelta(days=DEFAULT_DAYS - 1)
        too_long = (end - start).days + 1 > MAX_DAYS
    if start > end:
        raise ValidationFailed("开始日期不能晚于结束日期", field="start")
    if too_long:
        limit = f"{MAX_MONTHS} 个月" if by == "month" else f"{MAX_DAYS} 天"
        raise ValidationFailed(f"查询范围不能超过 {limit}", field="start")
    return Period(by, start, end)


async def meter_usage(
    identity_id: int, account_id: int, meter_id: int, span: Period
) -> dict[str, Any]:
    """The contract's usage answer; `NotFound` unless the account is bound to the caller and
    the meter is the account's."""
    await bound_account(identity_id, account_id)
    kind = await meter_kind(account_id, meter_id)
    if kind is None:
        raise NotFound("表计不存在", meter_id=meter_id)
    days = await usage_days(account_id, meter_id, span.start, span.end)
    electric = kind.value == "electricity"
    return {
        "meter_id": meter_id,
        "kind": kind.value,
        "unit": UNIT[kind.value],
        "by": span.by,
        "items": [_item(label, rows, electric) for label, rows in _grouped(days, span)],
    }


def _grouped(days: list[UsageDay], span: Period) -> Iterable[tuple[str, list[UsageDay]]]:
    by_label: dict[str, list[UsageDay]] = {}
    for d in days:
        by_label.setdefault(_label(d.day, span.by), []).append(d)
    for label in _labels(span):
        yield label, by_label.get(label, [])


def _labels(span: Period) -> list[str]:
    if span.by == "day":
        count = (span.end - span.start).days + 1
        return [(span.start + timedelta(days=i)).isoformat() for i in range(count)]
    labels, at = [], span.start
    while at <= span.end:
        labels.append(_label(at, "month"))
        at = _months_back(at, -1)
    return labels


def _label(day: date, by: str) -> str:
    return day.isoformat() if by == "day" else f"{day.year:04d}-{day.month:02d}"


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _item(label: str, rows: list[UsageDay], electric: bool) -> dict[str, Any]:
    charged = [r.amount_fen for r in rows if r.amount_fen is not None]
    bands: dict[str, str] | None = None
    if electric and any(r.bands for r in rows):
        sums = {b: sum((r.bands.get(b, ZERO) for r in rows), ZERO) for b in BAND_NAMES}
        bands = {BAND_NAMES[b]: str(q) for b, q in sums.items() if b < 5 or q}
    return {
        "period": label,
        "quantity": str(sum((r.quantity for r in rows), ZERO)),
        "amount_fen": sum(charged) if charged else None,
        "bands": bands,
    }
