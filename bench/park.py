"""Park benchmark (issue #5): a simulated park for a simulated day at 15-minute reads, through
the collector's pipeline — ingest, billing, alarms — on PostgreSQL, next to a raw baseline.

    .venv/bin/python -m bench.park --meters 20000 --hours 24      # full size: 1.92 M readings

Set-up (not timed): a database of its own (`shuidian_bench_park_<pid>`, migrated, dropped at
the end); a `SimPark` of N meters (the simulator's meter core: 10 % water, ~30 % of the
electricity meters billed by the meter, a few 保电), one account per meter with an opening
balance of 30–300 元 (platform-billed; a real ledger recharge each), electricity on a
four-band TOU plan, water on a flat one.

Per 15-minute round: every simulated meter advances to the round's time and is read
(`SimMeter.snapshot`, in this process — the wire is benchmarked by bench/collect.py, so
no MQTT/Modbus/DL/T 645 here); the snapshots become `IncomingReading`s exactly as the
collector's `poll_round` makes them, and go through `process_readings` (ingest → billing →
alarms, with relay commands queued), in batches of `--batch`, `--lanes` batches in flight.
Only `process_readings` is timed; the simulator's own time is printed apart. In the same run
the same readings are written with a plain asyncpg `COPY` into a table shaped like
`meter_reading` (the raw baseline).

Afterwards (not timed): counts, the ledger check, the operation-log chain check.
Peak RSS is this process's `ru_maxrss`, simulator included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from bench.common import admin, asyncpg_dsn, clone_rows, create_site, database_url

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 3, 0, 0, tzinfo=SHANGHAI)  # a Tuesday, a workday
TOU = {
    "kind": "tou",
    "prices": {"1": "1.20000", "2": "0.95000", "3": "0.65000", "4": "0.35000"},
    "seasons": [
        {
            "name": "全年",
            "months": list(range(1, 13)),
            "workday": [
                {"start": "00:00", "end": "08:00", "band": 4},
                {"start": "08:00", "end": "10:00", "band": 3},
                {"start": "10:00", "end": "12:00", "band": 2},
                {"start": "12:00", "end": "14:00", "band": 3},
                {"start": "14:00", "end": "19:00", "band": 2},
                {"start": "19:00", "end": "21:00", "band": 1},
                {"start": "21:00", "end": "24:00", "band": 3},
            ],
        }
    ],
}
WATER = {"kind": "flat", "unit": "m³", "price": "4.90"}
RAW_COLS = ["meter_id", "taken_at", "total", "bands", "outcome", "source", "billing", "energy",
            "billing_error", "received_at"]  # fmt: skip


# -- set-up -----------------------------------------------------------------------------------
async def _templates(url: str) -> None:
    """One account and one meter written by the ORM (set-up follows today's columns)."""
    from server.accounts.models import Account
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings
    from server.metering.models import Meter
    from server.metering.vocabulary import MeterKind, MeterProtocol

    await init_db(load_settings(db_url=url))
    try:
        now = datetime.now(UTC)
        account = await Account.create(
            id=1, site_id=1, number="P0000001", tenant_name="园区商户", opened_at=now
        )
        await Meter.create(
            id=1, site_id=1, account=account, kind=MeterKind.ELECTRICITY, model="DDSU666",
            protocol=MeterProtocol.DLT645, address="000000000001", installed_at=now, online=True,
        )  # fmt: skip
    finally:
        await close_db()


async def _populate(url: str, park: object, seed: int) -> dict[str, int]:
    """Site, accounts, meters (as the park's), tariffs, opening balances through the ledger."""
    from server.tariffs.schemas import from_plan, to_plan

    meters = list(park.meters.values())  # type: ignore[attr-defined]
    n = len(meters)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        now = datetime.now(UTC)
        await create_site(conn, "园区", now)
        await _templates(url)
        await clone_rows(conn, "account", n, {"number": "'P' || lpad(g::text, 7, '0')"})
        await clone_rows(conn, "meter", n, {"account_id": "g", "address": "lpad(g::text, 12, '0')"})
        await conn.execute(
            "UPDATE meter m SET kind = u.kind, billing = u.billing, rated_kw = u.rated,"
            " protected = u.protected, purchase_count = u.pc, relay_state = u.relay"
            " FROM unnest($1::int[], $2::text[], $3::text[], $4::numeric[], $5::bool[],"
            " $6::int[], $7::text[]) AS u(id, kind, billing, rated, protected, pc, relay)"
            " WHERE m.id = u.id",
            list(range(1, n + 1)),
            [m.kind.value for m in meters],
            ["meter" if m.meter_billing else "platform" for m in meters],
            [m.rated_kw for m in meters],
            [m.protected for m in meters],
            [m.purchase_count for m in meters],
            [m.relay.value for m in meters],
        )
        for pid, kind, spec in ((1, "electricity", TOU), (2, "water", WATER)):
            await conn.execute(
                "INSERT INTO tariff_plan (id, site_id, name, kind, created_at)"
                " VALUES ($1, 1, $2, $2, $3)",
                pid, kind, now,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO tariff_version (plan_id, effective_from, spec, created_by, created_at)"
                " VALUES ($1, $2, $3::jsonb, 'bench', $4)",
                pid, datetime(2026, 1, 1, tzinfo=UTC), json.dumps(from_plan(to_plan(spec))), now,
            )  # fmt: skip
        await conn.copy_records_to_table(
            "tariff_assignment",
            records=[
                (i, m.kind.value, 1 if m.kind.value == "electricity" else 2, now)
                for i, m in enumerate(meters, 1)
            ],
            columns=["account_id", "kind", "plan_id", "assigned_at"],
        )
        rng = random.Random(seed)
        opening = {
            i: rng.randint(3_000, 30_000) for i, m in enumerate(meters, 1) if not m.meter_billing
        }
        await _opening_balances(conn, opening, now)
        for table in ("account", "meter"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})")
        await conn.execute("CREATE TABLE raw_reading (LIKE meter_reading INCLUDING ALL)")
        await conn.execute("ANALYZE")
        return opening
    finally:
        await conn.close()


