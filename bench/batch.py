"""Batch benchmark (issue #15): a trip-then-close batch of N meters through the controller
and the simulator, against a collection round of the same meters in the same run.

    .venv/bin/python -m bench.batch --meters 10000      # full size

Set-up (not timed): a database of its own (`shuidian_bench_batch_<pid>`, migrated, dropped
at the end) with the park of bench/park.py (one account per meter, tariffs, opening
balances); the simulator in a subprocess (`--serve`: one core for it, one for us) serving
the same `SimPark`'s electricity meters over the real protocols, buses of `--per-bus`
meters: DL/T 645 channels and Modbus TCP ports alternately, each bus one port, so each is
one bus to the collector and the controller (`workers.registry.bus_key`).

Timed, in this order:

- **round**: `Collector.poll_round()` — every meter read over its bus, all buses at once,
  and stored through the pipeline (ingest → billing → alarms) by each bus's group commit, as
  the collector worker does. One warm-up round first (connections, first readings), then
  the measured one. Rate: meters read per second.
- **trip**, then **close**: `batches.create_batch` for every meter of the site, then the
  controller worker's loop (`Controller.run`, its 0.5 s pass) until the batch is done.
  Rate: commands finished per second, from the batch's creation to its last item terminal.

Goal: commands/s ≥ 0.5 × the round's reads/s, every meter terminal. Printed with the CPU
seconds of this process and of the simulator, and the load average (a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime

from bench.common import admin, asyncpg_dsn, database_url, proc_cpu

HOST = "127.0.0.1"
START = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Tuesday
SEED = 7


# -- simulator side (subprocess) ---------------------------------------------------------------
def _park(n: int, seed: int) -> object:
    from workers.sim.park import SimPark

    return SimPark.build(n, seed, START, speed=60.0, water_share=0.0)


async def _serve(n: int, per_bus: int, seed: int) -> None:
    from workers.sim.dlt645_server import Dlt645Server
    from workers.sim.modbus_server import SimModbusServer, SimSlave
    from workers.sim.run import _unit_map

    park = _park(n, seed)
    meters = list(park.meters.values())  # type: ignore[attr-defined]
    rows: list[list[object]] = []
    servers: list[object] = []
    for b, k in enumerate(range(0, n, per_bus)):
        group = meters[k : k + per_bus]
        if b % 2 == 0:
            dlt = Dlt645Server({m.address: m for m in group}, park.clock)  # type: ignore[attr-defined]
            port = await dlt.start(HOST, 0)
            servers.append(dlt)
            rows += [[m.address, "dlt645", port, 0, ""] for m in group]
        else:
            slaves = {i + 1: SimSlave(m, _unit_map(m)) for i, m in enumerate(group)}
            mb = await SimModbusServer(slaves, HOST, 0, clock=park.clock).start()  # type: ignore[attr-defined]
            servers.append(mb)
            rows += [[s.meter.address, "modbus_tcp", mb.port, i, s.model.model]
                     for i, s in slaves.items()]  # fmt: skip
    print(json.dumps(rows), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # until quit
    for server in servers:
        await (server.close() if isinstance(server, Dlt645Server) else server.stop())  # type: ignore[attr-defined]


# -- set-up ------------------------------------------------------------------------------------
async def _register(url: str, park: object, rows: list[list[object]]) -> None:
    """bench/park.py's park, then each meter on its bus: a gateway row per port."""
    import asyncpg

    from bench.park import _populate

    await _populate(url, park, SEED)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        ports = sorted({(str(r[1]), int(r[2])) for r in rows}, key=lambda p: p[1])
        gateway = {}
        for proto, port in ports:
            kind = "tcp" if proto == "dlt645" else "modbus_tcp"
            gateway[port] = await conn.fetchval(
                "INSERT INTO gateway (site_id, code, name, kind, host, port, online,"
                " poll_interval_s) VALUES (1, $1, '', $2, $3, $4, true, 900) RETURNING id",
                f"{proto}-{port}", kind, HOST, port,
            )  # fmt: skip
        await conn.execute(
            "UPDATE meter m SET protocol = u.proto, gateway_id = u.gw, unit = u.unit,"
            " model = CASE WHEN u.model = '' THEN m.model ELSE u.model END"
            " FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[])"
            " AS u(address, proto, gw, unit, model) WHERE m.address = u.address",
            [str(r[0]) for r in rows], [str(r[1]) for r in rows],
            [gateway[int(r[2])] for r in rows], [int(r[3]) for r in rows],
            [str(r[4]) for r in rows],
        )  # fmt: skip
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# -- the run -----------------------------------------------------------------------------------
class Phase:
    def __init__(self, name: str, items: int, seconds: float, cpu: float, sim_cpu: float,
                 outcome: dict[str, int]) -> None:  # fmt: skip
        self.name, self.items, self.seconds = name, items, seconds
        self.cpu, self.sim_cpu, self.outcome = cpu, sim_cpu, outcome

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


