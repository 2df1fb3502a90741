"""Tenant API benchmark (issue #12): GET /api/v1/accounts/{id} under load, authenticated.

    .venv/bin/python -m bench.api                      # 100 tenants × 3 meters, 10 s phases
    .venv/bin/python -m bench.api --endpoint healthz   # the same harness on GET /healthz
    .venv/bin/python -m bench.api --profile api.svg    # py-spy on one web worker during wrk

Layout
------
Everything on loopback. The run creates its own PostgreSQL database
(`shuidian_bench_api_<pid>`, migrated, dropped at the end) and starts its own Redis
(`redis-server` on a free port, nothing saved), so the CPU it reads is this run's alone.
It seeds `--tenants` accounts with `--meters` meters each (two electricity, one water; one
electricity meter of every fifth account meter-billed): live values per meter, `--days` days
of daily usage (today included), a ledger history per account (cash recharges and daily
electricity/water charges through `server.ledger.service`) and the alarms' forecast rate.
Each tenant is an identity bound to its account (owner); its bearer token is issued through
the session store (`RedisSessionStore.issue`) exactly as a login does.

Then, one after the other:

- ours: `shuidian serve` itself (SHUIDIAN_MODE=production, SHUIDIAN_WEB_WORKERS=2,
  PostgreSQL, the Redis above for the sessions), in its own process tree;
- bare: a Sanic app with one JSON handler (2 workers, no database), the floor of this
  machine's HTTP stack.

Each gets the same two measurements from a second process:

- `wrk` (one thread, `--connections` keep-alive connections, `--seconds`): the maximum
  rate. A Lua script cycles through the tenants: each request carries the next tenant's
  bearer token and asks for that tenant's account.
- `hey -q R -c C` at a fixed `--rate` (500 req/s: C workers at R req/s each, `-z` seconds):
  p50 and p99 at that rate (hey sends one header set: the first tenant's token). hey's
  workers start together and tick in step, so the rate arrives as bursts of C requests every
  C/rate seconds: p99 includes draining a burst (default C = 10: 10 requests every 20 ms).
  A worker waiting longer than its tick skips it: "achieved req/s" below 500 says so.

CPU seconds are read from /proc around each wrk phase: the server's process tree, the
PostgreSQL backends serving the bench database and the bench's Redis; divided by the
requests, the CPU per request, which other work on a shared machine inflates far less than
it inflates the rate. The load average at the start and the end says how busy the machine
was: the machine has 2 cores, and wrk itself takes part of one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bench.common import PG_ADMIN, admin, asyncpg_dsn, database_url, proc_cpu

HOST = "127.0.0.1"
DETAIL = "/api/v1/accounts/{id}"
PATHS = {"detail": DETAIL, "healthz": "/healthz"}
BARE_PATH = "/bare/{id}"
TZ = "Asia/Shanghai"  # the settings' default: the day the seeded usage falls on


# -- the bare handler (subprocess) -------------------------------------------------------------
def bare_app() -> Sanic:
    """A Sanic app answering JSON of the detail's size without any work."""
    app = Sanic("bench_bare", configure_logging=False)
    meter = {"id": 1, "address": "000000000001", "kind": "electricity", "label": "电表",
             "relay": "closed", "online": True, "last_read_at": "2026-12-05T08:00:00+08:00",
             "live": None, "today": {"quantity": "3.2100", "unit": "kWh", "amount_fen": 321},
             "balance_fen": None}  # fmt: skip

    async def bare(request: Request, id: int) -> HTTPResponse:
        token = request.headers.get("authorization", "")
        return json_response(
            {"id": id, "number": "B0000001", "balance_fen": 12345, "token_len": len(token),
             "credit_limit_fen": 0, "days_left": 12.5, "meters": [meter, meter, meter]}
        )  # fmt: skip

    app.add_route(bare, BARE_PATH.replace("{id}", "<id:int>"), methods=["GET"])
    return app


