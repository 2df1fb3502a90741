"""Scheduler worker: the periodic work around meters.

Every `tick` (default 60 s):
- expire queued commands past their `expires_at` (the controller also does it when it
  reaches them; the sweep covers meters whose bus is stuck behind a silent one);
- sweep alarms: accounts with an active level, a negative balance or a deferred trip whose
  no-cut window has ended are evaluated again (repeats, arrears reminders, deferred trips);
- push the price changes that have come into force to the meter-billed meters on their
  plans (server.tariffs.push: one set-price batch per version, created once).

Once a day (at `daily_at`, local time):
- refresh each account's days-left forecast rate from its last 14 days of usage charges;
- reconcile every meter-billed meter: read its money register and purchase count and store
  every difference with the platform's (server.metering.service.reconcile);
- purge old finished jobs;
- remind tenants with overdue bills (server.property's arrears, through the notifier).

Once a month (from the 1st, at `daily_at`): the property billing run of the month before
for every site (server.property.service.run: fees, postpaid bills and the steps other
modules add), posted for real — idempotent per account, item and period, so a run taken up
again after a restart charges nothing twice.

Once a month (from the 1st at `daily_at`): levy the basic charge (基本电费) of two-part
plans for the month just ended (server.tariffs.levy, once per account and month), after
reading the month's maximum demand from the meters that report it (DL/T 645 上1结算日:
the meters settled at 00:00 on the 1st) for the accounts on a plan by demand whose demand
staff did not enter.

The work runs as durable jobs (server.jobs, docs/jobs.md): each period's job is enqueued
with a key naming the period (`scheduler.tick:<slot>`, `scheduler.daily:<date>`), so however
many scheduler processes run, each period's work is done once, and a daily run interrupted by
a restart is taken up again when its lease ends instead of being forgotten or done twice.

`run(settings, stop)` is the worker entry point (`shuidian worker scheduler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.accounts.models import Account
from server.billing.models import UsageChargeRow
from server.core.settings import Settings
from server.jobs.runner import Handler, Runner
from server.jobs.service import Claimed, enqueue, purge
from server.metering.forecast import DailyCharge, days_left
from server.metering.models import (
    AccountAlarmState,
    CommandStatus,
    Meter,
    MeterBilling,
    MeterCommand,
    MeterStatus,
)
from server.metering.service import commands as cmds
from server.metering.service.alarm_service import evaluate_accounts
from server.metering.service.reconcile import reconcile_meter
from server.places.models import Site
from server.property.service.bills import remind_overdue
from server.property.service.run import run_month
from server.tariffs.levy import (
    demand_meters,
    levy_capacity,
    month_bounds,
    parse_month,
    store_meter_demand,
)
from server.tariffs.push import push_due
from workers.meters.base import DemandReader, MeterError
from workers.registry import DriverRegistry, NoRoute

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
TICK, DAILY, LEVY = "scheduler.tick", "scheduler.daily", "scheduler.levy"
MONTHLY = "property.monthly"
DAILY_LEASE_S = 6 * 3600.0  # a park's reconciliation reads every meter-billed meter
KEEP_DONE, KEEP_DEAD = timedelta(days=7), timedelta(days=30)
STOP_GRACE_S = 10.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    def __init__(
        self, registry: DriverRegistry, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.registry, self.clock = registry, clock

    async def expire_commands(self) -> int:
        now = self.clock()
        stale = await MeterCommand.filter(
            status=CommandStatus.QUEUED, expires_at__lte=now
        ).prefetch_related("meter")
        for cmd in stale:
            await cmds.transition(cmd, CommandStatus.EXPIRED, now=now, error="命令已过期")
        return len(stale)

    async def sweep_alarms(self) -> int:
        now = self.clock()
        rows = await AccountAlarmState.all().values_list("account_id", "state", "deferred_until")
        ids = {
            account_id
            for account_id, state, deferred in rows
            if (state or {}).get("level") or (deferred is not None and deferred <= now)
        }
        ids |= set(await Account.filter(balance_fen__lt=0).values_list("id", flat=True))
        return await evaluate_accounts(ids, now=now) if ids else 0

    async def refresh_forecasts(self, window_days: int = 14) -> None:
        today = self.clock().astimezone(SHANGHAI).date()
        since = datetime.combine(today - timedelta(days=window_days), time(), SHANGHAI)
        per_day: dict[int, dict[date, int]] = {}
        rows = await UsageChargeRow.filter(reading_at__gte=since).values_list(
            "account_id", "reading_at", "amount_fen"
        )
        for account_id, at, fen in rows:
            day = at.astimezone(SHANGHAI).date()
            days = per_day.setdefault(account_id, {})
            days[day] = days.get(day, 0) + fen
        for account_id, days in per_day.items():
            history = [DailyCharge(d, f) for d, f in days.items()]
            forecast = days_left(1, history, today, window_days)
            rate = None if forecast.daily_fen is None else str(forecast.daily_fen)
            row, _ = await AccountAlarmState.get_or_create(account_id=account_id)
            row.daily_use_fen = rate
            await row.save(update_fields=["daily_use_fen"])

    async def reconcile(self) -> int:
        """Read every meter-billed meter's money register and store the differences."""
        now = self.clock()
        day = now.astimezone(SHANGHAI).date()
        meters = await Meter.filter(
            billing=MeterBilling.METER, status=MeterStatus.ACTIVE
        ).prefetch_related("gateway")
        differences = 0
        for meter in meters:
            try:
                money = await self.registry.driver(meter).read_money()
                rows = await reconcile_meter(meter, money, day=day, now=now)
            except (MeterError, NoRoute) as exc:
                rows = await reconcile_meter(meter, None, day=day, now=now, error=str(exc))
            differences += sum(r.kind != "match" for r in rows)
        return differences

    async def daily(self) -> None:
        await self.refresh_forecasts()
        await self.reconcile()
        now = self.clock()
        await remind_overdue(today=now.astimezone(SHANGHAI).date(), now=now)
        await purge(done_before=now - KEEP_DONE, dead_before=now - KEEP_DEAD)

    async def collect_demand(self, month: str) -> int:
        """Read the maximum demand of `month` from the meters of the accounts on a plan by
        demand and store it for the levy; how many accounts got one. An account with several
        such meters is left to staff (no one meter measures its supply's demand)."""
        start, end = month_bounds(parse_month(month))
        stored = 0
        for account_id, meters in (await demand_meters(month)).items():
            if len(meters) != 1:
                log.warning("account %d has %d demand meters: enter its demand", account_id,
                            len(meters))  # fmt: skip
                continue
            meter = meters[0]
            try:
                driver = self.registry.driver(meter)
                if not isinstance(driver, DemandReader):
                    continue
                demand = await driver.read_max_demand(previous=True)
            except (MeterError, NoRoute) as exc:
                log.warning("meter %s: no maximum demand for %s: %s", meter.address, month, exc)
                continue
            if demand.at is None or not start < demand.at <= end:
                log.warning("meter %s: its last settled period is not %s (%s)", meter.address,
                            month, demand.at)  # fmt: skip
                continue
            kw = demand.kw * meter.multiplier  # the meter counts behind its CT and PT
            stored += await store_meter_demand(account_id, month, kw)
        return stored

    async def monthly(self, month: str) -> int:
        """The property billing run of `month` for every site in service; how many sites."""
        sites = await Site.filter(retired_at=None).order_by("id").values_list("id", flat=True)
        for site_id in sites:
            await run_month(site_id, month, preview=False, actor="system:scheduler",
                            tz=SHANGHAI, now=self.clock())  # fmt: skip
        return len(sites)

    def handlers(self) -> dict[str, Handler]:
        async def tick(_: Claimed) -> None:
            await self.expire_commands()
            await self.sweep_alarms()
            await push_due(self.clock())

        async def daily(_: Claimed) -> None:
            await self.daily()

        async def monthly(job: Claimed) -> None:
            await self.monthly(str(job.payload["month"]))

        async def levy(job: Claimed) -> None:
            await self.collect_demand(job.payload["month"])
            report = await levy_capacity(job.payload["month"], now=self.clock())
            log.info(
                "levy %s: %d charged (%d fen), %d before, %d skipped", report.month,
                report.charged, report.charged_fen, report.already, len(report.skipped),
            )  # fmt: skip

        return {TICK: tick, DAILY: daily, LEVY: levy, MONTHLY: monthly}

    async def enqueue_due(self, *, tick: float = 60.0, daily_at: time = time(2, 0)) -> None:
        """This period's jobs; a period already enqueued (by any process) is left alone."""
        now = self.clock()
        slot = int(now.timestamp() // tick)
        await enqueue(TICK, run_at=now, dedupe_key=f"{TICK}:{slot}", max_attempts=1)
        local = now.astimezone(SHANGHAI)
        if local.time() >= daily_at:
            day = local.date().isoformat()
            await enqueue(DAILY, {"day": day}, run_at=now, dedupe_key=f"{DAILY}:{day}")
            last = (local.date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
            await enqueue(MONTHLY, {"month": last}, run_at=now, dedupe_key=f"{MONTHLY}:{last}")
            ended = (local.date().replace(day=1) - timedelta(days=1)).isoformat()[:7]
            await enqueue(LEVY, {"month": ended}, run_at=now, dedupe_key=f"{LEVY}:{ended}")

    async def run(
        self, stop: asyncio.Event, *, tick: float = 60.0, daily_at: time = time(2, 0)
    ) -> None:
        runner = Runner(
            self.handlers(),
            leases={
                TICK: max(300.0, 5 * tick), DAILY: DAILY_LEASE_S, LEVY: DAILY_LEASE_S,
                MONTHLY: DAILY_LEASE_S,
            },
            clock=self.clock,
        )  # fmt: skip
        ending = asyncio.Event()
        work = asyncio.create_task(runner.run(ending, idle_s=min(1.0, tick)), name="scheduler-jobs")
        try:
            while not stop.is_set():
                try:
                    await self.enqueue_due(tick=tick, daily_at=daily_at)
                except Exception:
                    log.exception("scheduler could not enqueue this period's jobs")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)
        finally:
            # The job in hand may finish; past the grace its lease hands it to another run.
            ending.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(work, STOP_GRACE_S)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Worker entry point."""
    from server.core.db import close_db, init_db
    from workers.mqtt import gateway_link_from

    await init_db(settings)
    try:
        async with gateway_link_from(settings) as link:
            registry = DriverRegistry(gateway_client=link)  # type: ignore[arg-type]
            try:
                await Scheduler(registry).run(stop)
            finally:
                await registry.close()
    finally:
        await close_db()
