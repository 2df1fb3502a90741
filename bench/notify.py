"""Notification benchmark (issue #6): verified WeChat Pay notifications → credited wallets.

    .venv/bin/python -m bench.notify --orders 10000 --concurrency 32 [--workers 2]

Layout
------
Our Sanic app (`create_app`) runs in a subprocess on its own PostgreSQL database
(`shuidian_bench_notify_<pid>`, created, migrated and dropped by the run): one process, or
`--workers N` Sanic worker processes as `shuidian serve` runs them with
SHUIDIAN_WEB_WORKERS=N; `--pool` database connections per worker. The client pre-builds one
notification per order exactly as WeChat Pay does (AES-GCM resource, SHA256withRSA over
"timestamp\\nnonce\\nbody\\n" with the platform key: `server.payments.sandbox` signing), then
posts them over keep-alive HTTP/1.1 connections, `--concurrency` requests in flight:

- baseline: the same bodies and headers to `/bench/noop` on the same server, which answers
  204 without any work (the HTTP floor of this machine);
- ours: `/api/v1/pay/notify/wechat`: verify (RSA + AES-GCM), inbox row, order row lock,
  ledger credit, follow-up marker (the notifications that arrive together in one
  transaction: the worker's group commit, server/payments/service/inbox_batch.py),
  answer; the follow-up (metering `on_wallet_credited`)
  runs after the answer in the same process, batched by its drainer. The run waits until
  no follow-up is pending and reports how long after the last answer that was, and the
  rate with that tail included: a rate that left follow-ups behind is not sustained.

CPU seconds of the server processes, of the PostgreSQL backends serving the bench database
and of the client are read from /proc around each phase (follow-up tail included): the CPU
cost per request, which other work on a shared machine inflates far less than it inflates
the wall-clock rate.

`--dupes` adds that fraction of duplicate notifications (resends), sent concurrently with the
originals. Afterwards every order must be credited exactly once, every follow-up done and
`check_ledger()` must pass; the run fails otherwise. Latency is per request, measured by the
client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sanic import Request
from sanic.response import HTTPResponse, empty

from bench.common import PG_ADMIN, admin, asyncpg_dsn, database_url

HOST = "127.0.0.1"
NOTIFY_PATH = "/api/v1/pay/notify/wechat"
NOOP_PATH = "/bench/noop"


# -- server side (subprocess) ---------------------------------------------------------------
async def noop(request: Request) -> HTTPResponse:
    """The same server answering without work: the HTTP floor."""
    return empty(204)


def build_app(db_url: str, keys_file: str, pool: int) -> object:
    """The app as each worker process builds it: create_app + the sandbox's WeChat keys."""
    import logging

    from server.core.app import create_app
    from server.core.settings import load_settings
    from server.payments.config import PaymentSettings
    from server.payments.providers.base import Channel
    from server.payments.providers.wechat import WechatPayProvider
    from server.payments.sandbox.keys import SandboxKeys
    from server.payments.service.runtime import Payments

    logging.disable(logging.WARNING)
    keys = SandboxKeys(**json.loads(open(keys_file).read()))
    settings = load_settings(db_url=db_url, db_pool_max=pool, log_level="WARNING")
    # manage_db=False: init_db() binds Tortoise to the listener's context only, which the
    # request tasks do not see; a global context is what a long-running server needs.
    app = create_app(settings, name="bench_notify", manage_db=False)

    @app.before_server_start
    async def _db(app: object) -> None:
        from tortoise import Tortoise

        from server.core.db import tortoise_config

        await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)

    wechat = WechatPayProvider(keys.wechat_config("http://127.0.0.1:9"))
    app.ctx.payments = Payments(PaymentSettings(), {Channel.WECHAT: wechat})

    app.add_route(noop, NOOP_PATH, methods=["POST"])
    return app