def serve_bare(port: int, workers: int) -> None:
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=bare_app)
    app = loader.load()
    app.prepare(host=HOST, port=port, workers=workers, motd=False, access_log=False)  # type: ignore[attr-defined]
    Sanic.serve(primary=app, app_loader=loader)


# -- seeding (never timed) ---------------------------------------------------------------------
async def seed(
    db_url: str, redis_url: str, tenants: int, meters: int, days: int
) -> list[tuple[int, str]]:
    """The park, its history and one bearer token per tenant: [(account id, token)]."""
    from redis.asyncio import Redis

    from server.accounts.models import Account, AccountBinding, TenantApp, TenantIdentity
    from server.accounts.service.sessions import RedisSessionStore
    from server.core.db import init_db, migrate
    from server.core.settings import load_settings
    from server.metering.models import (
        AccountAlarmState,
        DailyUsage,
        LiveValues,
        Meter,
        MeterBilling,
    )
    from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState
    from server.places.models import Building, Floor, Organisation, Room, Site

    settings = load_settings(db_url=db_url)
    await migrate(settings, db_url)
    await init_db(settings, db_url)
    now = datetime.now(UTC)
    org = await Organisation.create(name="基准集团")
    site = await Site.create(organisation=org, name="基准园区")
    building = await Building.create(site=site, name="1号楼")
    floor = await Floor.create(building=building, name="1F")
    await Room.bulk_create(
        [Room(floor=floor, name=f"{i:04d}", area_m2="50") for i in range(tenants)]
    )
    rooms = [r async for r in Room.filter(floor=floor).order_by("id")]
    await Account.bulk_create(
        [Account(site=site, room=room, number=f"B{i:07d}", tenant_name=f"基准租户{i}",
                 phone="13800138000", opened_at=now - timedelta(days=days + 30))
         for i, room in enumerate(rooms)]
    )  # fmt: skip
    accounts = [a.id async for a in Account.filter(site=site).order_by("id").only("id")]
    kinds = [MeterKind.ELECTRICITY, MeterKind.ELECTRICITY, MeterKind.WATER]
    await Meter.bulk_create(
        [Meter(site=site, account_id=aid, kind=kinds[m % 3],
               protocol=MeterProtocol.DLT645 if kinds[m % 3] == MeterKind.ELECTRICITY
               else MeterProtocol.CJT188,
               address=f"{i * meters + m + 1:012d}", online=True,
               relay_state=RelayState.CLOSED, last_reading_at=now,
               billing=MeterBilling.METER if m == 1 and i % 5 == 0 else MeterBilling.PLATFORM,
               money_fen=8800 if m == 1 and i % 5 == 0 else None,
               money_read_at=now if m == 1 and i % 5 == 0 else None,
               installed_at=now - timedelta(days=days + 30))
         for i, aid in enumerate(accounts) for m in range(meters)]
    )  # fmt: skip
    meter_rows = [m async for m in Meter.filter(site=site).order_by("id")]
    await LiveValues.bulk_create(
        [LiveValues(meter_id=m.id, read_at=now, total="1234.5600",
                    relay_state=RelayState.CLOSED, instant_at=now,
                    voltage=None if m.kind == MeterKind.WATER else "220.1000",
                    current=None if m.kind == MeterKind.WATER else "3.2000",
                    power=None if m.kind == MeterKind.WATER else "0.7040",
                    power_factor=None if m.kind == MeterKind.WATER else "0.9800",
                    updated_at=now)
         for m in meter_rows]
    )  # fmt: skip
    today = now.astimezone(ZoneInfo(TZ)).date()
    usage = [
        DailyUsage(meter_id=m.id, account_id=m.account_id, day=today - timedelta(days=d),
                   quantity_e4=(32_100 if m.kind == MeterKind.ELECTRICITY else 4_000) + 97 * d,
                   band2_e4=10_000, band3_e4=12_100, band4_e4=10_000,
                   amount_fen=None if m.billing == MeterBilling.METER else 321 + d,
                   updated_at=now)
        for m in meter_rows for d in range(days)
    ]  # fmt: skip
    await DailyUsage.bulk_create(usage, batch_size=2000)
    # The alarms' daily forecast rate (the scheduler refreshes it): days_left reads it.
    await AccountAlarmState.bulk_create(
        [AccountAlarmState(account_id=aid, daily_use_fen="705.5") for aid in accounts]
    )
    await _ledger_history(accounts, days)

    identities = [TenantIdentity(app=TenantApp.MINIAPP, openid=f"o-bench-{aid}", nickname="基准")
                  for aid in accounts]  # fmt: skip
    await TenantIdentity.bulk_create(identities)
    ids = {i.openid: i.id async for i in TenantIdentity.all()}
    await AccountBinding.bulk_create(
        [AccountBinding(identity_id=ids[f"o-bench-{aid}"], account_id=aid) for aid in accounts]
    )
    redis = Redis.from_url(redis_url)
    try:
        store = RedisSessionStore(redis, ttl_s=24 * 3600)
        tokens = []
        for aid in accounts:
            openid = f"o-bench-{aid}"
            token, _ = await store.issue(ids[openid], TenantApp.MINIAPP, openid)
            tokens.append((aid, token))
    finally:
        await redis.aclose()
    return tokens


