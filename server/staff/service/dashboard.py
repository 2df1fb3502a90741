"""The admin dashboard's figures, from the tables the core keeps up to date (meter state,
the accounts' alarm state, open meter commands, daily usage) and the books (money in per day,
server.ledger.statement): each counted by one query in the database per scope, never
recomputed from readings nor read row by row into Python."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from server.accounts.models import Account, AccountStatus
from server.ledger.sql import fetch, in_list, is_pg
from server.ledger.statement import money_in_days
from server.metering.models import AlarmRecord, DailyUsage, Meter, MeterCommand, MeterStatus
from server.metering.service.commands import OPEN
from server.metering.vocabulary import MeterKind, RelayState

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
    commands_in_flight: int  # queued or sent, not yet confirmed by the meter
    days: list[DayFigures]  # oldest first; the last is today
    alarms: list[RecentAlarm]

    @property
    def today(self) -> DayFigures:
        return self.days[-1]


async def dashboard(site_ids: list[int], tz: ZoneInfo, *, now: datetime) -> Dashboard:
    """The figures of these sites (the caller's scope) at `now`, each one query. The week's
    income and energy (the two that read thousands of rows) and the counts run side by side,
    each on its own pooled connection, so the page waits for the slowest, not for the sum."""
    first = now.astimezone(tz).date() - timedelta(days=DAYS - 1)
    counts, income, use, alarms = await asyncio.gather(
        _counts(site_ids),
        money_in_days(site_ids, tz=tz, first=first),
        _use(site_ids, first),
        _alarms(site_ids, tz),
    )
    days = [first + timedelta(days=i) for i in range(DAYS)]
    return Dashboard(
        **counts,
        days=[
            DayFigures(
                d,
                income.get(d, 0),
                use.get((d, MeterKind.ELECTRICITY.value), Decimal(0)),
                use.get((d, MeterKind.WATER.value), Decimal(0)),
            )
            for d in days
        ],
        alarms=alarms,
    )


async def _counts(site_ids: list[int]) -> dict[str, int]:
    """The meters' and accounts' counts: four queries (online, offline and tripped in one,
    open and in arrears in one)."""
    meters = await (
        Meter.filter(site_id__in=site_ids, status=MeterStatus.ACTIVE)
        .annotate(
            on=Count("id", _filter=Q(online=True)),
            off=Count("id", _filter=Q(online=False)),
            tripped=Count(
                "account_id", distinct=True,
                _filter=Q(relay_state=RelayState.OPEN, account_id__not_isnull=True),
            ),
        )
        .values("on", "off", "tripped")
    )  # fmt: skip
    accounts = await (
        Account.filter(site_id__in=site_ids, status=AccountStatus.OPEN)
        .annotate(open=Count("id"), arrears=Count("id", _filter=Q(balance_fen__lt=0)))
        .values("open", "arrears")
    )
    return {
        "meters_online": meters[0]["on"],
        "meters_offline": meters[0]["off"],
        "accounts_tripped": meters[0]["tripped"],
        "accounts_open": accounts[0]["open"],
        "accounts_in_arrears": accounts[0]["arrears"],
        "accounts_in_alarm": await _in_alarm(site_ids),
        "commands_in_flight": await MeterCommand.filter(
            meter__site_id__in=site_ids, status__in=OPEN
        ).count(),
    }


async def _in_alarm(site_ids: list[int]) -> int:
    """Open accounts whose alarm state has a level, read along migration 0019's partial
    index (the level stays in the state's JSON, which the alarm service alone writes)."""
    if not site_ids:
        return 0
    conn = connections.get("default")
    level = "(s.state->>'level')::int" if is_pg(conn) else "json_extract(s.state, '$.level')"
    sites, params = in_list(conn, "a.site_id", site_ids, 1, "int")
    rows = await fetch(
        conn,
        "SELECT COUNT(*) AS n FROM account_alarm_state s JOIN account a ON a.id = s.account_id"
        f" WHERE {level} > 0 AND a.status = '{AccountStatus.OPEN.value}' AND {sites}",
        params,
    )
    return int(rows[0]["n"])


async def _use(site_ids: list[int], first: date) -> dict[tuple[date, str], Decimal]:
    """Quantity per (day, meter kind) from `first` on, along daily_usage's day index (0019)."""
    rows = (
        await DailyUsage.filter(meter__site_id__in=site_ids, day__gte=first)
        .annotate(total=Sum("quantity_e4"))
        .group_by("day", "meter__kind")
        .values("day", "meter__kind", "total")
    )
    return {(r["day"], str(r["meter__kind"])): Decimal(int(r["total"] or 0)) * E4 for r in rows}


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
