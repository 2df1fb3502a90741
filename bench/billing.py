"""Billing benchmark (issue #3): bill N readings (one per meter) on PostgreSQL through
`bill_readings` in batches, next to the raw rate of inserting the same number of rows with
plain COPY and executemany, in the same run.

    .venv/bin/python -m bench.billing --readings 100000

Set-up (not timed): a database of its own (`shuidian_bench_<pid>`, dropped at the end),
migrated; N accounts, each with one electricity meter on one commercial TOU plan (four
bands, summer sharp band), created with COPY; as in a running park, every tenant has paid
before (wallet accounts exist) and been billed before (a carry on the account row). Every
meter reports one 15-minute reading with its total and band registers, as the collector's
round hands them over.

Timed:
- ours: `bill_readings` over batches of `--batch` readings, each batch one database
  transaction (account locks with their billing states, duplicate check, tariffs, pricing,
  wallet + state update, ledger transaction + 2 legs, usage_charge row);
- raw COPY: `copy_records_to_table` of N rows (meter, account, reading_at, amount, quantity)
  into an unlogged-free plain table; raw executemany: the same rows with `executemany`.

Afterwards `ledger check` runs over the result (not timed) and must find nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from bench.common import admin, asyncpg_dsn, clone_rows, create_site, database_url, proc_cpu

T0 = datetime(2026, 7, 15, 10, 0, tzinfo=UTC)
TOU = {
    "kind": "tou",
    "prices": {"1": "1.35642", "2": "1.12036", "3": "0.66835", "4": "0.27913"},
    "seasons": [
        {
            "name": "全年",
            "months": list(range(1, 13)),
            "workday": [
                {"start": "00:00", "end": "08:00", "band": 4},
                {"start": "08:00", "end": "10:00", "band": 3},
                {"start": "10:00", "end": "11:00", "band": 2},
                {"start": "11:00", "end": "12:00", "band": 1},
                {"start": "12:00", "end": "14:00", "band": 3},
                {"start": "14:00", "end": "19:00", "band": 2},
                {"start": "19:00", "end": "24:00", "band": 3},
            ],
        }
    ],
}
RAW_COLUMNS = ["meter_id", "account_id", "reading_at", "amount_fen", "quantity"]


async def _template(url: str) -> None:
    from server.accounts.models import Account
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings
    from server.metering.models import Meter
    from server.metering.vocabulary import MeterKind, MeterProtocol

    await init_db(load_settings(db_url=url))
    try:
        now = datetime.now(UTC)
        account = await Account.create(
            id=1, site_id=1, number="B0000001", tenant_name="基准商户", opened_at=now
        )
        await Meter.create(
            id=1, site_id=1, account=account, kind=MeterKind.ELECTRICITY, model="DDSF1352",
            protocol=MeterProtocol.DLT645, address="000000000001", installed_at=now,
        )  # fmt: skip
    finally:
        await close_db()


async def _populate(url: str, n: int) -> None:
    """Accounts, meters, one plan and its assignments, by COPY (set-up is not measured)."""
    from server.tariffs.schemas import from_plan, to_plan

    spec = from_plan(to_plan(TOU))
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        now = datetime.now(UTC)
        await create_site(conn, "基准集团", now)
        # One template row each, written by the ORM's own rules, then cloned n-1 times in SQL:
        # set-up follows whatever columns the models have today.
        await _template(url)
        # Every account has been billed before: a carry is on its row (its billing state).
        await conn.execute("UPDATE account SET electricity_carry_fen = '0.37' WHERE id = 1")
        await clone_rows(conn, "account", n, {"number": "'B' || lpad(g::text, 7, '0')"})
        await clone_rows(conn, "meter", n, {"account_id": "g", "address": "lpad(g::text, 12, '0')"})
        await conn.execute(
            "INSERT INTO tariff_plan (id, site_id, name, kind, created_at)"
            " VALUES (1, 1, '商业分时', 'electricity', $1)",
            now,
        )
        import json

        await conn.execute(
            "INSERT INTO tariff_version (plan_id, effective_from, spec, created_by, created_at)"
            " VALUES (1, $1, $2::jsonb, 'bench', $3)",
            datetime(2026, 1, 1, tzinfo=UTC), json.dumps(spec), now,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "tariff_assignment",
            records=[(i, "electricity", 1, now) for i in range(1, n + 1)],
            columns=["account_id", "kind", "plan_id", "assigned_at"],
        )
        # Every tenant has paid before: their wallet accounts exist, as in a running park.
        await conn.execute(
            "INSERT INTO ledger_account (code, kind, name, account_id, created_at)"
            " SELECT 'wallet:' || id, 'wallet', '账户' || id || '钱包', id, $1 FROM account",
            now,
        )
        for table in ("account", "meter"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _readings(n: int) -> list:
    from server.billing.service import ReadingToBill
    from server.metering.reading import Reading

    items = []
    for i in range(1, n + 1):
        base = Decimal(1000 + i % 977) + Decimal(i % 13) / 100
        bands = {1: base / 8, 2: base / 4, 3: base / 4, 4: base - base / 8 - base / 2}
        kwh = Decimal("0.25") + Decimal(i % 41) / 100
        prev = Reading(T0, base, bands)
        after = dict(bands)
        after[2] = bands[2] + kwh  # 10:00–10:15 is 峰
        items.append(ReadingToBill(i, prev, Reading(T0 + timedelta(minutes=15), base + kwh, after)))
    return items


async def _backends_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving this database (same machine)."""
    from tortoise import connections

    from server.ledger.sql import fetch

    rows = await fetch(
        connections.get("default"),
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()",
    )
    return {r["pid"]: proc_cpu(r["pid"]) for r in rows}