async def _ledger_history(accounts: list[int], days: int) -> None:
    """Per account: a cash recharge every ten days and a charge per day and kind."""
    from server.ledger import service as ledger
    from server.ledger.posting import Channel, ChargeType

    async def history(chunk: list[int]) -> None:
        for aid in chunk:
            for d in range(days):
                if d % 10 == 0:
                    await ledger.recharge(aid, Channel.CASH, 20_000, key=f"bench:r:{aid}:{d}",
                                          actor="bench")  # fmt: skip
                for kind, fen in ((ChargeType.ELECTRICITY, 321 + d), (ChargeType.WATER, 40)):
                    await ledger.charge(aid, kind, fen, key=f"bench:c:{aid}:{d}:{kind}",
                                        actor="bench", allow_arrears=True)  # fmt: skip

    await asyncio.gather(*(history(accounts[i::4]) for i in range(4)))


# -- load --------------------------------------------------------------------------------------
@dataclass
class Load:
    """One load phase as the client saw it, and the CPU the serving side spent on it."""

    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s: dict[str, float] = field(default_factory=dict)  # server, database, redis
    transactions: float | None = None  # database transactions per request (--count-sql)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def cpu_ms(self, part: str) -> float:
        """CPU milliseconds per request of `part` (server, database or redis)."""
        return 1000 * self.cpu_s.get(part, 0.0) / self.requests if self.requests else 0.0