async def _timed(name: str, sim_pid: int, body: object) -> Phase:
    c0, s0, t0 = time.process_time(), proc_cpu(sim_pid), time.perf_counter()
    items, outcome = await body  # type: ignore[misc]
    return Phase(
        name, items, time.perf_counter() - t0, time.process_time() - c0,
        proc_cpu(sim_pid) - s0, outcome,
    )  # fmt: skip


async def _round(collector: object) -> tuple[int, dict[str, int]]:
    report = await collector.poll_round()  # type: ignore[attr-defined]
    return report.read, {"read": report.read, "missed": report.missed}


async def _batch(action: str, n: int, bound: float) -> tuple[int, dict[str, int]]:
    """A batch of every meter of the site, run by the controller's loop until done."""
    from server.metering.models import BatchStatus, MeterBatch
    from server.metering.service import batches
    from workers.controller import Controller
    from workers.registry import DriverRegistry

    registry = DriverRegistry(timeout=2.0)
    stop = asyncio.Event()
    batch = await batches.create_batch(
        [1], action=action, selection=batches.Selection(site_id=1), actor="staff:bench"
    )
    loop = asyncio.create_task(Controller(registry).run(stop))
    try:
        deadline = time.monotonic() + bound
        while (await MeterBatch.get(id=batch.id)).status is not BatchStatus.DONE:
            if time.monotonic() > deadline or loop.done():
                raise RuntimeError(f"{action} batch not done within {bound:.0f} s")
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await loop
        await registry.close()
    view = await batches.batch_view([1], batch.id)
    return sum(view.counts.values()), view.counts


async def run(args: argparse.Namespace) -> list[Phase]:
    from server.core.db import close_db, init_db, migrate
    from server.core.settings import load_settings
    from workers.collector import Collector
    from workers.registry import DriverRegistry

    n, k = args.meters, args.per_bus
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.batch", "--serve", "--meters", str(n), "--per-bus", str(k),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    name = f"shuidian_bench_batch_{os.getpid()}"
    url = database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    phases: list[Phase] = []
    try:
        rows = json.loads(await asyncio.wait_for(proc.stdout.readline(), 600))
        settings = load_settings(db_url=url)
        await migrate(settings, url)
        await close_db()
        await _register(url, _park(n, SEED), rows)
        await init_db(settings)
        registry = DriverRegistry(timeout=2.0)
        collector = Collector(registry)
        await collector.poll_round()  # warm-up: connections, first readings
        bound = 60 + n / 20  # seconds; far more than any run should take
        phases.append(await _timed("round", proc.pid, _round(collector)))
        await registry.close()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        for action in ("trip", "close"):
            phases.append(await _timed(action, proc.pid, _batch(action, n, bound)))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    finally:
        await close_db()
        proc.stdin.write(b"quit\n")
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return phases


def report(phases: list[Phase], args: argparse.Namespace, load: tuple[float, ...]) -> str:
    lines = [
        f"batch benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load "
        f"average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start; {args.meters:,} "
        f"meters, {args.per_bus} per bus ({-(-args.meters // args.per_bus)} buses: DL/T 645 "
        "and Modbus TCP alternately)",
        f"{'phase':<8}{'items':>8}{'wall s':>9}{'rate /s':>9}{'CPU s: ours':>13}{'sim':>7}"
        "  outcome",
    ]
    for p in phases:
        lines.append(
            f"{p.name:<8}{p.items:>8}{p.seconds:>9.2f}{p.rate:>9.0f}{p.cpu:>13.2f}"
            f"{p.sim_cpu:>7.2f}  {p.outcome}"
        )
    round_ = next(p for p in phases if p.name == "round")
    commands = [p for p in phases if p.name != "round"]
    rate = sum(p.items for p in commands) / sum(p.seconds for p in commands)
    terminal = all(
        not {"pending", "queued", "sent"} & set(p.outcome) and p.items == args.meters
        for p in commands
    )
    ratio = rate / round_.rate if round_.rate else 0.0
    lines.append(
        f"collection round {round_.rate:,.0f} reads/s; batch commands {rate:,.0f}/s "
        f"(trip and close); commands ÷ reads = {ratio:.2f} (goal ≥ 0.5: "
        f"{'met' if ratio >= 0.5 else 'NOT met'}); every meter terminal: "
        f"{'yes' if terminal else 'NO'}"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n")[0])
    p.add_argument("--meters", type=int, default=2_000)
    p.add_argument("--per-bus", type=int, default=32, help="meters on one bus (one port)")
    p.add_argument("--profile", default="", help="write a cProfile of the two batches here")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.meters, args.per_bus, SEED))
        return 0
    load = os.getloadavg()
    print(report(asyncio.run(run(args)), args, load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
