"""Running the platform: the web app inside an asyncio loop, the workers beside it, and the
embedded demo that starts everything in one process."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from server.core.app import create_app
from server.core.db import close_db, init_db, migrate
from server.core.errors import ConfigError
from server.core.services import start_embedded_broker
from server.core.settings import Settings

log = logging.getLogger(__name__)

WORKERS = ("collector", "controller", "scheduler", "payments", "notifier", "invoices")

WorkerRun = Callable[[Settings, asyncio.Event], Awaitable[None]]


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def find_worker(name: str) -> WorkerRun | None:
    """`workers.<name>.run(settings, stop)`, or None when that worker does not exist yet."""
    if name not in WORKERS:
        raise ConfigError(f"unknown worker {name!r}; one of: {', '.join(WORKERS)}")
    try:
        module = importlib.import_module(f"workers.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"workers.{name}":
            return None
        raise
    return getattr(module, "run", None)


async def serve_web(
    settings: Settings,
    stop: asyncio.Event,
    *,
    manage_db: bool,
    ctx: dict[str, Any] | None = None,
) -> None:
    """Serve the Sanic app on settings.host:port until `stop` is set (one process).
    `ctx` items are put on `app.ctx` before start (the demo's payment sandbox)."""
    app = create_app(settings, manage_db=manage_db)
    for key, value in (ctx or {}).items():
        setattr(app.ctx, key, value)
    try:
        server = await app.create_server(
            host=settings.host, port=settings.port, return_asyncio_server=True
        )
    except OSError as exc:
        raise ConfigError(
            f"SHUIDIAN_PORT: cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from None
    if server is None:
        raise ConfigError(f"SHUIDIAN_PORT: cannot listen on {settings.host}:{settings.port}")
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        await stop.wait()
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


async def run_worker(name: str, settings: Settings, stop: asyncio.Event) -> None:
    run = find_worker(name)
    if run is None:
        raise ConfigError(f"worker {name!r} is not available in this version")
    await init_db(settings)
    try:
        await run(settings, stop)
    finally:
        await close_db()


async def demo(settings: Settings, stop: asyncio.Event) -> None:
    """Embedded mode in one process: database, MQTT broker, simulated park, workers, web."""
    from server.accounts.models import Account
    from server.metering.models import MeteringPolicy
    from server.metering.service.alarm_service import evaluate_accounts
    from server.payments.demo import start_sandbox_for_demo
    from server.seed import (
        offline_addresses,
        seed_history,
        seed_money,
        seed_non_payers,
        seed_park,
        seed_staff,
        seed_tenants,
    )
    from workers.sim.run import SimConfig, Simulation

    settings = _fresh_demo_database(settings)
    await migrate(settings)
    await init_db(settings)
    broker: Any = None
    pay: Any = None
    sim: Simulation | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if not settings.mqtt_url:
            broker = await start_embedded_broker(settings.embedded_mqtt_port)
            mqtt_url = f"mqtt://127.0.0.1:{settings.embedded_mqtt_port}"
        else:
            mqtt_url = settings.mqtt_url
        sim = Simulation(
            SimConfig(
                meters=settings.demo_meters,
                speed=settings.demo_speed,
                mqtt_url=mqtt_url,
                dlt645_port=0,
                modbus_port=0,
                modbus_rtu_port=0,
                cjt188_port=0,
            )
        )
        sim_endpoints = await sim.start()
        for address in offline_addresses(sim.directory):  # offline rooms to look at
            sim.park.meters[address].online = False
        now = datetime.now(UTC)
        summary = await seed_park(sim.park.meters.values(), sim.directory, now=now)
        await seed_money(summary.site_id, now=now)
        # 30 days of use and payments before today: every chart and list has a month to show.
        started = time.perf_counter()
        posted = await seed_history(summary.site_id, now=now, tz=settings.tz)
        log.info("demo history: %d postings in %.2f s", posted, time.perf_counter() - started)
        started = time.perf_counter()
        batch = await _demo_batch(summary.site_id, sim, settings)
        log.info("demo batch #%s run in %.2f s", batch, time.perf_counter() - started)
        await seed_non_payers(summary.site_id)
        # The alarm service sees the opening balances at once: the low ones are in alarm and
        # those at ¥0 tripped (room monitoring has them to show), without waiting for billing.
        await evaluate_accounts(
            await Account.filter(site_id=summary.site_id).values_list("id", flat=True), now=now
        )
        tenants = await seed_tenants(summary.site_id)
        staff = await seed_staff(summary.site_id)
        await MeteringPolicy.update_or_create(
            defaults={"poll_interval_s": settings.demo_poll_interval_s}, site_id=summary.site_id
        )
        pay = await start_sandbox_for_demo(f"http://{settings.host}:{settings.port}")
        await _reconcile_yesterday(pay.payments, now.astimezone(settings.tz).date())
        if settings.demo_speed != 1:  # polled readings stamped by the park's (fast) clock
            settings = settings.model_copy(update={"sim_clock": sim.park.clock.spec()})
        for name in WORKERS:
            run = find_worker(name)
            if name == "payments":
                from workers import payments as payments_worker

                run = partial(payments_worker.run, payments=pay.payments)
            if run is not None:
                tasks.append(asyncio.create_task(run(settings, stop), name=f"worker:{name}"))
        web = asyncio.create_task(
            serve_web(settings, stop, manage_db=False, ctx={"payments": pay.payments}),
            name="web",
        )
        tasks.append(web)
        tasks.append(asyncio.create_task(_tenants_recharge(pay, stop), name="tenants"))
        await asyncio.sleep(0.2)
        if web.done():
            web.result()  # raise the web server's start-up error (port in use …)
        endpoints = {"WeChat Pay sandbox": f"{pay.sandbox.wechat.base_url}/sandbox/pay/<order_no>"}
        _print_banner(settings, endpoints | sim_endpoints, summary, tasks, tenants, staff)
        await stop.wait()
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if pay is not None:
            await pay.aclose()
        if sim is not None:
            await sim.stop()
        if broker is not None:
            await broker.shutdown()
        await close_db()
        for result in results:
            if isinstance(result, ConfigError):
                raise result
            if isinstance(result, Exception):
                log.error("task ended with an error: %r", result)


async def _demo_batch(site_id: int, sim: Any, settings: Settings) -> int | None:
    """One finished batch for the 批量操作 page: a 点抄 of the first floor's meters on wired
    buses that answer (MQTT gateway meters need the worker's link, silent ones would wait for
    their retries), created through the batch service and run by a controller over the
    simulator's sockets, as the controller worker would; its id, or None if it did not finish
    (the demo starts without it; the log says why)."""
    from server.metering.models import BatchStatus, Meter, MeterBatch
    from server.metering.service import batches
    from server.metering.vocabulary import MeterKind, MeterProtocol
    from server.places.models import Floor
    from server.seed import offline_addresses
    from workers.controller import Controller
    from workers.registry import DriverRegistry

    wired = (MeterProtocol.DLT645, MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP)
    silent = set(offline_addresses(sim.directory))
    first = (
        await Floor.filter(building__site_id=site_id)
        .order_by("building__name", "sort_order")
        .limit(1)
        .values_list("id", "building__name", "name")
    )
    if not first:
        return None
    floor_id, building, floor = first[0]
    addresses = [
        a
        for a, proto in await Meter.filter(
            room__floor_id=floor_id, kind=MeterKind.ELECTRICITY
        ).values_list("address", "protocol")
        if proto in wired and a not in silent
    ]
    if not addresses:
        return None
    registry = DriverRegistry(timeout=settings.meter_timeout_s)
    try:
        title = f"{building} {floor} 巡检点抄"
        batch = await batches.create_batch(
            [site_id], action="read", title=title, actor="system:seed",
            selection=batches.Selection(site_id=site_id, floor_id=floor_id,
                                        addresses=tuple(addresses), source="巡检清单"),
        )  # fmt: skip
        controller = Controller(registry)
        for _ in range(10):  # a pass releases and runs it, the next one settles it
            await controller.run_once()
            if (await MeterBatch.get(id=batch.id)).status is BatchStatus.DONE:
                return batch.id
        log.warning("demo batch #%s did not finish at start-up", batch.id)
    except Exception:
        log.exception("demo batch failed")
    finally:
        await registry.close()
    return None


async def _reconcile_yesterday(payments: Any, today: date) -> None:
    """Yesterday's bills from the sandbox, matched as the scheduler does each morning: the
    finance pages' reconciliation has a day to show at start-up."""
    from server.payments.service import reconcile_yesterday

    try:
        await reconcile_yesterday(payments, today)
    except Exception:  # the demo starts without it; the log says why
        log.exception("demo reconciliation of yesterday failed")


async def _tenants_recharge(pay: Any, stop: asyncio.Event, period: float = 60.0) -> None:
    """Simulated tenants: whoever has under ¥30 left pays ¥100 by WeChat Pay through the
    sandbox, so the demo shows the whole loop — alarm, trip at zero, recharge, relay closed
    again — except the few who never pay (`server.seed.non_payer`: tripped and alarm rooms
    stay on the monitor). "Left" is the available balance (wallet and meters' money registers)."""
    from server.accounts.models import Account
    from server.payments.service import create_recharge_order
    from server.seed import non_payer

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
        if stop.is_set():
            return
        try:
            ids = await Account.all().values_list("id", flat=True)
            low = await _low_accounts([i for i in ids if not non_payer(i)])
            for account in await Account.filter(id__in=low):
                order, _ = await create_recharge_order(
                    pay.payments,
                    account.id,
                    "wechat",
                    10000,
                    actor=f"tenant:demo-{account.id}",
                    payer_openid=f"o-demo-{account.id}",
                    description="电费充值",
                )
                pay.pay(order.channel, order.out_trade_no)
                log.info("demo tenant %s pays ¥100 (%s)", account.number, order.out_trade_no)
        except Exception:
            log.exception("demo tenant recharge failed")


async def _low_accounts(ids: list[int], under_fen: int = 3000, most: int = 3) -> list[int]:
    """The (at most `most`) accounts with the least left, where some utility is under
    `under_fen` (a mixed account pays when either its meter or its wallet runs low)."""
    from server.metering.service.balance import available_balances

    balances = await available_balances(ids)
    low = sorted((b.lowest_fen, a) for a, b in balances.items() if b.lowest_fen < under_fen)
    return [a for _, a in low[:most]]


def _fresh_demo_database(settings: Settings) -> Settings:
    """The simulated park starts anew at every demo start (its meters keep no state), so the
    demo's own database does too: with the default database URL the demo uses
    data/demo.sqlite3 and rebuilds it. A database named explicitly is never deleted."""
    if settings.db_url != Settings.model_fields["db_url"].default:
        return settings
    path = settings.data_dir / "demo.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return settings.model_copy(update={"db_url": f"sqlite://{path}"})


def _print_banner(
    settings: Settings,
    endpoints: dict[str, str],
    summary: Any,
    tasks: list[asyncio.Task[None]],
    tenants: dict[str, list[str]],
    staff: tuple[str, str],
) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "水电 Shuidian — embedded demo is running",
        f"  API          {base}/api/v1",
        f"  API docs     {base}/docs",
        f"  Health       {base}/healthz",
        f"  Admin panel  {base}/admin/  sign in as {staff[0]} / {staff[1]}",
        f"  Database     {settings.db_url}",
        f"  Park         {summary.accounts} accounts, {summary.meters} meters, "
        f"{summary.rooms} rooms in 2 buildings, {summary.gateways} buses/gateways",
        f"  Running      {', '.join(t.get_name() for t in tasks)}",
        '  Tenants      log in with POST /api/v1/auth/login {"code": "demo-zhang"} '
        "(also demo-li, demo-wang; see README)",
        *(f"    {name:<10} {', '.join(numbers)}" for name, numbers in tenants.items()),
        "  Payments and simulator:",
        *(f"    {k:<19} {v}" for k, v in endpoints.items()),
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