WRK_SCRIPT = """
local targets = {%s}
local i = 0
request = function()
  i = i %% #targets + 1
  local t = targets[i]
  return wrk.format("GET", t[1], {["Authorization"] = "Bearer " .. t[2]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, "
    .. "\\"errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk_script(targets: list[tuple[str, str]]) -> str:
    """The Lua script cycling through (path, token) pairs; prints a JSON summary line."""
    rows = ",".join(f'{{"{path}","{token}"}}' for path, token in targets)
    return WRK_SCRIPT % rows


def run_wrk(port: int, targets: list[tuple[str, str]], seconds: float, connections: int) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(wrk_script(targets))
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--timeout", "10s", "-s", f.name, f"http://{HOST}:{port}{targets[0][0]}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    match = re.search(r"^WRK (\{.*\})$", out, re.M)
    if match is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    s = json.loads(match.group(1))
    return Load("wrk", s["requests"], s["duration_us"] / 1e6, s["p50_us"] / 1000,
                s["p99_us"] / 1000, s["errors"])  # fmt: skip


def run_hey(port: int, path: str, token: str, rate: int, seconds: float, workers: int) -> Load:
    """`hey -q` at `rate` req/s in all (workers × rate/workers): latency at a fixed rate."""
    per_worker = max(1, round(rate / workers))
    out = subprocess.run(
        ["hey", "-z", f"{max(1, round(seconds))}s", "-c", str(workers), "-q", str(per_worker),
         "-H", f"Authorization: Bearer {token}", f"http://{HOST}:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_hey(out)


def parse_hey(out: str) -> Load:
    """hey's summary: total seconds, percentiles, status codes (non-200 and errors count)."""

    def number(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0

    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    _, _, error_lines = out.partition("Error distribution:")
    failed = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", error_lines, re.M))
    requests = sum(codes.values()) + failed
    return Load(
        "hey", requests, number(r"Total:\s+([\d.]+) secs"),
        1000 * number(r"50% in ([\d.]+) secs"),
        # hey leaves out a percentile it has too few samples for: the slowest then.
        1000 * (number(r"99% in ([\d.]+) secs") or number(r"Slowest:\s+([\d.]+) secs")),
        requests - codes.get(200, 0),
    )  # fmt: skip


# -- CPU of the serving side ---------------------------------------------------------------------
def process_tree(root: int) -> list[int]:
    """`root` and every process below it (Sanic's workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree = {root}
    while more := {pid for pid, ppid in parents.items() if ppid in tree} - tree:
        tree |= more
    return sorted(tree)


class CpuMeter:
    """CPU seconds of the server's process tree, the PostgreSQL backends of the bench
    database, and the bench's own Redis."""

    def __init__(self, server_pid: int, dbname: str | None, redis_pid: int | None) -> None:
        self.server_pid, self.dbname, self.redis_pid = server_pid, dbname, redis_pid

    async def _backends(self) -> list[int]:
        if self.dbname is None:
            return []
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(PG_ADMIN))
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1",
                                    self.dbname)  # fmt: skip
        finally:
            await conn.close()
        return [r["pid"] for r in rows]

    async def snapshot(self) -> dict[str, dict[int, float]]:
        return {
            "server": {p: proc_cpu(p) for p in process_tree(self.server_pid)},
            "database": {p: proc_cpu(p) for p in await self._backends()},
            "redis": {0: proc_cpu(self.redis_pid)} if self.redis_pid else {},
        }

    @staticmethod
    def used(
        start: dict[str, dict[int, float]], end: dict[str, dict[int, float]]
    ) -> dict[str, float]:
        return {part: sum(v - start[part].get(pid, 0.0) for pid, v in end[part].items())
                for part in end}  # fmt: skip


async def measured_wrk(cpu: CpuMeter, port: int, targets: list[tuple[str, str]],
                       args: argparse.Namespace) -> Load:  # fmt: skip
    before = await cpu.snapshot()
    load = await asyncio.to_thread(run_wrk, port, targets, args.seconds, args.connections)
    load.cpu_s = CpuMeter.used(before, await cpu.snapshot())
    return load


