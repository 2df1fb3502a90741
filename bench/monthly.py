"""Month-end benchmark (issue #17): the property billing run of a month for a park of N
accounts on PostgreSQL — fee items prorated and deducted or billed, fees bills issued,
common-area sharing and line losses charged, postpaid period bills drafted — next to a raw
baseline.

    .venv/bin/python -m bench.monthly --accounts 100000     # full size (goal < 60 s)

Set-up (not timed): a database of its own (`shuidian_bench_monthly_<pid>`, migrated, dropped
at the end); one site of N rooms (20–220 m²) and N open accounts, one in ten postpaid, one
in twenty moved in on the 17th; prepaid wallets of 0–5,000 元 through the ledger's batch form
(so some cannot cover their rent: the rest is billed); three fee items: rent ¥3,000 a month
(deducted), property fee ¥3.50/m² (billed), service fee ¥50 (deducted). Each account has an
electricity meter that used 100–499 kWh in November (one daily-usage row); a lift master
meter per 1,000 accounts (2,000 kWh at ¥0.80, shared by area over its 1,000 accounts); the
grid's figures entered for the month with a 6 % loss, shared by usage over every account.

Timed: `run_month(site, "2026-11", preview=True)`, then for real, then again (which must
charge nothing). The raw baseline, in the same run: a plain asyncpg `COPY` of as many rows as
the real run wrote to the run's lines, the ledger's transactions and legs, and the bills,
into unconstrained tables shaped like them. Afterwards: the ledger check. Peak RSS is this
process's `ru_maxrss`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import time
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from bench.common import admin, asyncpg_dsn, clone_rows, create_site, database_url

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTH = "2026-11"
TABLES = ("property_fee_run_line", "property_run_share_line", "ledger_transaction",
          "ledger_leg", "property_bill", "property_bill_line")  # fmt: skip
POOL = 1_000  # accounts sharing one lift


async def _populate(url: str, n: int, seed: int) -> None:
    """Rooms and accounts cloned from one of each; wallets through the ledger's batch form."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        now = datetime.now(UTC)
        await create_site(conn, "园区", now)
        await conn.execute("INSERT INTO building (id, site_id, name) VALUES (1, 1, '1号楼')")
        await conn.execute(
            "INSERT INTO floor (id, building_id, name, sort_order) VALUES (1, 1, '1F', 0)"
        )
        await conn.execute(
            "INSERT INTO room (id, floor_id, name, area_m2, use)"
            " VALUES (1, 1, 'R1', 56.30, 'office')"
        )
        await clone_rows(conn, "room", n, {"name": "'R' || g", "area_m2": "20 + (g % 200) + 0.3"})
        opened = datetime(2026, 1, 1, tzinfo=SHANGHAI)
        await conn.execute(
            "INSERT INTO account (id, site_id, room_id, number, tenant_name, phone, tenant_type,"
            " status, billing_mode, balance_fen, credit_limit_fen, opened_at, created_at,"
            " electricity_carry_fen, water_carry_fen, electricity_cumulative, water_cumulative)"
            " VALUES (1, 1, 1, 'A0000001', '商户', '', 'company', 'open', 'prepaid', 0, 0, $1, $2,"
            " '0', '0', '0', '0')",
            opened, now,
        )  # fmt: skip
        late = datetime(2026, 11, 17, 10, tzinfo=SHANGHAI)
        await clone_rows(conn, "account", n, {
            "room_id": "g", "number": "'A' || lpad(g::text, 7, '0')",
            "billing_mode": "CASE WHEN g % 10 = 0 THEN 'postpaid' ELSE 'prepaid' END",
            "opened_at": f"CASE WHEN g % 20 = 7 THEN '{late.isoformat()}'::timestamptz"
                         " ELSE t.opened_at END",
        })  # fmt: skip
        for table in ("room", "account"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})")
    finally:
        await conn.close()
    await _wallets(n, seed)
    await _usage(url, n)


async def _wallets(n: int, seed: int) -> None:
    from tortoise.transactions import in_transaction

    from server.ledger import posting
    from server.ledger.batch import post_batch
    from server.ledger.posting import Channel

    rng = random.Random(seed)
    postings = [
        posting.recharge_posting(
            i, Channel.CASH, rng.randint(1, 500_000), key=f"open:{i}", actor="bench"
        )
        for i in range(1, n + 1)
        if i % 10
    ]
    for i in range(0, len(postings), 5_000):
        async with in_transaction():
            await post_batch(postings[i : i + 5_000])


