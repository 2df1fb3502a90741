"""The admin dashboard's figures, from the tables the core keeps up to date (meter state,
the accounts' alarm state, paid recharge orders, daily usage): counted in the database per
scope, never recomputed from readings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from tortoise.functions import Sum

from server.accounts.models import Account, AccountStatus
from server.metering.models import (
    AccountAlarmState,
    AlarmRecord,
    DailyUsage,
    Meter,
    MeterStatus,
)
from server.metering.vocabulary import MeterKind, RelayState
from server.payments.models import OrderStatus, RechargeOrder

DAYS = 7  # the chart's days, today included
E4 = Decimal("0.0001")  # daily_usage quantities are whole units of 0.0001 kWh / m³


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    income_fen: int
    electricity_kwh: Decimal
    water_m3: Decimal


@dataclass(frozen=True, slots=True)
class RecentAlarm:
    at: datetime
    account_number: str
    tenant_name: str
    level: int
    message: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    meters_online: int
    meters_offline: int
    accounts_open: int
    accounts_in_alarm: int
    accounts_tripped: int
    accounts_in_arrears: int
    days: list[DayFigures]  # oldest first; the last is today
    alarms: list[RecentAlarm]

    @property
    def today(self) -> DayFigures:
        return self.days[-1]


async def dashboard(site_ids: list[int], tz: ZoneInfo, *, now: datetime) -> Dashboard:
    """The figures of these sites (the caller's scope) at `now`."""
    meters = Meter.filter(site_id__in=site_ids, status=MeterStatus.ACTIVE)
    online = await meters.filter(online=True).count()
    offline = await meters.filter(online=False).count()
    tripped = len(
        set(
            await meters.filter(relay_state=RelayState.OPEN, account_id__not_isnull=True)
            .distinct()
            .values_list("account_id", flat=True)
        )
    )
    open_accounts = Account.filter(site_id__in=site_ids, status=AccountStatus.OPEN)
    states = await AccountAlarmState.filter(
        account__site_id__in=site_ids, account__status=AccountStatus.OPEN
    ).values_list("state", flat=True)
    today = now.astimezone(tz).date()
    return Dashboard(
        meters_online=online,
        meters_offline=offline,
        accounts_open=await open_accounts.count(),
        accounts_in_alarm=sum(1 for s in states if (s or {}).get("level", 0) > 0),
        accounts_tripped=tripped,
        accounts_in_arrears=await open_accounts.filter(balance_fen__lt=0).count(),
        days=await _days(site_ids, tz, today),
        alarms=await _alarms(site_ids, tz),
    )


async def _days(site_ids: list[int], tz: ZoneInfo, today: date) -> list[DayFigures]:
    first = today - timedelta(days=DAYS - 1)
    since = datetime.combine(first, time(), tz)
    paid = await RechargeOrder.filter(
        account__site_id__in=site_ids, status=OrderStatus.PAID, paid_at__gte=since
    ).values_list("paid_at", "amount_fen")
    income: dict[date, int] = {}
    for paid_at, amount in paid:  # per local day: a few hundred rows a day, not worth SQL tz
        day = paid_at.astimezone(tz).date()
        income[day] = income.get(day, 0) + amount
    use = (
        await DailyUsage.filter(meter__site_id__in=site_ids, day__gte=first)
        .annotate(total=Sum("quantity_e4"))
        .group_by("day", "meter__kind")
        .values("day", "meter__kind", "total")
    )
    quantity: dict[tuple[date, str], Decimal] = {
        (row["day"], str(row["meter__kind"])): Decimal(int(row["total"] or 0)) * E4 for row in use
    }
    days = [first + timedelta(days=i) for i in range(DAYS)]
    return [
        DayFigures(
            d,
            income.get(d, 0),
            quantity.get((d, MeterKind.ELECTRICITY.value), Decimal(0)),
            quantity.get((d, MeterKind.WATER.value), Decimal(0)),
        )
        for d in days
    ]


async def _alarms(site_ids: list[int], tz: ZoneInfo, limit: int = 10) -> list[RecentAlarm]:
    rows = (
        await AlarmRecord.filter(account__site_id__in=site_ids)
        .order_by("-created_at", "-id")
        .limit(limit)
        .values("created_at", "account__number", "account__tenant_name", "level", "message")
    )
    return [
        RecentAlarm(
            r["created_at"].astimezone(tz), r["account__number"], r["account__tenant_name"],
            r["level"], r["message"],
        )
        for r in rows
    ]  # fmt: skip