async def transactions(dbname: str) -> int:
    """Transactions the bench database has committed or rolled back (pg_stat_database).
    Each statement outside an explicit transaction is one. A backend reports its counts at
    most once a second while busy and up to PGSTAT_IDLE_INTERVAL (10 s) after it goes idle:
    wait that long around what is counted."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(PG_ADMIN))
    try:
        return int(await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", dbname
        ))  # fmt: skip
    finally:
        await conn.close()


# -- processes -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], what: str) -> None:
    """Until `path` answers (any status) or `proc` exits."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited during start-up")
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(request)
            status = await reader.readline()
            writer.close()
            if status.startswith(b"HTTP/1.1"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{what} did not answer within 60 s")


def start_redis(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
         "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def start_ours(db_url: str, redis_url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """`shuidian serve` as production runs it (env settings only: no shuidian.toml)."""
    env = {
        **os.environ,
        "SHUIDIAN_CONFIG": "/nonexistent/shuidian.toml",
        "SHUIDIAN_MODE": "production",
        "SHUIDIAN_DB_URL": db_url,
        "SHUIDIAN_REDIS_URL": redis_url,
        "SHUIDIAN_MQTT_URL": os.environ.get("SHUIDIAN_BENCH_MQTT", "mqtt://127.0.0.1:1883"),
        "SHUIDIAN_WEB_WORKERS": str(workers),
        "SHUIDIAN_HOST": HOST,
        "SHUIDIAN_PORT": str(port),
        "SHUIDIAN_PUBLIC_URL": f"http://{HOST}:{port}",
        "SHUIDIAN_LOG_LEVEL": "WARNING",
        "SHUIDIAN_SECRET_KEY": "bench-" + "x" * 40,
        "SHUIDIAN_TENANT_MINIAPP_APPID": "wxbench",
        "SHUIDIAN_TENANT_MINIAPP_SECRET": "bench-secret",
    }
    shuidian = Path(sys.executable).with_name("shuidian")
    return subprocess.Popen([str(shuidian), "serve"], env=env)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def py_spy() -> str:
    """py-spy from PATH or the project's tool virtualenv (.cache/tools)."""
    found = shutil.which("py-spy") or str(Path(".cache/tools/bin/py-spy").resolve())
    if not Path(found).exists():
        raise SystemExit("--profile needs py-spy: .cache/tools/bin/pip install py-spy")
    return found


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class Result:
    endpoint: str
    tenants: int
    ours_wrk: Load
    ours_hey: Load
    bare_wrk: Load
    bare_hey: Load
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


async def run(args: argparse.Namespace) -> Result:
    from server.core.db import close_db

    for tool in ("wrk", "hey", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench.api needs `{tool}` (apt-get install wrk hey redis-server)")
    load_before = os.getloadavg()
    name = f"shuidian_bench_api_{os.getpid()}"
    db_url = database_url(name)
    redis_port, ours_port, bare_port = free_port(), free_port(), free_port()
    redis_url = f"redis://{HOST}:{redis_port}/0"
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    redis = start_redis(redis_port)
    ours = bare = None
    try:
        tokens = await seed(db_url, redis_url, args.tenants, args.meters, args.days)
        await close_db()
        path = PATHS[args.endpoint]
        targets = [(path.format(id=aid), token) for aid, token in tokens]
        first_path, first_token = targets[0]

        ours = start_ours(db_url, redis_url, ours_port, args.workers)
        await wait_http(ours_port, "/healthz", ours, "shuidian serve")
        cpu = CpuMeter(ours.pid, name, redis.pid)
        await asyncio.to_thread(run_wrk, ours_port, targets, 1, args.connections)  # warm-up
        spy = None
        if args.profile:
            # A web worker: the process of the tree that worked most in the warm-up.
            worker = max(process_tree(ours.pid), key=proc_cpu)
            # A .txt profile is folded stacks (one line per stack, summed); else a flame graph.
            fmt = "raw" if args.profile.endswith(".txt") else "flamegraph"
            spy = subprocess.Popen(  # noqa: ASYNC220  (started once, before the timing)
                [py_spy(), "record", "-p", str(worker), "-o", args.profile, "-f", fmt, "-d",
                 str(max(1, round(args.seconds))), "--nonblocking"]
            )  # fmt: skip
        if args.count_sql:
            await asyncio.sleep(11)
            xacts = await transactions(name)
        ours_wrk = await measured_wrk(cpu, ours_port, targets, args)
        if spy is not None:
            spy.wait(60)
        if args.count_sql:
            await asyncio.sleep(11)
            ours_wrk.transactions = (await transactions(name) - xacts) / ours_wrk.requests
        ours_hey = await asyncio.to_thread(
            run_hey, ours_port, first_path, first_token, args.rate, args.seconds, args.hey_workers
        )
        stop(ours)
        ours = None

        bare = subprocess.Popen(  # noqa: ASYNC220  (started once, before the timing)
            [sys.executable, "-m", "bench.api", "--serve-bare", str(bare_port), str(args.workers)]
        )
        await wait_http(bare_port, BARE_PATH.format(id=1), bare, "the bare server")
        bare_targets = [(BARE_PATH.format(id=aid), token) for aid, token in tokens]
        bare_cpu = CpuMeter(bare.pid, None, None)
        await asyncio.to_thread(run_wrk, bare_port, bare_targets, 1, args.connections)
        bare_wrk = await measured_wrk(bare_cpu, bare_port, bare_targets, args)
        bare_hey = await asyncio.to_thread(
            run_hey, bare_port, bare_targets[0][0], first_token, args.rate, args.seconds,
            args.hey_workers,
        )  # fmt: skip
        return Result(args.endpoint, len(tokens), ours_wrk, ours_hey, bare_wrk, bare_hey,
                      load_before, os.getloadavg())  # fmt: skip
    finally:
        stop(ours)
        stop(bare)
        stop(redis)
        await close_db()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(r: Result, args: argparse.Namespace) -> str:
    # The end's figure includes this run's own load; the start's is the neighbours'.
    busy = r.load_before[0] > 1.0
    lines = [
        f"GET {PATHS[r.endpoint]} — {r.tenants} tenants × {args.meters} meters, {args.days} days "
        f"of history; {args.workers} web workers; wrk 1 thread × {args.connections} connections "
        f"for {args.seconds:g} s; hey {args.hey_workers} workers at {args.rate} req/s",
        "| server | wrk req/s | wrk p50 / p99 ms | errors | CPU ms/request: server + PostgreSQL "
        f"+ Redis | hey at {args.rate}/s: achieved req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, w, h in (("ours", r.ours_wrk, r.ours_hey), ("bare Sanic", r.bare_wrk, r.bare_hey)):
        parts = [w.cpu_ms(k) for k in ("server", "database", "redis")]
        lines.append(
            f"| {label} | {w.rate:,.0f} | {w.p50_ms:.1f} / {w.p99_ms:.1f} | {w.errors} "
            f"| {parts[0]:.2f} + {parts[1]:.2f} + {parts[2]:.2f} = {sum(parts):.2f} "
            f"| {h.rate:,.0f} | {h.p50_ms:.1f} | {h.p99_ms:.1f} | {h.errors} |"
        )
    ratio = r.ours_wrk.rate / r.bare_wrk.rate if r.bare_wrk.rate else 0.0
    lines.append(f"ours ÷ bare (wrk req/s): {ratio:.3f} (goal ≥ 0.35); "
                 f"p99 at {args.rate}/s: {r.ours_hey.p99_ms:.1f} ms (goal < 50 ms)")  # fmt: skip
    if r.ours_wrk.transactions is not None:
        lines.append(
            f"ours: {r.ours_wrk.transactions:.2f} database transactions per request "
            "(pg_stat_database; each statement outside a transaction is one)"
        )
    start, end = (" ".join(f"{x:.2f}" for x in avg) for avg in (r.load_before, r.load_after))
    lines.append(
        f"load average (1/5/15 min) at the start {start}, at the end {end}"
        + (" — the machine was busy before the run (2 cores): rates are low, CPU per request"
           " less affected"
           if busy else " — quiet")
    )  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", choices=sorted(PATHS), default="detail")
    p.add_argument("--tenants", type=int, default=100)
    p.add_argument("--meters", type=int, default=3, help="meters per tenant")
    p.add_argument("--days", type=int, default=30, help="days of usage and ledger history")
    p.add_argument("--workers", type=int, default=2, help="web workers (ours and bare)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each load phase")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--rate", type=int, default=500, help="hey's fixed rate, req/s in all")
    p.add_argument(
        "--hey-workers", type=int, default=10,
        help="hey -c, each at rate/c (they start together: bursts of c every c/rate s)",
    )  # fmt: skip
    p.add_argument(
        "--profile", metavar="OUT.svg|OUT.txt",
        help="py-spy record one worker during wrk (.txt: folded stacks)",
    )  # fmt: skip
    p.add_argument(
        "--count-sql", action="store_true",
        help="count database transactions per request (waits 2 × 11 s for PostgreSQL's stats)",
    )  # fmt: skip
    p.add_argument("--serve-bare", nargs=2, type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare:
        serve_bare(*args.serve_bare)
        return 0
    result = asyncio.run(run(args))
    print(report(result, args))
    errors = result.ours_wrk.errors + result.ours_hey.errors
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
