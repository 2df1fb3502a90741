"""Chatbot benchmark (issue #16): encrypted messages from WeChat's server at a steady rate,
answered by our app (`create_app`, one web process), latency per reply.

    .venv/bin/python -m bench.chatbot --rate 200 --seconds 10 [--followers 50] [--command 余额]

A PostgreSQL database of its own (`shuidian_bench_chatbot_<pid>`, created, migrated and
dropped) holds `--followers` official-account followers, each bound to an account; the app
runs in a subprocess of its own with a configured official account in 安全模式
(every message AES-encrypted and signed, every reply encrypted). This process plays WeChat's
server (server.wechat.sandbox.WechatServer): messages are sealed before the clock starts,
then posted at `--rate` per second on kept-alive connections, each with a new MsgId.
Reported: replies per second, latency p50/p99/max (goal p99 < 100 ms at 200/s), the app's CPU
per reply and this process's (it shares the machine with the app), and the check that every
reply decrypted (to the follower's balance for 余额).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from datetime import UTC, datetime

import httpx

from bench.common import admin, database_url, proc_cpu

APPID, SECRET = "wx-bench-official", "bench-secret"
TOKEN, AES_KEY = "bench-token", "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2ghISE"


def _official(api_url: str = "http://127.0.0.1:9/") -> object:
    from server.wechat.config import OfficialSettings

    return OfficialSettings(
        appid=APPID, secret=SECRET, token=TOKEN, encoding_aes_key=AES_KEY,
        encryption="safe", api_base_url=api_url,
    )  # fmt: skip


def _serve(db_url: str) -> None:
    """Subprocess: the app on 127.0.0.1:<ephemeral> until killed; prints its URL first."""
    from sanic import Sanic

    from server.core.app import create_app
    from server.core.db import init_db
    from server.core.settings import load_settings

    async def serve() -> None:
        settings = load_settings(db_url=db_url)
        await init_db(settings, db_url)
        Sanic.test_mode = True
        app = create_app(settings, name="benchchatbot", manage_db=False)
        app.ctx.wechat_settings = _official()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        assert server is not None
        await server.startup()
        await server.before_start()
        await server.after_start()
        print(f"http://127.0.0.1:{server.server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


async def _prepare(db_url: str, followers: int) -> None:
    from server.accounts.models import Account, AccountBinding, TenantApp, TenantIdentity
    from server.core.db import close_db, init_db, migrate
    from server.core.settings import load_settings
    from server.ledger import service as ledger
    from server.ledger.posting import Channel
    from server.places.models import Building, Floor, Organisation, Room, Site

    await migrate(load_settings(), db_url)
    await init_db(load_settings(), db_url)
    try:
        site = await Site.create(
            organisation=await Organisation.create(name="基准"), name="基准园区"
        )
        floor = await Floor.create(building=await Building.create(site=site, name="A栋"), name="1F")
        for i in range(followers):
            room = await Room.create(floor=floor, name=f"{i:04d}")
            account = await Account.create(
                site=site, room=room, number=f"B{i:04d}", tenant_name=f"商户{i}",
                phone="13800138000", opened_at=datetime.now(UTC),
            )  # fmt: skip
            await ledger.recharge(account.id, Channel.CASH, 10_000 + i, key=f"bench:chatbot:{i}",
                                  actor="bench")  # fmt: skip
            identity = await TenantIdentity.create(app=TenantApp.OFFICIAL, openid=f"oa-bench-{i}")
            await AccountBinding.create(identity=identity, account=account)
    finally:
        await close_db()


async def _load(url: str, args: argparse.Namespace) -> tuple[list[float], int, float]:
    from server.wechat.sandbox import WechatServer

    wechat = WechatServer(url + "/wechat/official", _official())  # type: ignore[arg-type]
    total = int(args.rate * args.seconds)
    sealed = []
    for n in range(total):
        i = n % args.followers
        xml = wechat.text_xml(f"oa-bench-{i}", args.command, msg_id=10**12 + n)
        sealed.append((i, *wechat.envelope(xml, encrypted=True)))
    latencies: list[float] = []
    wrong = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def one(i: int, query: dict[str, str], body: bytes) -> None:
            nonlocal wrong
            t0 = time.perf_counter()
            answer = await http.post(wechat.url, params=query, content=body)
            latencies.append(time.perf_counter() - t0)
            text = wechat.read(answer.status_code, answer.text).text
            want = f"¥{(10_000 + i) / 100:,.2f}" if args.command == "余额" else ""
            if not text or want not in text:
                wrong += 1

        start = time.perf_counter()
        tasks = []
        for n, (i, query, body) in enumerate(sealed):
            delay = start + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, query, body)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - start
    return latencies, wrong, seconds


async def run(args: argparse.Namespace) -> str:
    name = f"shuidian_bench_chatbot_{os.getpid()}"
    db_url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    app = None
    try:
        await _prepare(db_url, args.followers)
        app = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.chatbot", "--serve", db_url,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert app.stdout is not None
        url = (await app.stdout.readline()).decode().strip()
        cpu0, ours0 = proc_cpu(app.pid), time.process_time()
        latencies, wrong, seconds = await _load(url, args)
        cpu, ours = proc_cpu(app.pid) - cpu0, time.process_time() - ours0
    finally:
        if app is not None:
            app.terminate()
            await app.wait()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    n = len(latencies)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return 1000 * ordered[min(n - 1, int(p * n))]

    return "\n".join([
        f"chatbot, encrypted (安全模式), command {args.command!r}: {n} messages at "
        f"{args.rate}/s to one web process, {args.followers} followers",
        f"answered {n / seconds:.0f}/s; latency p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, "
        f"max {1000 * ordered[-1]:.1f} ms (goal p99 < 100 ms); app CPU per reply "
        f"{1000 * cpu / n:.2f} ms (PostgreSQL not counted); the WeChat side's (this process: "
        f"sealing, posting, decrypting) {1000 * ours / n:.2f} ms",
        "replies: " + ("OK" if wrong == 0 else f"FAILED ({wrong} without the right balance)"),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chatbot", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--followers", type=int, default=50)
    p.add_argument("--command", default="余额")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        _serve(args.serve)
        return 0
    report = asyncio.run(run(args))
    print(report)
    return 0 if report.endswith("OK") else 1


if __name__ == "__main__":
    sys.exit(main())