async def _opening_balances(
    conn: asyncpg.Connection, opening: dict[int, int], now: datetime
) -> None:
    """A cash recharge per platform-billed account: transaction, wallet +, clearing −."""
    ids, amounts = list(opening), list(opening.values())
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO ledger_account (code, kind, name, account_id, created_at)"
            " SELECT 'wallet:' || id, 'wallet', '账户' || id || '钱包', id, $1 FROM account",
            now,
        )
        cash = await conn.fetchval(
            "INSERT INTO ledger_account (code, kind, name, created_at)"
            " VALUES ('clearing:cash', 'clearing', '现金', $1) RETURNING id",
            now,
        )
        await conn.execute(
            "INSERT INTO ledger_transaction (key, kind, memo, actor, account_id, channel,"
            " balance_after_fen, created_at)"
            " SELECT 'open:' || u.id, 'recharge', '期初充值', 'bench', u.id, 'cash', u.fen, $3"
            " FROM unnest($1::int[], $2::bigint[]) AS u(id, fen)",
            ids, amounts, now,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
            " SELECT t.id, w.id, t.balance_after_fen FROM ledger_transaction t"
            " JOIN ledger_account w ON w.account_id = t.account_id"
            " UNION ALL SELECT t.id, $1, -t.balance_after_fen FROM ledger_transaction t",
            cash,
        )
        await conn.execute(
            "UPDATE account a SET balance_fen = u.fen FROM unnest($1::int[], $2::bigint[])"
            " AS u(id, fen) WHERE a.id = u.id",
            ids, amounts,
        )  # fmt: skip


# -- the day ----------------------------------------------------------------------------------
class Tally:
    def __init__(self) -> None:
        self.readings = self.billed = self.failed = self.alarm_accounts = 0
        self.outcomes: dict[str, int] = {}
        self.steps: dict[str, float] = {}  # summed over lanes (they overlap)
        self.ours = self.sim = self.raw = 0.0
        self.ours_cpu = 0.0
        self.slowest = 0.0


def _round(park: object, at: datetime) -> list:
    from server.metering.models import ReadingSource
    from workers.collector import _item

    # A live round (U/I/P/PF → meter_live) every 4th, as the collector's default cadence.
    live = at.minute == 0
    return [
        _item(i, m.snapshot(at), ReadingSource.POLL, live)
        for i, m in enumerate(park.meters.values(), 1)  # type: ignore[attr-defined]
        if (m.advance(at), True)[1]
    ]


async def _process(items: list, batch: int, lanes: int, now: datetime, tally: Tally) -> None:
    from server.billing.pipeline import process_readings

    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]

    async def lane(k: int) -> None:
        for chunk in chunks[k::lanes]:
            report = await process_readings(chunk, now=now)
            tally.billed += report.billed
            tally.failed += report.failed
            tally.alarm_accounts += len(report.accounts)
            for step, secs in report.seconds.items():
                tally.steps[step] = tally.steps.get(step, 0.0) + secs
            for key, count in report.ingest.outcomes.items():
                tally.outcomes[key] = tally.outcomes.get(key, 0) + count

    await asyncio.gather(*(lane(k) for k in range(lanes)))


async def _raw_copy(conn: asyncpg.Connection, items: list) -> float:
    stamp = datetime.now(UTC)
    records = [
        (r.meter_id, r.taken_at, r.total, json.dumps({str(k): str(v) for k, v in r.bands.items()}),
         "accept", "poll", "none", "0", "", stamp)
        for r in items
    ]  # fmt: skip
    t0 = time.perf_counter()
    await conn.copy_records_to_table("raw_reading", records=records, columns=RAW_COLS)
    return time.perf_counter() - t0


