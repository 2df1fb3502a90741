"""Benchmark: the order overview's Excel export, 100,000 orders from PostgreSQL to .xlsx
(issue #15), against openpyxl writing the same rows from memory in the same run.

    .venv/bin/python -m bench.export                  # 100,000 orders
    .venv/bin/python -m bench.export --orders 20000   # a quicker look

A database of its own on SHUIDIAN_BENCH_PG (created, migrated, dropped at the end): one site,
`--accounts` accounts and `--orders` recharges through the ledger's batch writer (set-up,
not timed). Then, in one process:

Each side runs `--rounds` times, alternated; the best wall time of each is compared.

- ours: `server.finance.service.orders.export_chunks` (the overview's SQL, keyset chunks of
  5,000) into `server.core.excel.stream_xlsx` (openpyxl write-only, each chunk appended in a
  worker thread, the finished file read back in 256 KB pieces) — what `/admin/finance?
  format=xlsx` sends, the pieces counted instead of sent;
- the library alone: the same rows, already in a Python list, appended to an openpyxl
  write-only workbook cell by cell as its documentation shows (money and times as
  `WriteOnlyCell`s with their number formats) and saved to a temporary file.

Memory: ours runs in a fresh process (its resident set before the export against the
process's high-water mark after, /proc/self/status VmRSS and VmHWM); the library's peak is
sampled every 5 ms during its run (the list of rows it writes from is already in memory).
Goal: ours ≥ 0.8 × the library's rows/s, ours' peak RSS growth < 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import admin, database_url


class RssPeak:
    """The process's peak resident set while running, sampled from /proc."""

    def __init__(self) -> None:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1024 / 1024


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _populate(accounts: int, orders: int) -> list[int]:
    from tortoise.transactions import in_transaction

    from server.accounts.models import Account
    from server.ledger.batch import post_batch
    from server.ledger.posting import Channel, recharge_posting
    from server.places.models import Organisation, Site

    org = await Organisation.create(name="基准物业")
    site = await Site.create(organisation=org, name="基准园区")
    opened = datetime(2026, 1, 1, tzinfo=UTC)
    await Account.bulk_create([
        Account(site=site, number=f"B{i:06d}", tenant_name=f"基准商户{i:06d}", opened_at=opened)
        for i in range(accounts)
    ])  # fmt: skip
    ids = await Account.filter(site=site).order_by("id").values_list("id", flat=True)
    channels = list(Channel)
    batch = 5_000
    for start in range(0, orders, batch):
        postings = [
            recharge_posting(ids[i % len(ids)], channels[i % 4], 100 + i % 9_900,
                             key=f"bench:{i}", actor="staff:1", memo=f"现金充值 SJ{i:07d}")
            for i in range(start, min(orders, start + batch))
        ]  # fmt: skip
        async with in_transaction():
            await post_batch(postings)
    return [site.id]


async def _ours(site_ids: list[int]) -> tuple[float, int]:
    from server.core.excel import StreamSheet, stream_xlsx
    from server.core.settings import load_settings
    from server.finance.service.orders import EXPORT_COLUMNS, OrderFilter, export_chunks

    tz = load_settings().tz
    size = 0
    t0 = time.perf_counter()
    sheet = StreamSheet("订单总览", EXPORT_COLUMNS, export_chunks(site_ids, OrderFilter(), tz))
    async for piece in stream_xlsx(sheet):
        size += len(piece)
    return time.perf_counter() - t0, size


async def _ours_child(url: str, site_ids: list[int]) -> None:
    """In a fresh process (`--ours-of`): the export alone, its wall time and its memory —
    the resident set before it starts against the process's high-water mark after."""
    from server.core.db import close_db, init_db
    from server.core.settings import load_settings

    await init_db(load_settings(db_url=url), url)
    try:
        start = _status("VmRSS")
        wall, size = await _ours(site_ids)
        print(json.dumps({"wall": wall, "size": size, "growth": _status("VmHWM") - start}))
    finally:
        await close_db()


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _run_child(url: str, site_ids: list[int]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.export", "--ours-of", url,
         "--sites", ",".join(map(str, site_ids))],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _rows(site_ids: list[int]) -> list[tuple[Any, ...]]:
    from server.core.settings import load_settings
    from server.finance.service.orders import OrderFilter, export_chunks

    tz = load_settings().tz
    return [row async for chunk in export_chunks(site_ids, OrderFilter(), tz) for row in chunk]