async def _ours(
    url: str, n: int, batch: int, concurrency: int, profile: str = ""
) -> tuple[float, float, float, int]:
    from server.billing.service import BillStatus, bill_readings
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings

    await init_db(load_settings(db_url=url))
    try:
        items = _readings(n)
        # The input is built before timing and lives through the run; a collector gets each
        # round's readings as they come. Frozen, so the cyclic GC does not walk it again and
        # again (its full passes over N readings would be charged to billing).
        gc.collect()
        gc.freeze()
        server0 = await _backends_cpu()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu0, t0 = time.process_time(), time.perf_counter()
        batches = [items[i : i + batch] for i in range(0, n, batch)]

        async def lane(k: int) -> int:
            done = 0
            for chunk in batches[k::concurrency]:
                outcomes = await bill_readings(chunk)
                done += sum(o.status is BillStatus.BILLED for o in outcomes)
            return done

        billed = sum(await asyncio.gather(*(lane(k) for k in range(concurrency))))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        server = sum(s - server0.get(pid, 0.0) for pid, s in (await _backends_cpu()).items())
    finally:
        await close_db()
    return wall, cpu, server, billed


async def _raw(url: str, n: int, how: str) -> float:
    rows = [(i, i, T0 + timedelta(minutes=15), 100 + i % 50, "0.25") for i in range(1, n + 1)]
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        table = f"raw_{how}"
        await conn.execute(
            f"CREATE TABLE {table} (id bigserial PRIMARY KEY, meter_id int, account_id int,"
            " reading_at timestamptz, amount_fen bigint, quantity text)"
        )
        t0 = time.perf_counter()
        if how == "copy":
            await conn.copy_records_to_table(table, records=rows, columns=RAW_COLUMNS)
        else:
            await conn.executemany(
                f"INSERT INTO {table} ({', '.join(RAW_COLUMNS)}) VALUES ($1, $2, $3, $4, $5)",
                rows,
            )
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def _check(url: str) -> int:
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings
    from server.ledger.check import check_ledger

    await init_db(load_settings(db_url=url))
    try:
        return len(await check_ledger())
    finally:
        await close_db()


async def run(args: argparse.Namespace) -> None:
    from server.core.db import close_db, migrate
    from server.core.settings import load_settings

    name = f"shuidian_bench_{os.getpid()}"
    url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    try:
        await migrate(load_settings(), url)
        await close_db()
        await _populate(url, args.readings)
        n = args.readings
        copy_s = await _raw(url, n, "copy")
        many_s = await _raw(url, n, "many")
        load = os.getloadavg()[0]
        wall, cpu, server, billed = await _ours(
            url,
            n,
            args.batch,
            args.concurrency,
            args.profile,
        )
        problems = await _check(url)
    finally:
        await close_db()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ours = n / wall
    print(
        f"billing benchmark: {n:,} readings, one per meter, batches of {args.batch:,},"
        f" {args.concurrency} in flight"
    )
    print(f"  ours  bill_readings   {wall:7.2f} s  {ours:9,.0f} readings/s"
          f"  (CPU per reading: client {cpu / n * 1e6:.0f} µs, PostgreSQL backends"
          f" {server / n * 1e6:.0f} µs; billed {billed:,})")  # fmt: skip
    for label, secs in (("raw   COPY", copy_s), ("raw   executemany", many_s)):
        rate = n / secs
        print(
            f"  {label:<21} {secs:7.2f} s  {rate:9,.0f} rows/s      ours ÷ raw = {ours / rate:.3f}"
        )
    print(f"  ledger check after the run: {problems} discrepancies;"
          f" load average at the start {load:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"  goal ≥ 10,000 readings/s: {'met' if ours >= 10_000 else 'NOT met'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.billing", description=__doc__.split("\n")[0])
    p.add_argument("--readings", type=int, default=10_000, help="readings = meters = accounts")
    p.add_argument("--batch", type=int, default=2_000, help="readings per bill_readings call")
    p.add_argument("--concurrency", type=int, default=2, help="bill_readings calls in flight")
    p.add_argument("--profile", default="", help="write a cProfile of the billing loop here")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