async def _day(url: str, park: object, rounds: int, args: argparse.Namespace) -> Tally:
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings

    tally = Tally()
    await init_db(load_settings(db_url=url))
    raw = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for k in range(1, rounds + 1):
            at = START + timedelta(minutes=15 * k)
            t0 = time.perf_counter()
            items = _round(park, at)
            tally.sim += time.perf_counter() - t0
            cpu0, t0 = time.process_time(), time.perf_counter()
            await _process(items, args.batch, args.lanes, at, tally)
            spent = time.perf_counter() - t0
            tally.ours += spent
            tally.ours_cpu += time.process_time() - cpu0
            tally.slowest = max(tally.slowest, spent)
            tally.raw += await _raw_copy(raw, items)
            tally.readings += len(items)
            if args.verbose:
                print(f"  round {k:3d} {at.astimezone(SHANGHAI):%H:%M}  {spent:6.2f} s"
                      f"  {len(items) / spent:8,.0f} readings/s", flush=True)  # fmt: skip
    finally:
        await raw.close()
        await close_db()
    return tally


async def _after(url: str, check: bool) -> dict[str, object]:
    """Counts and checks over the result (not timed)."""
    from server.audit.service import verify_chain
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings
    from server.ledger.check import check_ledger

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        out: dict[str, object] = {}
        for label, sql in (
            ("usage charges", "SELECT count(*) FROM usage_charge"),
            ("alarms", "SELECT count(*) FROM alarm_record"),
            ("relay commands queued", "SELECT count(*) FROM meter_command"),
            ("operation-log rows", "SELECT count(*) FROM operation_log"),
            ("accounts below zero", "SELECT count(*) FROM account WHERE balance_fen < 0"),
            ("readings stored", "SELECT count(*) FROM meter_reading"),
            ("readings pending", "SELECT count(*) FROM meter_reading WHERE billing = 'pending'"),
        ):
            out[label] = await conn.fetchval(sql)
    finally:
        await conn.close()
    if check:
        await init_db(load_settings(db_url=url))
        try:
            t0 = time.perf_counter()
            out["ledger check discrepancies"] = len(await check_ledger())
            out["operation-log chain breaks"] = len(await verify_chain())
            out["checks took"] = f"{time.perf_counter() - t0:.1f} s"
        finally:
            await close_db()
    return out


async def run(args: argparse.Namespace) -> None:
    from server.core.db import close_db, migrate
    from server.core.settings import load_settings
    from workers.sim.park import SimPark

    name = f"shuidian_bench_park_{os.getpid()}"
    url = database_url(name)
    rounds = args.hours * 60 // 15
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    try:
        await migrate(load_settings(), url)
        await close_db()
        park = SimPark.build(args.meters, args.seed, START, speed=1.0)
        await _populate(url, park, args.seed)
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        tally = await _day(url, park, rounds, args)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        after = await _after(url, args.check)
    finally:
        await close_db()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _print(args, rounds, tally, after)


def _print(args: argparse.Namespace, rounds: int, tally: Tally, after: dict[str, object]) -> None:
    n = tally.readings
    ours, raw = n / tally.ours, n / tally.raw
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"park benchmark: {args.meters:,} meters × {rounds} rounds of 15 min = {n:,} readings"
        f" (simulated meter core in-process, no wire: see bench/collect.py)"
    )
    print(
        f"  batches of {args.batch:,} readings, {args.lanes} in flight; ingest → billing → alarms"
    )
    print(f"  ours  process_readings   {tally.ours:8.1f} s  {ours:9,.0f} readings/s"
          f"  (client CPU {tally.ours_cpu / n * 1e6:.0f} µs/reading; slowest round"
          f" {tally.slowest:.2f} s)")  # fmt: skip
    print(f"  raw   COPY into a meter_reading-shaped table {tally.raw:6.1f} s"
          f"  {raw:9,.0f} rows/s   ours ÷ raw = {ours / raw:.3f}")  # fmt: skip
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in tally.steps.items())
    print(f"  time in each step, summed over the lanes: {steps}")
    print(f"  simulator (advance + snapshot, not counted above) {tally.sim:.1f} s")
    print(f"  peak RSS of this process (worker + simulator): {rss_mb:,.0f} MB")
    print(f"  outcomes {dict(sorted(tally.outcomes.items()))}; billed {tally.billed:,},"
          f" refused {tally.failed:,}; account evaluations {tally.alarm_accounts:,}")  # fmt: skip
    for label, value in after.items():
        print(f"  {label}: {value if isinstance(value, str) else f'{value:,}'}")
    goal = ours >= 5_000 and rss_mb < 500
    print(f"  goal ≥ 5,000 readings/s and RSS < 500 MB: {'met' if goal else 'NOT met'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.park", description=__doc__.split("\n")[0])
    p.add_argument("--meters", type=int, default=2_000)
    p.add_argument("--hours", type=int, default=6, help="simulated hours at 15-minute reads")
    p.add_argument("--batch", type=int, default=2_500, help="readings per process_readings call")
    p.add_argument("--lanes", type=int, default=2, help="process_readings calls in flight")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-check", dest="check", action="store_false", help="skip ledger/log checks")
    p.add_argument("--profile", default="", help="write a cProfile of the day here")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per round")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