def serve(db_url: str, port: int, keys_file: str, workers: int, pool: int) -> None:
    """One process (`workers` 1), or Sanic's worker processes as `shuidian serve` runs them
    with SHUIDIAN_WEB_WORKERS > 1 (each builds the app from the factory)."""
    from functools import partial

    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    if workers == 1:
        app = build_app(db_url, keys_file, pool)
        app.run(host=HOST, port=port, single_process=True, access_log=False, motd=False)  # type: ignore[attr-defined]
        return
    loader = AppLoader(factory=partial(build_app, db_url, keys_file, pool))
    app = loader.load()
    app.prepare(host=HOST, port=port, workers=workers, access_log=False, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


# -- client side -----------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s: dict[str, float]  # CPU seconds used in the phase: server, database, client

    def cpu_ms(self, part: str) -> float:
        return 1000 * self.cpu_s[part] / self.requests

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


async def _prepare(db_url: str, orders: int, history: int = 1) -> list[tuple[str, int]]:
    """Accounts and recharge orders written directly (setup, not measured). With `history`,
    each account has paid that many times before (cash at the counter, through the ledger):
    its wallet's chart row and earlier ledger rows exist, as for most tenants."""
    from server.core.db import init_db, migrate
    from server.core.settings import load_settings

    settings = load_settings(db_url=db_url)
    await migrate(settings, db_url)
    await init_db(settings, db_url)
    from server.accounts.models import Account
    from server.payments.models import RechargeOrder
    from server.payments.providers.base import Channel
    from server.payments.service.orders import new_number
    from server.places.models import Building, Floor, Organisation, Room, Site

    org = await Organisation.create(name="基准集团")
    site = await Site.create(organisation=org, name="基准园区")
    floor = await Floor.create(building=await Building.create(site=site, name="1号楼"), name="1F")
    room = await Room.create(floor=floor, name="0101", area_m2="50")
    now = datetime.now(UTC)
    accounts = [
        Account(site=site, room=room, number=f"B{i:07d}", tenant_name="基准租户", opened_at=now)
        for i in range(orders)
    ]
    await Account.bulk_create(accounts, batch_size=1000)
    ids = [a.id async for a in Account.filter(site=site).order_by("id").only("id")]
    rows = [
        RechargeOrder(out_trade_no=new_number("R", now), account_id=aid, channel=Channel.WECHAT,
                      amount_fen=1000 + i % 5000, expires_at=now + timedelta(hours=1),
                      created_by="bench")
        for i, aid in enumerate(ids)
    ]  # fmt: skip
    await RechargeOrder.bulk_create(rows, batch_size=1000)
    if history:
        from server.ledger import service as ledger
        from server.ledger.posting import Channel as LedgerChannel

        async def opened(chunk: list[int]) -> None:
            for aid in chunk:
                for n in range(history):
                    key = f"bench-open:{aid}:{n}"
                    await ledger.recharge(aid, LedgerChannel.CASH, 5000, key=key, actor="bench")

        await asyncio.gather(*(opened(ids[i::8]) for i in range(8)))
    return [(r.out_trade_no, r.amount_fen) for r in rows]


def _notifications(keys: object, orders: list[tuple[str, int]]) -> list[tuple[bytes, bytes]]:
    """(header block, body) per order, signed as WeChat Pay signs them."""
    from server.payments.sandbox.wechat_signing import WechatPlatformSigner

    signer = WechatPlatformSigner(keys, lambda: datetime.now(UTC))  # type: ignore[arg-type]
    out = []
    for no, amount in orders:
        resource = {
            "appid": keys.wechat_appid, "mchid": keys.wechat_mchid,  # type: ignore[attr-defined]
            "out_trade_no": no, "transaction_id": "42" + secrets.token_hex(13),
            "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
            "bank_type": "OTHERS", "attach": "",
            "success_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "payer": {"openid": "o-bench"},
            "amount": {"total": amount, "payer_total": amount, "currency": "CNY",
                       "payer_currency": "CNY"},
        }  # fmt: skip
        body = signer.envelope("TRANSACTION.SUCCESS", "支付成功", "transaction", resource)
        headers, body = signer.builder(body, None)()
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append((lines.encode(), body))
    return out


class Conn:
    """A keep-alive HTTP/1.1 connection (one request at a time); small and predictable."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, path: str, head: bytes, body: bytes) -> int:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n".encode()
            + head + b"\r\n" + body
        )  # fmt: skip
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1])


class CpuMeter:
    """CPU seconds (user + system, from /proc) of the server's processes, the PostgreSQL
    backends serving the bench database, and this client: a cost per request that other
    work on the machine does not inflate the way it inflates the wall-clock rate."""

    def __init__(self, server_pid: int, dbname: str) -> None:
        self.server_pid, self.dbname = server_pid, dbname
        self.tick = os.sysconf("SC_CLK_TCK")

    def _proc(self, pid: int) -> tuple[int, float]:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / self.tick

    def _tree(self) -> dict[int, float]:
        stats: dict[int, tuple[int, float]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stats[int(entry)] = self._proc(int(entry))
                except OSError:
                    pass
        tree, grew = {self.server_pid}, True
        while grew:
            more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
            tree |= more
            grew = bool(more)
        return {pid: stats[pid][1] for pid in tree if pid in stats}

    async def _backends(self) -> dict[int, float]:
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(PG_ADMIN))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.dbname
            )
        finally:
            await conn.close()
        out = {}
        for row in rows:
            try:
                out[row["pid"]] = self._proc(row["pid"])[1]
            except OSError:
                pass
        return out

    async def snapshot(self) -> dict[str, dict[int, float]]:
        return {"server": self._tree(), "database": await self._backends(),
                "client": {0: time.process_time()}}  # fmt: skip

    @staticmethod
    def used(
        start: dict[str, dict[int, float]], end: dict[str, dict[int, float]]
    ) -> dict[str, float]:
        return {
            part: sum(v - start[part].get(pid, 0.0) for pid, v in end[part].items()) for part in end
        }


async def _phase(
    name: str,
    port: int,
    path: str,
    items: list[tuple[bytes, bytes]],
    concurrency: int,
    cpu: CpuMeter,
) -> Phase:
    queue = list(reversed(items))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        conn = Conn(*await asyncio.open_connection(HOST, port))
        while queue:
            head, body = queue.pop()
            t0 = time.perf_counter()
            status = await asyncio.wait_for(conn.post(path, head, body), 30)
            latencies.append(time.perf_counter() - t0)
            errors += status != 204
        conn.writer.close()

    before = await cpu.snapshot()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    used = cpu.used(before, await cpu.snapshot())
    q = statistics.quantiles(latencies, n=100)
    return Phase(name, len(items), seconds, q[49] * 1000, q[98] * 1000, errors, used)


async def _verify(orders: list[tuple[str, int]]) -> list[str]:
    from tortoise import connections

    from server.ledger.check import check_ledger

    problems = [str(d) for d in await check_ledger()]
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT key) AS k FROM ledger_transaction"
        " WHERE key LIKE 'pay:wechat:%'"
    )
    if (rows[0]["n"], rows[0]["k"]) != (len(orders), len(orders)):
        problems.append(f"credits {rows[0]['n']} (distinct {rows[0]['k']}) != {len(orders)}")
    paid = await conn.execute_query_dict(
        "SELECT COUNT(*) AS n FROM recharge_order WHERE status = 'paid'"
    )
    if paid[0]["n"] != len(orders):
        problems.append(f"paid orders {paid[0]['n']} != {len(orders)}")
    follow = await conn.execute_query_dict(
        "SELECT COUNT(*) AS n, COUNT(done_at) AS done FROM payment_followup"
    )
    if (follow[0]["n"], follow[0]["done"]) != (len(orders), len(orders)):
        problems.append(f"follow-ups {follow[0]['done']} done of {follow[0]['n']}")
    return problems


async def _followups_tail(limit_s: float = 120.0) -> float:
    """Seconds from now (the last answer) until no credit follow-up is pending: they run
    after the answer, so a rate that left them behind would not be sustained."""
    from tortoise import connections

    conn = connections.get("default")
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        rows = await conn.execute_query_dict(
            "SELECT COUNT(*) AS n FROM payment_followup WHERE done_at IS NULL"
        )
        if rows[0]["n"] == 0:
            break
        await asyncio.sleep(0.02)
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            conn = Conn(*await asyncio.open_connection(HOST, port))
            await conn.post(NOOP_PATH, b"", b"")
            conn.writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start within 30 s")


async def run(args: argparse.Namespace) -> dict[str, object]:
    from server.core.db import close_db
    from server.payments.sandbox.keys import SandboxKeys

    name = f"shuidian_bench_notify_{os.getpid()}"
    db_url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    proc = None
    try:
        orders = await _prepare(db_url, args.orders, args.history)
        keys = SandboxKeys.generate()
        items = _notifications(keys, orders)
        dupes = random.Random(7).sample(items, int(len(items) * args.dupes))
        sent = items + dupes
        random.Random(8).shuffle(sent)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(asdict(keys), f)
        port = _free_port()
        proc = subprocess.Popen(  # noqa: ASYNC220  (started once, before the timing)
            [sys.executable, "-m", "bench.notify", "--serve", db_url, str(port), f.name,
             str(args.workers), str(args.pool)]
        )  # fmt: skip
        await _wait_ready(port, proc)
        cpu = CpuMeter(proc.pid, name)
        warm = sent[: min(200, len(sent))]
        await _phase("warm-up", port, NOOP_PATH, warm, args.concurrency, cpu)
        base = await _phase("baseline (noop)", port, NOOP_PATH, sent, args.concurrency, cpu)
        before = await cpu.snapshot()
        ours = await _phase("ours (notify)", port, NOTIFY_PATH, sent, args.concurrency, cpu)
        tail = await _followups_tail()
        # The follow-ups that finished after the last answer are part of the notify cost.
        ours.cpu_s = cpu.used(before, await cpu.snapshot())
        problems = await _verify(orders)
        os.unlink(f.name)
        return {"base": base, "ours": ours, "orders": len(orders), "sent": len(sent),
                "tail": tail, "problems": problems}  # fmt: skip
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        await close_db()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(result: dict[str, object], args: argparse.Namespace) -> str:
    base, ours, tail = result["base"], result["ours"], result["tail"]
    assert isinstance(base, Phase) and isinstance(ours, Phase) and isinstance(tail, float)
    orders = int(result["orders"])  # type: ignore[call-overload]
    lines = [
        f"orders {orders}, notifications sent {result['sent']} (dupes {args.dupes:.0%}), "
        f"concurrency {args.concurrency}, web workers {args.workers}, pool {args.pool}/worker, "
        f"earlier recharges per account {args.history}",
        "| endpoint | requests | seconds | req/s | credited/s | p50 ms | p99 ms | errors "
        "| CPU ms/request: server + database + client |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p, credited in ((base, "—"), (ours, f"{orders / ours.seconds:.0f}")):
        parts = [p.cpu_ms(x) for x in ("server", "database", "client")]
        lines.append(
            f"| {p.name} | {p.requests} | {p.seconds:.1f} | {p.rate:.0f} | {credited} "
            f"| {p.p50_ms:.1f} | {p.p99_ms:.1f} | {p.errors} "
            f"| {parts[0]:.2f} + {parts[1]:.2f} + {parts[2]:.2f} = {sum(parts):.2f} |"
        )
    lines.append(
        f"follow-ups all done {tail:.2f} s after the last answer: "
        f"{orders / (ours.seconds + tail):.0f} credited and followed up /s"
    )
    per_order = 1000 * sum(ours.cpu_s.values()) / orders
    lines.append(
        f"CPU per credited order (answer + follow-up, server + database + client): "
        f"{per_order:.2f} ms, so at most {2000 / per_order:.0f}/s on 2 otherwise idle cores"
    )
    problems = result["problems"]
    lines.append("exactly once + ledger check: " + ("OK" if not problems else f"{problems}"))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.notify", description=__doc__.split("\n")[0])
    p.add_argument("--orders", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--dupes", type=float, default=0.1, help="fraction of resent duplicates")
    p.add_argument("--workers", type=int, default=1, help="Sanic worker processes")
    p.add_argument("--pool", type=int, default=10, help="database connections per worker")
    p.add_argument(
        "--history", type=int, default=1,
        help="earlier recharges per account before the run (0: every wallet new)",
    )  # fmt: skip
    p.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        db_url, port, keys_file, workers, pool = args.serve
        serve(db_url, int(port), keys_file, int(workers), int(pool))
        return 0
    result = asyncio.run(run(args))
    print(report(result, args))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
