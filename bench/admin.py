"""Admin benchmark (issue #13): the time the admin's pages take on a park of 15,000 rooms.

    ./run bench admin                                   # 15,000 rooms, 200 requests a page
    .venv/bin/python -m bench.admin --rooms 300 --requests 20 --days 3   # a quick look

Set-up (never timed): a PostgreSQL database of its own (`shuidian_bench_admin_<pid>`,
migrated, dropped at the end unless `--keep`) and a Redis of its own for the staff sessions.
One site of `--rooms` rooms (50 a floor, 20 floors a building), an open account and an
electricity meter per room, cloned in SQL from one row made through the ORM. `--usage-days`
days of daily usage per meter (a season's: the chart reads a week of them). `--days` days of
books through the ledger's batch API (`post_batch`, the ledger's clock set to each day in
turn so the days are spread as in a running park): an opening recharge per account, a usage
charge per account and day, a recharge per account every week (WeChat,
Alipay or cash), 1 % of the accounts charged into arrears, a few refunds held and settled.
The alarm state of every account (3 % at a level), their alarm records, 2 % of the meters
offline, 0.5 % with an open relay, a relay command queued (through the command service) for
each of those. A superadmin signs in.

Then `shuidian serve` itself (production mode, `--workers` web workers, PostgreSQL, the
Redis above) answers `--requests` requests to each page, one at a time, from an httpx client
signed in as a browser is (session cookie, CSRF at sign-in), after 10 warm-up requests:
/admin/ (the dashboard), /admin/figures (its live part, polled every minute),
/admin/rooms, /admin/meters and /admin/accounts (the lists; a page that answers 404 is reported
as "not on this tree"); then room monitoring (issue #14, goal p95 < 300 ms): /admin/monitor for
one floor, the whole site paged (first page, page 100, the rooms in alarm, a tenant search),
its 30-second tiles refresh, and a room's page with its live panel (`MONITOR_PAGES`). Each
meter has its room and live values (meter_live). The time is the client's, per request, on
loopback with nothing else in flight: the server's time plus one loopback round trip. The CPU
the server's processes and the database's backends spent, from /proc, divided by the requests,
says how much of it was work.

In the same run a bare Sanic app (same worker count) answers an HTML body of the
dashboard's size from one handler under the same client: the floor of the HTTP stack and the
client on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from sanic import Request, Sanic
from sanic.response import HTTPResponse, html

from bench.api import CpuMeter, free_port, start_ours, start_redis, stop, wait_http
from bench.common import admin, asyncpg_dsn, clone_rows, create_site, database_url
from server.ledger.posting import (
    Channel,
    ChargeType,
    Posting,
    TxKind,
    charge_legs,
    recharge_posting,
)

HOST = "127.0.0.1"
TZ = ZoneInfo("Asia/Shanghai")  # the settings' default
PAGES = ("/admin/", "/admin/figures", "/admin/rooms", "/admin/meters", "/admin/accounts")
# Room monitoring (issue #14): one floor, the whole site paged (first page, a deep page, a
# state filter, a search), the htmx refresh of the tiles, a room's page and its live panel.
MONITOR_PAGES = (
    "/admin/monitor?floor=7",
    "/admin/monitor",
    "/admin/monitor?page=100",
    "/admin/monitor?state=alarm",
    "/admin/monitor?q=基准租户1234",
    "/admin/monitor/tiles?page=2",
    "/admin/rooms/777",
    "/admin/rooms/777/live",
)
MONITOR_GOAL_MS = 300
PER_FLOOR, FLOORS = 50, 20
USERNAME, PASSWORD = "bench", "bench-password-42"
BARE_PATH = "/bare"
WARM_UP = 10
CHANNELS = (Channel.WECHAT, Channel.ALIPAY, Channel.CASH)


# -- the bare handler (subprocess) -------------------------------------------------------------
def serve_bare(port: int, size: int) -> None:
    """A Sanic app answering `size` bytes of HTML from one handler, no database."""
    app = Sanic("bench_admin_bare", configure_logging=False)
    body = "<!doctype html><html><body>" + "概" * max(0, (size - 40) // 3) + "</body></html>"

    async def bare(request: Request) -> HTTPResponse:
        return html(body)

    app.add_route(bare, BARE_PATH, methods=["GET"])
    app.run(host=HOST, port=port, single_process=True, motd=False, access_log=False)


# -- seeding (never timed) ---------------------------------------------------------------------
@contextmanager
def ledger_clock(at: datetime) -> Iterator[None]:
    """The ledger stamps its rows with the current time: set it to `at` while seeding, so a
    park's history is spread over its days."""
    with mock.patch("server.ledger.write.now", lambda: at):
        yield


