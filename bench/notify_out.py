"""Outgoing messages benchmark (issue #16): queued SMS → delivered to the fake Alibaba Cloud
SMS by two notifier processes.

    .venv/bin/python -m bench.notify_out --messages 5000 [--notifiers 2] [--batch 50]
                                         [--concurrency 8]

A PostgreSQL database of its own (`shuidian_bench_notify_out_<pid>`, created, migrated and
dropped) holds `--messages` queued SMS; the fake (server/notify/sandbox.py: it verifies each
request's HMAC-SHA1 signature) runs in a subprocess of its own, and `--notifiers` processes
each run `deliver_due` rounds (claims `FOR UPDATE SKIP LOCKED`, one signed HTTPS-less POST
per message, the outcome recorded) until nothing is due. Reported: messages delivered per
second (wall clock, all notifiers together), CPU ms per message of the notifiers and of the
fake, and the check that every message was sent exactly once (state `sent`, one attempt).
The chatbot half of the issue's benchmark waits for the chatbot.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime

import asyncpg

from bench.common import admin, asyncpg_dsn, database_url, proc_cpu


def _fake() -> None:
    """Subprocess: the fake SMS platform until killed; prints its URL first."""
    from server.notify.sandbox import FakeAliyunSms

    async def serve() -> None:
        fake = FakeAliyunSms()
        await fake.start()
        print(fake.base_url, flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


def _notifier(db_url: str, fake_url: str, batch: int, concurrency: int) -> None:
    """Subprocess: one notifier delivering until nothing is due; prints how many it sent and
    the CPU seconds it had used before its first claim (imports, connections)."""
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings
    from server.notify.providers.aliyun import AliyunSms
    from server.notify.sandbox import KEY_ID, KEY_SECRET, demo_sms_templates
    from server.notify.service.delivery import deliver_due

    async def work() -> tuple[int, float]:
        await init_db(load_settings(), db_url)
        sms = AliyunSms(KEY_ID, KEY_SECRET, "水电", demo_sms_templates(), endpoint=fake_url)
        total, ready = 0, time.process_time()
        try:
            while n := await deliver_due({"sms": sms}, batch=batch, concurrency=concurrency):
                total += n
        finally:
            await sms.aclose()
            await close_db()
        return total, ready

    total, ready = asyncio.run(work())
    print(total, ready, flush=True)


async def _prepare(db_url: str, messages: int) -> None:
    from server.core.db import close_db, init_db, migrate
    from server.core.settings import load_settings
    from server.places.models import Organisation, Site

    await migrate(load_settings(), db_url)
    await init_db(load_settings(), db_url)
    try:
        site = await Site.create(
            organisation=await Organisation.create(name="基准"), name="基准园区"
        )
    finally:
        await close_db()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    now = datetime.now(UTC)
    try:
        await conn.execute(
            "INSERT INTO notify_message (site_id, channel, recipient, template, topic, params,"
            " text, state, attempts, next_attempt_at, provider, provider_id, error_code,"
            " error_reason, dedup_key, created_at, updated_at, role, receipt_polls)"
            " SELECT $3, 'sms', '139' || lpad(g::text, 8, '0'), 'alarm.balance',"
            " 'alarm.balance.1', jsonb_build_object('account', 'H' || g, 'balance', '18.00',"
            " 'level', 1), '余额不足', 'queued', 0, $1, '', '', '', '', 'bench:' || g, $1, $1,"
            " 'owner', 0"
            " FROM generate_series(1, $2) g",
            now,
            messages,
            site.id,
        )
    finally:
        await conn.close()


async def _check(db_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        row = await conn.fetchrow(
            "SELECT COUNT(*) FILTER (WHERE state = 'sent' AND attempts = 1) AS once,"
            " COUNT(DISTINCT provider_id) AS ids FROM notify_message"
        )
        return int(row["once"]), int(row["ids"])
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> str:
    name = f"shuidian_bench_notify_out_{os.getpid()}"
    db_url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    py = sys.executable
    fake = await asyncio.create_subprocess_exec(
        py, "-m", "bench.notify_out", "--fake", stdout=asyncio.subprocess.PIPE
    )
    try:
        await _prepare(db_url, args.messages)
        assert fake.stdout is not None
        fake_url = (await fake.stdout.readline()).decode().strip()
        fake_cpu = proc_cpu(fake.pid)
        start = time.perf_counter()
        procs = [
            await asyncio.create_subprocess_exec(
                py, "-m", "bench.notify_out", "--notifier", db_url, fake_url, str(args.batch),
                str(args.concurrency), stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(args.notifiers)
        ]  # fmt: skip
        cpu = dict.fromkeys(range(len(procs)), 0.0)
        while any(p.returncode is None for p in procs):
            for i, p in enumerate(procs):
                cpu[i] = max(cpu[i], proc_cpu(p.pid))
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - start
        outs = [(await p.communicate())[0].split() or [b"0", b"0"] for p in procs]
        counts, start_cpu = [int(o[0]) for o in outs], sum(float(o[1]) for o in outs)
        fake_cpu = proc_cpu(fake.pid) - fake_cpu
        once, ids = await _check(db_url)
    finally:
        fake.terminate()
        await fake.wait()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    n = args.messages
    ok = once == n and ids == n and sum(counts) == n
    return "\n".join([
        f"messages {n}, notifiers {args.notifiers} (sent {counts}), batch {args.batch}, "
        f"concurrency {args.concurrency}",
        f"delivered {n / seconds:.0f}/s ({seconds:.1f} s); CPU per message: notifiers "
        f"{1000 * sum(cpu.values()) / n:.2f} ms (without their start "
        f"{1000 * (sum(cpu.values()) - start_cpu) / n:.2f} ms) + fake {1000 * fake_cpu / n:.2f} ms "
        "(PostgreSQL not counted)",
        "exactly once: " + ("OK" if ok else f"FAILED (sent once {once}, distinct ids {ids})"),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.notify_out", description=__doc__.split("\n")[0]
    )
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--notifiers", type=int, default=2)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=8, help="sends in flight per notifier")
    p.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--notifier", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.fake:
        _fake()
        return 0
    if args.notifier:
        db_url, fake_url, batch, concurrency = args.notifier
        _notifier(db_url, fake_url, int(batch), int(concurrency))
        return 0
    report = asyncio.run(run(args))
    print(report)
    return 0 if report.endswith("OK") else 1


if __name__ == "__main__":
    sys.exit(main())
