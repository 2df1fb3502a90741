"""Reports benchmark (issue #18): the monthly comprehensive report (月度综合报表) of a park of
N meters and a site's year-on-year report (同比环比) on PostgreSQL with two years of daily
usage — goal < 2 s each — next to the raw queries they rest on.

    .venv/bin/python -m bench.reports                      # 15,000 meters, 730 days of usage
    .venv/bin/python -m bench.reports --rooms 50 --usage-days 40 --days 2   # a quick look

Set-up (never timed): a PostgreSQL database of its own (`shuidian_bench_reports_<pid>`,
migrated, dropped at the end) with bench/admin.py's park: one site of `--rooms` rooms, an
open account and an electricity meter per room, `--usage-days` days of daily usage per meter
up to today, and `--days` days of books through the ledger's batch API up to today (an
opening recharge per account, a usage charge per account and day, weekly recharges, refunds).

Timed (each run `--repeat` times, the best and the median printed): `monthly_report` of the
site for this month (every account, the ledger from the month's start, the month's daily
usage); `compare_report` of the site by site for this month (this month, the month before,
the same month a year before, and two years of months for the chart). Raw, in the same run:
the plain SQL sums the two reports need at their core, through asyncpg — the month's wallet
legs per account, the month's daily usage per account, and the two years of daily usage per
month — the floor set by the database on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime

import asyncpg

from bench.admin import TZ, _books, _structure
from bench.common import admin, asyncpg_dsn, database_url

GOAL_S = 2.0


async def _timed(repeat: int, make: object) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await make()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


async def _raw(conn: asyncpg.Connection, repeat: int, month_start: datetime,
               first_day: object, year_ago: object) -> dict[str, list[float]]:  # fmt: skip
    queries = {
        "ledger legs per account": (
            "SELECT w.account_id, SUM(l.amount_fen) FROM ledger_transaction t"
            " JOIN ledger_leg l ON l.transaction_id = t.id"
            " JOIN ledger_account w ON w.id = l.ledger_account_id AND w.kind = 'wallet'"
            " WHERE t.created_at >= $1 GROUP BY w.account_id", [month_start]),
        "month's daily usage per account": (
            "SELECT account_id, SUM(quantity_e4), SUM(band2_e4), SUM(amount_fen)"
            " FROM daily_usage WHERE day >= $1 GROUP BY account_id", [first_day]),
        "two years of daily usage per month": (
            "SELECT to_char(day, 'YYYY-MM'), SUM(quantity_e4) FROM daily_usage"
            " WHERE day >= $1 GROUP BY 1", [year_ago]),
    }  # fmt: skip
    out = {}
    for label, (sql, params) in queries.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await conn.fetch(sql, *params)
            times.append(time.perf_counter() - t0)
        out[label] = times
    return out


async def run(args: argparse.Namespace) -> None:
    from server.core.db import close_db, init_db, migrate
    from server.core.settings import load_settings
    from server.reports.periods import Month
    from server.reports.service.compare import compare_report
    from server.reports.service.energy import By
    from server.reports.service.monthly import monthly_report

    name = f"shuidian_bench_reports_{os.getpid()}"
    url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    settings = load_settings(db_url=url)
    t_setup = time.perf_counter()
    try:
        await migrate(settings, url)
        await init_db(settings, url)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await _structure(conn, args.rooms, args.days, args.usage_days)
            await _books(args.rooms, args.days)
            await conn.execute("ANALYZE")
            setup_s = time.perf_counter() - t_setup
            month = Month.of(datetime.now(UTC).astimezone(TZ).date())
            rows = await conn.fetchval("SELECT count(*) FROM daily_usage")
            legs = await conn.fetchval("SELECT count(*) FROM ledger_leg")
            found: dict[str, object] = {}

            async def monthly() -> None:
                found["monthly"] = await monthly_report([1], month, TZ)

            async def yoy() -> None:
                found["yoy"] = await compare_report([1], kind="electricity", by=By.SITE,
                                                    month=month)  # fmt: skip

            times = {"monthly_report (every account)": await _timed(args.repeat, monthly),
                     "compare_report (site, YoY)": await _timed(args.repeat, yoy)}  # fmt: skip
            start, _ = month.bounds(TZ)
            raw = await _raw(conn, args.repeat, start, month.first,
                             Month(month.year - 2, month.month).first)  # fmt: skip
        finally:
            await conn.close()
    finally:
        await close_db()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report = found["monthly"]
    print(f"reports benchmark: {args.rooms:,} meters/accounts, {rows:,} daily-usage rows"
          f" ({args.usage_days} days), {legs:,} ledger legs ({args.days} days of books),"
          f" month {month}; set-up {setup_s:.0f} s (not timed)")  # fmt: skip
    print(
        f"  monthly report rows: {len(report.rows):,}; closing total"  # type: ignore[attr-defined]
        f" ¥{report.total.closing_fen / 100:,.2f}"
    )  # type: ignore[attr-defined]
    for label, values in times.items():
        best, median = min(values), statistics.median(values)
        verdict = "within" if median < GOAL_S else "OVER"
        print(f"  {label:36} best {best:6.3f} s  median {median:6.3f} s"
              f"  ({verdict} the {GOAL_S:.0f} s goal)")  # fmt: skip
    for label, values in raw.items():
        print(f"  raw SQL: {label:34} best {min(values):6.3f} s"
              f"  median {statistics.median(values):6.3f} s")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rooms", type=int, default=15_000, help="meters / accounts (15,000)")
    p.add_argument("--usage-days", type=int, default=730, help="days of daily usage (730)")
    p.add_argument("--days", type=int, default=6, help="days of books up to today (6)")
    p.add_argument("--repeat", type=int, default=5, help="runs of each report (5)")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