async def seed(db_url: str, rooms: int, days: int, usage_days: int) -> None:
    """The park (see the module docstring), its books, its alarms and a superadmin."""
    from server.core.db import init_db, migrate
    from server.core.settings import load_settings
    from server.staff.service.users import create_admin

    settings = load_settings(db_url=db_url)
    await migrate(settings, db_url)
    await init_db(settings, db_url)
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await _structure(conn, rooms, days, usage_days)
    finally:
        await conn.close()
    await _books(rooms, days)
    await _commands()
    await create_admin(USERNAME, PASSWORD, actor="system:bench")


async def _structure(conn: asyncpg.Connection, rooms: int, days: int, usage_days: int) -> None:
    """Site, buildings, floors, rooms, accounts, meters, daily usage, alarm states, alarms."""
    now = datetime.now(UTC)
    opened = now - timedelta(days=days + 30)
    await create_site(conn, "基准集团", now)
    floors = -(-rooms // PER_FLOOR)
    buildings = -(-floors // FLOORS)
    await _first_rows(opened)
    await clone_rows(conn, "building", buildings, {"name": "g || '号楼'"})
    await clone_rows(conn, "floor", floors, {
        "building_id": f"(g - 1) / {FLOORS} + 1", "name": f"((g - 1) % {FLOORS} + 1) || 'F'",
        "sort_order": f"(g - 1) % {FLOORS} + 1",
    })  # fmt: skip
    await clone_rows(conn, "room", rooms, {
        "floor_id": f"(g - 1) / {PER_FLOOR} + 1",
        "name": f"(((g - 1) / {PER_FLOOR}) % {FLOORS} + 1)::text"
                f" || lpad(((g - 1) % {PER_FLOOR} + 1)::text, 2, '0')",
    })  # fmt: skip
    await clone_rows(conn, "account", rooms, {
        "room_id": "g", "number": "'A' || lpad(g::text, 7, '0')",
        "tenant_name": "'基准租户' || g",
    })  # fmt: skip
    await clone_rows(conn, "meter", rooms, {
        "account_id": "g", "room_id": "g", "address": "lpad(g::text, 12, '0')",
        "online": "g % 50 <> 0",
        "relay_state": "CASE WHEN g % 200 = 0 THEN 'open' ELSE 'closed' END",
    })  # fmt: skip
    for table in ("building", "floor", "room", "account", "meter"):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    today = now.astimezone(TZ).date()
    await conn.execute(
        "INSERT INTO daily_usage (meter_id, account_id, day, quantity_e4, band1_e4, band2_e4,"
        " band3_e4, band4_e4, band5_e4, amount_fen, updated_at)"
        " SELECT m.id, m.account_id, $1::date - d, 80000 + m.id % 97 * 100, 0, 30000, 30000,"
        " 20000 + m.id % 97 * 100, 0, 800, $2 FROM meter m, generate_series(0, $3 - 1) d",
        today, now, max(days, usage_days),
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO meter_live (meter_id, read_at, total, relay_state, instant_at, voltage,"
        " current, power, power_factor, updated_at) SELECT id, $1, 1000 + id % 500, relay_state,"
        " $1, 220 + id % 7, 2 + id % 5, 0.4 + (id % 9) * 0.1, 0.95, $1 FROM meter",
        now,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO account_alarm_state (account_id, state, override, daily_use_fen, updated_at)"
        " SELECT id, jsonb_build_object('level', CASE WHEN id % 33 = 0 THEN 1 + id % 2 ELSE 0"
        " END), '{}'::jsonb, '800', $1 FROM account",
        now,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO alarm_record (account_id, kind, level, balance_fen, message, created_at)"
        " SELECT id, 'balance', 1 + id % 2, 1000, '余额不足，请及时充值',"
        " $1::timestamptz - make_interval(mins => id) FROM account WHERE id % 33 = 0",
        now,
    )  # fmt: skip


async def _first_rows(opened: datetime) -> None:
    """Row 1 of building, floor, room, account and meter through the ORM (every column as the
    models default it), for `clone_rows` to copy."""
    from server.accounts.models import Account
    from server.metering.models import Meter
    from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState
    from server.places.models import Building, Floor, Room

    await Building.create(id=1, site_id=1, name="1号楼")
    await Floor.create(id=1, building_id=1, name="1F", sort_order=1)
    await Room.create(id=1, floor_id=1, name="101", area_m2=50)

    await Account.create(id=1, site_id=1, room_id=1, number="A0000001", tenant_name="基准租户1",
                         phone="13800138000", opened_at=opened)  # fmt: skip
    await Meter.create(id=1, site_id=1, account_id=1, kind=MeterKind.ELECTRICITY,
                       protocol=MeterProtocol.DLT645, address="000000000001", online=True,
                       relay_state=RelayState.CLOSED, installed_at=opened,
                       last_reading_at=opened)  # fmt: skip


async def _books(rooms: int, days: int) -> None:
    """The ledger's rows through `post_batch`, a day at a time, oldest first."""
    from tortoise.transactions import in_transaction

    from server.ledger import service as ledger
    from server.ledger.batch import post_batch

    today = datetime.now(UTC).astimezone(TZ).date()
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        at = min(datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=10),
                 datetime.now(UTC) - timedelta(minutes=1))  # fmt: skip
        postings = _postings(rooms, day, back, first=back == days - 1)
        with ledger_clock(at):
            for i in range(0, len(postings), 2000):
                async with in_transaction():
                    await post_batch(postings[i : i + 2000])
            for a in range(1, rooms + 1, max(1, rooms // 20)):  # ~20 refunds a day, paid out
                key = f"refund:{a}:{back}"
                await ledger.refund_hold(a, CHANNELS[a % 3], 1_000, key=key, actor="staff:1")
                await ledger.refund_settle(key, key=f"{key}:paid", actor="system:pay")


def _postings(rooms: int, day: date, back: int, *, first: bool) -> list[Posting]:
    """One day of a park's books: the opening recharge of every account on the first day,
    then a recharge per account a week; a usage charge per account, 1 % charged into
    arrears today."""
    out: list[Posting] = []
    for a in range(1, rooms + 1):
        if first:
            out.append(recharge_posting(a, Channel.CASH, 30_000, key=f"open:{a}", actor="staff:1"))
        elif a % 7 == back % 7:
            key = f"r:{a}:{back}"
            out.append(recharge_posting(a, CHANNELS[a % 3], 20_000, key=key, actor="tenant:b"))
        fen = 800 + (200_000 if a % 100 == 0 and back == 0 else 0)
        legs = charge_legs(a, ChargeType.ELECTRICITY, fen)
        out.append(Posting(f"usage:{a}:{day.isoformat()}", TxKind.CHARGE, legs, "电费",
                           "system:billing", allow_arrears=True, require_open=True))  # fmt: skip
    return out


async def _commands() -> None:
    """A relay command queued for every meter with an open relay (the controller is not
    running: they stay in flight)."""
    from server.metering.models import CommandOp, Meter
    from server.metering.service.commands import queue_command
    from server.metering.vocabulary import RelayState

    for meter_id in await Meter.filter(relay_state=RelayState.OPEN).values_list("id", flat=True):
        await queue_command(meter_id, CommandOp.CLOSE, {}, actor="system:bench", reason="基准")


# -- the client ---------------------------------------------------------------------------------
@dataclass
class Page:
    path: str
    status: int = 0
    size: int = 0
    times_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)

    def percentile(self, p: int) -> float:
        if len(self.times_ms) < 2:
            return self.times_ms[0] if self.times_ms else 0.0
        return statistics.quantiles(self.times_ms, n=100, method="inclusive")[p - 1]

    def cpu_ms(self, part: str) -> float:
        n = len(self.times_ms)
        return 1000 * self.cpu_s.get(part, 0.0) / n if n else 0.0


async def sign_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise SystemExit(f"no sign-in form at /admin/login ({form.status_code})")
    answer = await client.post("/admin/login", data={
        "username": USERNAME, "password": PASSWORD, "csrf_token": token.group(1)})  # fmt: skip
    if answer.status_code != 303:
        raise SystemExit(f"sign-in refused ({answer.status_code})")


async def measure(
    client: httpx.AsyncClient, path: str, requests: int, cpu: CpuMeter | None
) -> Page:
    """`requests` GETs of `path` one after the other, after the warm-up; a page that is not
    there (404) is measured no further."""
    page = Page(path)
    for _ in range(WARM_UP):
        answer = await client.get(path)
        page.status, page.size = answer.status_code, len(answer.content)
        if answer.status_code == 404:
            return page
    before = await cpu.snapshot() if cpu else None
    for _ in range(requests):
        start = time.perf_counter()
        answer = await client.get(path)
        page.times_ms.append(1000 * (time.perf_counter() - start))
        if answer.status_code != 200:
            page.status = answer.status_code
    if cpu is not None and before is not None:
        page.cpu_s = CpuMeter.used(before, await cpu.snapshot())
    return page


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class Result:
    pages: list[Page]
    bare: Page
    figures: dict[str, str]  # what the dashboard showed, to see the park is as seeded
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


async def run(args: argparse.Namespace) -> Result:
    from server.core.db import close_db

    load_before = os.getloadavg()
    name = f"shuidian_bench_admin_{os.getpid()}"
    db_url = database_url(name)
    redis_port, ours_port, bare_port = free_port(), free_port(), free_port()
    redis_url = f"redis://{HOST}:{redis_port}/0"
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    redis = start_redis(redis_port)
    ours = bare = None
    try:
        started = time.perf_counter()
        await seed(db_url, args.rooms, args.days, args.usage_days)
        await close_db()
        print(f"set-up: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            await conn.execute("ANALYZE")  # as autovacuum would after the bulk load
        finally:
            await conn.close()
        ours = start_ours(db_url, redis_url, ours_port, args.workers)
        await wait_http(ours_port, "/healthz", ours, "shuidian serve")
        cpu = CpuMeter(ours.pid, name, redis.pid)
        pages = []
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{ours_port}", timeout=60) as c:
            await sign_in(c)
            board = (await c.get(PAGES[0])).text
            figures = dict(re.findall(r'data-figure="([^"]+)">([^<]*)<', board))
            for path in (*PAGES, *MONITOR_PAGES):
                pages.append(await measure(c, path, args.requests, cpu))
        stop(ours)
        ours = None

        bare = subprocess.Popen(  # noqa: ASYNC220  (started once, before the timing)
            [sys.executable, "-m", "bench.admin", "--serve-bare", str(bare_port),
             str(pages[0].size)]
        )  # fmt: skip
        await wait_http(bare_port, BARE_PATH, bare, "the bare server")
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{bare_port}", timeout=60) as c:
            bare_page = await measure(c, BARE_PATH, args.requests, CpuMeter(bare.pid, None, None))
        return Result(pages, bare_page, figures, load_before, os.getloadavg())
    finally:
        stop(ours)
        stop(bare)
        stop(redis)
        await close_db()
        if args.keep:
            print(f"kept: {db_url}", file=sys.stderr)
        else:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(r: Result, args: argparse.Namespace) -> str:
    lines = [
        f"{args.rooms:,} rooms, accounts and meters, {args.usage_days} days of usage, "
        f"{args.days} of books; "
        f"{args.workers} web workers; {args.requests} requests a page, one at a time",
        "| page | status | bytes | p50 ms | p95 ms | p99 ms "
        "| CPU ms/request: server + PostgreSQL |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in [*r.pages, r.bare]:
        label = "bare Sanic" if p is r.bare else p.path
        if p.status == 404:
            lines.append(f"| {label} | not on this tree | | | | | |")
            continue
        lines.append(
            f"| {label} | {p.status} | {p.size:,} | {p.percentile(50):.1f} "
            f"| {p.percentile(95):.1f} | {p.percentile(99):.1f} "
            f"| {p.cpu_ms('server'):.2f} + {p.cpu_ms('database'):.2f} |"
        )
    lines.append("dashboard figures: " + ", ".join(f"{k} {v}" for k, v in r.figures.items()))
    measured = [p for p in r.pages if p.times_ms]
    lists = [p for p in measured if p.path in PAGES]
    worst = max(lists, key=lambda p: p.percentile(95)) if lists else None
    if worst is not None:
        verdict = "met" if worst.percentile(95) < 200 else "NOT met"
        lines.append(f"goal p95 < 200 ms: {verdict} (slowest {worst.path}: "
                     f"{worst.percentile(95):.1f} ms)")  # fmt: skip
    monitoring = [p for p in measured if p.path in MONITOR_PAGES]
    if monitoring:
        slow = max(monitoring, key=lambda p: p.percentile(95))
        verdict = "met" if slow.percentile(95) < MONITOR_GOAL_MS else "NOT met"
        lines.append(f"room monitoring goal p95 < {MONITOR_GOAL_MS} ms: {verdict} (slowest "
                     f"{slow.path}: {slow.percentile(95):.1f} ms)")  # fmt: skip
    start, end = (" ".join(f"{x:.2f}" for x in avg) for avg in (r.load_before, r.load_after))
    lines.append(f"load average (1/5/15 min) at the start {start}, at the end {end}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.admin", description=__doc__.split("\n")[0])
    p.add_argument("--rooms", type=int, default=15_000, help="rooms, each with account and meter")
    p.add_argument("--days", type=int, default=14, help="days of books (ledger history)")
    p.add_argument("--usage-days", type=int, default=90, help="days of daily usage")
    p.add_argument("--requests", type=int, default=200, help="timed requests a page")
    p.add_argument("--workers", type=int, default=2, help="web workers of the server")
    p.add_argument("--keep", action="store_true", help="keep the database (to look into it)")
    p.add_argument("--serve-bare", nargs=2, type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare:
        serve_bare(*args.serve_bare)
        return 0
    result = asyncio.run(run(args))
    print(report(result, args))
    failed = [p for p in result.pages if p.status not in (200, 404)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