def _library(rows: list[tuple[Any, ...]]) -> tuple[float, int, RssPeak]:
    """openpyxl alone, as its documentation writes a large sheet (write-only mode)."""
    from decimal import Decimal

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    from server.finance.service.orders import EXPORT_COLUMNS

    with RssPeak() as peak:
        t0 = time.perf_counter()
        book = Workbook(write_only=True)
        ws = book.create_sheet("订单总览")
        ws.freeze_panes = "A2"
        header = []
        for column in EXPORT_COLUMNS:
            cell = WriteOnlyCell(ws, value=column.header)
            cell.font = Font(bold=True)
            header.append(cell)
        ws.append(header)
        for row in rows:
            at = WriteOnlyCell(ws, value=row[0].replace(tzinfo=None))
            at.number_format = "yyyy-mm-dd hh:mm:ss"
            money = WriteOnlyCell(ws, value=Decimal(row[8]).scaleb(-2))
            money.number_format = '"¥"#,##0.00'
            ws.append([at, *row[1:8], money, *row[9:]])
        with tempfile.TemporaryFile() as out:
            book.save(out)
            size = out.tell()
        wall = time.perf_counter() - t0
    return wall, size, peak


async def run(args: argparse.Namespace) -> None:
    from server.core.db import close_db, init_db, migrate
    from server.core.settings import load_settings

    name = f"shuidian_bench_export_{os.getpid()}"
    url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    try:
        settings = load_settings(db_url=url)
        await migrate(settings, url)
        await init_db(settings, url)
        t0 = time.perf_counter()
        site_ids = await _populate(args.accounts, args.orders)
        setup = time.perf_counter() - t0
        load = os.getloadavg()[0]
        rows = await _rows(site_ids)
        assert len(rows) == args.orders, len(rows)
        ours_runs, lib_runs = [], []
        for _ in range(args.rounds):  # alternated: a busy machine slows both alike
            ours_runs.append(await asyncio.to_thread(_run_child, url, site_ids))
            lib_runs.append(await asyncio.to_thread(_library, rows))
        best = min(ours_runs, key=lambda r: r["wall"])
        ours_s, ours_bytes = best["wall"], int(best["size"])
        ours_growth = max(r["growth"] for r in ours_runs) / 2**20
        lib_s, lib_bytes, lib_peak = min(lib_runs, key=lambda r: r[0])
    finally:
        await close_db()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    n = args.orders
    ratio = (n / ours_s) / (n / lib_s)
    print(f"export benchmark: {n:,} orders of {args.accounts:,} accounts, 12 columns,"
          f" best of {args.rounds} alternated runs each"
          f" (set-up {setup:.1f} s, load {load:.2f} at the start)")  # fmt: skip
    print("| run | wall | rows/s | file | peak RSS growth |")
    print("|---|---|---|---|---|")
    print(f"| ours: PostgreSQL → stream_xlsx | {ours_s:.1f} s | {n / ours_s:,.0f} |"
          f" {ours_bytes / 1e6:.1f} MB | {ours_growth:.0f} MB |")  # fmt: skip
    print(f"| openpyxl alone, rows in memory | {lib_s:.1f} s | {n / lib_s:,.0f} |"
          f" {lib_bytes / 1e6:.1f} MB | {lib_peak.growth_mb:.0f} MB |")  # fmt: skip
    print(f"ours ÷ library rows/s: {ratio:.2f} (goal ≥ 0.8);"
          f" ours' peak RSS growth {ours_growth:.0f} MB (goal < 100 MB)")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n")[0])
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--accounts", type=int, default=2_000)
    p.add_argument("--rounds", type=int, default=2, help="ours/library pairs (best of each)")
    p.add_argument("--ours-of", help=argparse.SUPPRESS)  # the child: a database URL
    p.add_argument("--sites", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ours_of:
        asyncio.run(_ours_child(args.ours_of, [int(i) for i in args.sites.split(",")]))
        return 0
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