async def _usage(url: str, n: int) -> None:
    """A meter per account with its November use, a lift master meter per POOL accounts,
    the pools and their members, the grid's figures with a 6 % loss."""
    from decimal import Decimal

    from server.metering.models import DailyUsage, Meter
    from server.sharing.service.losses import enter_losses, entry_of
    from server.sharing.service.pools import create_pool
    from server.tariffs.models import TariffKind
    from server.tariffs.service import create_plan

    now = datetime.now(UTC)
    await Meter.create(site_id=1, account_id=1, room_id=1, kind="electricity",
                       protocol="dlt645", address="000000000001")  # fmt: skip
    await DailyUsage.create(meter_id=1, account_id=1, day=date(2026, 11, 15),
                            quantity_e4=100 * 10_000, amount_fen=7_000, updated_at=now)  # fmt: skip
    pools = -(-n // POOL)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await clone_rows(conn, "meter", n, {"account_id": "g", "room_id": "g",
                                            "address": "lpad(g::text, 12, '0')"})  # fmt: skip
        await clone_rows(conn, "meter", n + pools, {
            "account_id": "NULL", "room_id": "NULL", "address": "'L' || lpad(g::text, 11, '0')",
        }, first=n + 1)  # fmt: skip
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('meter', 'id'), {n + pools})")
        await clone_rows(conn, "daily_usage", n, {
            "meter_id": "g", "account_id": "g", "quantity_e4": "(100 + g % 400) * 10000",
            "amount_fen": "(100 + g % 400) * 70",
        })  # fmt: skip
        await clone_rows(conn, "daily_usage", n + pools, {
            "meter_id": "g", "account_id": "NULL", "quantity_e4": "2000 * 10000",
            "amount_fen": "NULL",
        }, first=n + 1)  # fmt: skip
        used = await conn.fetchval("SELECT sum(quantity_e4) / 10000 FROM daily_usage")
    finally:
        await conn.close()
    plan = await create_plan(
        1, "公共区域电价", TariffKind.ELECTRICITY, {"kind": "flat", "unit": "kWh", "price": "0.80"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="bench",
    )  # fmt: skip
    for i in range(pools):
        await create_pool([1], 1, name=f"{i + 1}号电梯", meter_address=f"L{n + i + 1:011d}",
                          plan_id=plan.id, method="area", actor="bench")  # fmt: skip
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO sharing_member (pool_id, account_id, ratio)"
            f" SELECT p.id, g, 1 FROM generate_series(1, {n}) g"
            f" JOIN sharing_pool p ON p.name = (((g - 1) / {POOL}) + 1) || '号电梯'"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    grid = (Decimal(used) * Decimal("1.06")).quantize(Decimal(1))
    form = {"period": MONTH, "start_reading": "0", "end_reading": str(grid), "multiplier": "1",
            "bill": str(grid * Decimal("0.70")), "own_use": "0", "method": "usage",
            "cap_pct": "10"}  # fmt: skip
    await enter_losses([1], 1, entry_of(form), tz=SHANGHAI, actor="bench")


async def _items() -> None:
    from server.property.service import items
    from server.property.service.items import ItemForm

    for form in (
        ItemForm("租金", "rent", "fixed", "3000.00", "monthly"),
        ItemForm("物业费", "property_fee", "area", "3.50", "monthly", collection="bill"),
        ItemForm("服务费", "service_fee", "fixed", "50.00", "monthly"),
    ):
        await items.create_item(1, form, actor="bench")


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def _raw(conn: asyncpg.Connection, written: dict[str, int]) -> float:
    """COPY as many rows as the run wrote, per table, into unconstrained look-alikes."""
    total = 0.0
    for table, rows in written.items():
        if not rows:
            continue
        raw = f"raw_{table}"
        await conn.execute(f"CREATE TABLE {raw} (LIKE {table} INCLUDING DEFAULTS)")
        sample = await conn.fetch(f"SELECT * FROM {table} ORDER BY id DESC LIMIT {rows}")
        columns = list(sample[0].keys())
        records = [tuple(r.values()) for r in sample]
        t0 = time.perf_counter()
        await conn.copy_records_to_table(raw, records=records, columns=columns)
        total += time.perf_counter() - t0
    return total


async def run(args: argparse.Namespace) -> None:
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            await _run(args)
        finally:
            profiler.disable()
            profiler.dump_stats(args.profile)
        return
    await _run(args)


async def _run(args: argparse.Namespace) -> None:
    from server.core.db import close_db, init_db, migrate
    from server.core.settings import load_settings
    from server.ledger.check import check_ledger
    from server.property.service.run import run_month

    name = f"shuidian_bench_monthly_{os.getpid()}"
    url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    settings = load_settings()
    try:
        await migrate(settings, url)
        await close_db()
        await init_db(settings, url)
        await _populate(url, args.accounts, args.seed)
        await _items()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            times = {}
            for label, preview in (("preview", True), ("post", False), ("again", False)):
                if label == "post":
                    before = await _counts(conn)
                t0 = time.perf_counter()
                done = await run_month(1, MONTH, preview=preview, actor="bench", tz=SHANGHAI)
                times[label] = (time.perf_counter() - t0, done)
                if label == "post":
                    after = await _counts(conn)
            written = {t: after[t] - before[t] for t in TABLES}
            raw = await _raw(conn, written)
        finally:
            await conn.close()
        problems = await check_ledger() if args.check else []
    finally:
        await close_db()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _print(args, times, written, raw, problems)


def _print(args: argparse.Namespace, times: dict, written: dict, raw: float,
           problems: list) -> None:  # fmt: skip
    n = args.accounts
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"monthly benchmark: {n:,} accounts (10 % postpaid, 5 % moved in on the 17th),"
          f" 3 fee items, {-(-n // POOL)} lift pools, 6 % line loss, month {MONTH}")  # fmt: skip
    for label, (seconds, done) in times.items():
        print(f"  {label:8} {seconds:7.1f} s  {n / seconds:9,.0f} accounts/s  charged"
              f" ¥{done.charged_fen / 100:,.2f}, billed ¥{done.billed_fen / 100:,.2f},"
              f" already {done.already:,}; steps {done.steps}")  # fmt: skip
    rows = sum(written.values())
    print(f"  rows written by the real run: {rows:,} ({written})")
    post = times["post"][0]
    print(f"  raw   COPY of as many rows into unconstrained tables {raw:6.1f} s"
          f"  ours ÷ raw = {post / raw if raw else 0:.1f}×")  # fmt: skip
    print(f"  peak RSS of this process: {rss_mb:,.0f} MB")
    print(f"  ledger check: {'sound' if not problems else problems[:3]}")
    print(f"  goal < 60 s for the real run: {'met' if post < 60 else 'NOT met'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.monthly", description=__doc__.split("\n")[0])
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--profile", default="", help="write a cProfile of the whole run here")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the ledger check")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
