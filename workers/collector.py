"""Collector worker: reads every meter and turns readings into bills and alarms.

Two inputs, one pipeline (`server.billing.pipeline.process_readings`):

- polling: every site's meters on wired buses (DL/T 645, CJ/T 188, Modbus) are read each
  `MeteringPolicy.poll_interval_s` (default 15 min). Buses are read concurrently, meters on one
  bus one after another (the bus object serialises them anyway). A meter that does not answer
  counts a miss; after `offline_after` misses it is offline (logged once), and its next good
  reading brings it back (logged once). The meter and gateway rows are read at every round,
  so what staff register, edit or remove in the admin is polled (or not) from the next one.
- MQTT gateways: `GatewayLink` subscribes to every gateway's data in a persistent session
  (fixed client id, clean session off: the broker keeps QoS 1 messages while the collector
  is down) over a wildcard (`gw/+/…`), so a gateway added in the admin is heard at once and
  its meters within `meter_refresh` seconds (see `_meter_id`); messages are queued and
  flushed in batches (`flush_every` readings, `flush_messages` messages or every tick) and
  acknowledged only once their batch is stored, so a crash loses nothing the broker would
  not deliver again. `src=HIS` replays keep their original collection time; readings are
  idempotent per (meter, time), so duplicates and redeliveries are no-ops. Gateway meters
  that have been silent for `offline_after` poll intervals are marked offline by a sweep.
- polling stores each bus's readings as they are read, by group commit (`BusWriter`): a
  reading read while nothing of its bus is being stored is stored at once, those read during
  a store go together in the next one; so a crash loses the store in flight, what was read
  while it ran and the exchange in flight, not the round. One `bus_round` event per bus
  (read, missed, held, stores, seconds), `bus_down`/`bus_up` on a change; readings left
  `pending` are billed by a sweep every `pending_sweep` seconds.
- live values (U, I, P, PF → `meter_live`): a site's buses are read with the drivers'
  `read_snapshot` every `live_every_poll`-th round (the first included) and with the cheaper
  `read_billing` otherwise; a gateway's values are kept from every `live_every_gateway`-th
  round it sends (one round: one `ts_collect`). Settings: `live_every_poll_rounds`,
  `live_every_gateway_rounds`.

`run(settings, stop)` is the worker entry point (`shuidian worker collector`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from server.billing.pipeline import ProcessReport, process_readings, sweep_pending
from server.core.logs import log_event
from server.core.settings import Settings
from server.metering.ingest import HELD
from server.metering.models import Meter, MeteringPolicy, MeterStatus, ReadingSource
from server.metering.service.gateway_status import gateway_status
from server.metering.service.readings import IncomingReading, record_misses
from workers.leases import LocalLeases, PgLeases, leases_for
from workers.meters.base import Instant, MeterError, MeterSnapshot
from workers.meters.base import MeterProtocol as P
from workers.meters.gateway.schemas import DataMessage, GatewayStatus, Source
from workers.registry import DriverRegistry, NoRoute, bus_key, clock_from_spec
from workers.status import StatusFile

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 900


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _no_receipts() -> Callable[[], None]:
    return lambda: None


def _item(
    meter_id: int, snap: MeterSnapshot, source: ReadingSource, live: bool = False
) -> IncomingReading:
    return IncomingReading(
        meter_id=meter_id,
        reading=snap.reading,
        source=source,
        relay=snap.status.relay,
        protected=snap.status.protected,
        money=snap.money,
        instant=(snap.instant or Instant()) if live else None,  # a live round: meter_live
    )


@dataclass
class BusReport:
    """One bus's share of a polling round, stored before the next bus's readings wait on it."""

    bus: str
    read: int = 0
    missed: int = 0
    held: int = 0
    offline: list[int] = field(default_factory=list)
    stores: int = 0  # database writes of its readings and misses (group commits)
    seconds: float = 0.0
    failed: bool = False  # reading or storing raised (logged); the next round retries


@dataclass
class RoundReport:
    buses: list[BusReport] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(b.read for b in self.buses)

    @property
    def missed(self) -> int:
        return sum(b.missed for b in self.buses)

    @property
    def offline(self) -> list[int]:
        return [m for b in self.buses for m in b.offline]


def held_count(report: ProcessReport | None) -> int:
    """Readings of a batch held for review (conflict, reset, implausible jump)."""
    if report is None:
        return 0
    return sum(n for outcome, n in report.ingest.outcomes.items() if outcome in HELD)


class BusWriter:
    """Group commit of one bus's polled readings and misses. What arrives while nothing is
    being stored is stored at once (a store of one); what arrives while a store runs waits
    for it and goes, all of it, in the next one. Nothing waits for a batch to fill, and a
    slow database makes the stores bigger, not more numerous.

    `store(good, bad)` writes one group. A store that raises ends the writer: `add`, `miss`
    and `drain` raise its error (the readings of that store are read again next round)."""

    def __init__(
        self, store: Callable[[list[IncomingReading], dict[int, str]], Awaitable[None]]
    ) -> None:
        self._store = store
        self._good: list[IncomingReading] = []
        self._bad: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, item: IncomingReading) -> None:
        self._good.append(item)
        self._kick()

    def miss(self, meter_id: int, error: str) -> None:
        self._bad[meter_id] = error
        self._kick()

    def _kick(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # the last store failed: raise its error to the reader
            self._task = None
        if self._task is None:
            self._task = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._good or self._bad:
            good, bad = self._good, self._bad
            self._good, self._bad = [], {}
            await self._store(good, bad)

    async def drain(self) -> None:
        """Wait until everything handed over is stored."""
        if self._task is not None:
            await self._task


class Collector:
    def __init__(
        self,
        registry: DriverRegistry,
        *,
        clock: Callable[[], datetime] = _utc_now,
        offline_after: int = 3,
        flush_every: int = 2000,
        live_every_poll: int = 4,
        live_every_gateway: int = 1,
        pending_sweep: float = 60.0,
        flush_messages: int = 10,
        leases: LocalLeases | PgLeases | None = None,
        meter_refresh: float = 10.0,
    ) -> None:
        self.registry, self.clock = registry, clock
        self.offline_after, self.flush_every = offline_after, flush_every
        self.live_every_poll, self.live_every_gateway = live_every_poll, live_every_gateway
        self._site_rounds: dict[int, int] = {}  # polling rounds per site so far
        self._gw_rounds: dict[str, tuple[datetime, int]] = {}  # (last ts_collect, rounds - 1)
        self._queue: list[IncomingReading] = []
        self.received = 0  # gateway readings received (tests and metrics)
        self._flushed = asyncio.Event()
        self._gw_meters: dict[str, tuple[float, dict[str, int]]] = {}  # see `_meter_id`
        self.meter_refresh = meter_refresh
        self._lock = asyncio.Lock()  # one pipeline run at a time in this process
        self.pending_sweep = pending_sweep  # seconds between sweeps of pending readings
        self.leases = leases or LocalLeases()  # which buses this collector reads
        self.stopping = asyncio.Event()  # set by `run`'s stop: a bus ends after its exchange
        self.last_round: RoundReport | None = None  # for the status file
        self.last_round_at: datetime | None = None
        self.status: StatusFile | None = None
        # Gateway messages are acknowledged only once stored, and a broker sends a client
        # only so many unacknowledged ones (Mosquitto: max_inflight_messages, 20): flush
        # after this many messages, not only every `flush_every` readings.
        self.flush_messages, self._messages = flush_messages, 0
        self.take_receipts: Callable[[], Callable[[], None]] = _no_receipts  # see `flush`
        self._receipts: list[Callable[[], None]] = []
        self._down: set[str] = set()  # buses on which no meter answered last round

    # -- polling ------------------------------------------------------------------------------
    async def poll_round(self, site_ids: Sequence[int] | None = None) -> RoundReport:
        """Read every wired meter (of `site_ids`) on the buses this collector owns once; each
        reading is stored as it arrives (`BusWriter`), so a crash mid-round loses per bus
        being read the store in flight, what was read while it ran and the exchange in
        flight."""
        every = (
            await Meter.filter(status=MeterStatus.ACTIVE, gateway_id__isnull=False)
            .exclude(protocol=P.MQTT_GATEWAY)
            .prefetch_related("gateway")
        )
        mine = await self.leases.claim({bus_key(m) for m in every})  # shared with the others
        wanted = None if site_ids is None else set(site_ids)
        buses: dict[str, list[Meter]] = {}
        for meter in every:
            key = bus_key(meter)
            if key in mine and (wanted is None or meter.site_id in wanted):
                buses.setdefault(key, []).append(meter)
        sites = {m.site_id for ms in buses.values() for m in ms}
        live = {s for s in sites if self._site_rounds.get(s, 0) % self.live_every_poll == 0}
        for s in sites:
            self._site_rounds[s] = self._site_rounds.get(s, 0) + 1
        reports = await asyncio.gather(*(self._bus_round(k, ms, live) for k, ms in buses.items()))
        self.last_round = RoundReport(list(reports))
        self.last_round_at = _utc_now()
        return self.last_round

    async def _bus_round(self, key: str, meters: list[Meter], live: set[int]) -> BusReport:
        """Read one bus's meters one after another, each reading handed to the bus's writer
        as it arrives; log the round (and a state change) once the last one is stored."""
        report = BusReport(key)
        writer = BusWriter(lambda good, bad: self._store_bus(good, bad, report))
        t0 = time.perf_counter()
        try:
            try:
                for meter in meters:
                    if self.stopping.is_set():  # SIGTERM: store what is in hand, read no more
                        break
                    try:
                        item = await self._poll(meter, live)
                    except (MeterError, NoRoute) as exc:
                        report.missed += 1
                        writer.miss(meter.id, str(exc) or type(exc).__name__)
                    else:
                        report.read += 1
                        writer.add(item)
            finally:
                await writer.drain()  # whatever ended the reading, what was read is stored
        except Exception:
            report.failed = True
            log.exception("bus %s: round failed; its meters are read again next round", key)
        report.seconds = round(time.perf_counter() - t0, 3)
        self._log_bus(report)
        return report

    async def _store_bus(
        self, good: list[IncomingReading], bad: dict[int, str], report: BusReport
    ) -> None:
        """One group commit of a bus: its misses, then its readings through the pipeline."""
        report.stores += 1
        now = self.clock()
        if bad:
            report.offline += await record_misses(
                list(bad), bad, offline_after=self.offline_after, now=now
            )
        if good:
            async with self._lock:
                report.held += held_count(await self._store(good, now))

    async def _store(self, items: list[IncomingReading], now: datetime) -> ProcessReport:
        """process_readings, tried twice: a connection the database ended (restart, failover)
        fails once, then the pool connects anew; the readings are idempotent."""
        try:
            return await process_readings(items, now=now)
        except Exception as exc:
            log.warning("storing %d readings failed (%s); trying once more", len(items), exc)
            return await process_readings(items, now=now)

    def _log_bus(self, r: BusReport) -> None:
        fields = dict(
            bus=r.bus, read=r.read, missed=r.missed, held=r.held, stores=r.stores,
            seconds=r.seconds,
        )  # fmt: skip
        log_event(
            log, "bus_round", "bus %s: %d read, %d missed, %d held in %.1f s",
            r.bus, r.read, r.missed, r.held, r.seconds, failed=r.failed, **fields,
        )  # fmt: skip
        if r.read == 0 and r.missed and r.bus not in self._down:
            self._down.add(r.bus)
            log_event(log, "bus_down", "bus %s: no meter answers", r.bus, level=logging.WARNING,
                      bus=r.bus, missed=r.missed)  # fmt: skip
        elif r.read and r.bus in self._down:
            self._down.discard(r.bus)
            log_event(log, "bus_up", "bus %s: meters answer again", r.bus, level=logging.WARNING,
                      bus=r.bus, read=r.read)  # fmt: skip

    async def _poll(self, meter: Meter, live: set[int]) -> IncomingReading:
        """Read one meter; with U/I/P/PF on a `live` site's round."""
        driver = self.registry.driver(meter)
        read = driver.read_snapshot
        live_round = meter.site_id in live
        if not live_round:
            read = getattr(driver, "read_billing", read)
        return _item(meter.id, await read(), ReadingSource.POLL, live_round)

    # -- gateways -----------------------------------------------------------------------------
    async def _meter_id(self, gw: str, addr: str) -> int | None:
        """The active meter a gateway reports as `addr`. A gateway's address book is loaded
        in one query and kept `meter_refresh` seconds, so a meter registered, moved, removed
        or replaced in the admin is seen within that time, without a restart."""
        loaded_at, book = self._gw_meters.get(gw, (-1.0, {}))
        if loaded_at < 0 or time.monotonic() - loaded_at >= self.meter_refresh:
            rows = await Meter.filter(gateway__code=gw, status=MeterStatus.ACTIVE).values_list(
                "address", "id"
            )
            book = dict(rows)
            self._gw_meters[gw] = (time.monotonic(), book)
        return book.get(addr)

    async def on_data(self, gw: str, msg: DataMessage) -> None:
        source = ReadingSource.HISTORY if msg.src is Source.HISTORY else ReadingSource.GATEWAY
        live = self._gateway_round(gw, msg.ts_collect) % self.live_every_gateway == 0
        for reading in msg.meters:
            meter_id = await self._meter_id(gw, reading.addr)
            if meter_id is None:
                log.warning("gateway %s reports unknown meter %s", gw, reading.addr)
                continue
            self._queue.append(_item(meter_id, reading.snapshot(msg.ts_collect), source, live))
            self.received += 1
        self._messages += 1
        if len(self._queue) >= self.flush_every or self._messages >= self.flush_messages:
            await self.flush()

    def _gateway_round(self, gw: str, ts_collect: datetime) -> int:
        """The number (from 0) of this gateway's round: its messages of a round share ts_collect."""
        last, n = self._gw_rounds.get(gw, (None, -1))
        if ts_collect != last:
            n += 1
            self._gw_rounds[gw] = (ts_collect, n)
        return n

    async def on_status(self, gw: str, status: GatewayStatus) -> None:
        """The gateway's report, stored; going offline queues the staff alert with it."""
        await gateway_status(gw, status.online, now=self.clock())

    async def flush(self) -> ProcessReport | None:
        """Process everything the gateways delivered so far, then acknowledge their messages
        to the broker (a persistent session redelivers what was never acknowledged). A
        failed batch stays queued, its messages unacknowledged, for the next flush."""
        async with self._lock:
            items, self._queue, self._messages = self._queue, [], 0
            receipts, self._receipts = [*self._receipts, self.take_receipts()], []
            t0 = time.perf_counter()
            try:
                report = await self._store(items, self.clock()) if items else None
            except Exception:
                self._queue[:0], self._receipts[:0] = items, receipts
                raise
        for ack in receipts:
            ack()
        if report is None:
            return None
        seconds = round(time.perf_counter() - t0, 3)
        log_event(
            log, "gateway_batch", "gateways: %d readings stored, %d held in %.1f s",
            len(items), held_count(report), seconds,
            readings=len(items), held=held_count(report), seconds=seconds,
        )  # fmt: skip
        return report

    async def sweep_silent(self, interval: timedelta) -> list[int]:
        """Gateway meters silent for `offline_after` intervals: count misses (offline once)."""
        cutoff = self.clock() - interval * self.offline_after
        silent = await Meter.filter(
            status=MeterStatus.ACTIVE,
            protocol=P.MQTT_GATEWAY,
            online=True,
            last_reading_at__lt=cutoff,
        ).values_list("id", flat=True)
        if not silent:
            return []
        await Meter.filter(id__in=list(silent)).update(missed_reads=self.offline_after - 1)
        errors = dict.fromkeys(silent, "网关无上报")
        return await record_misses(
            list(silent), errors, offline_after=self.offline_after, now=self.clock()
        )

    # -- the loop -----------------------------------------------------------------------------
    async def sweep_pending(self, *, everything: bool = False) -> tuple[int, int]:
        """Bill readings left `pending` (stored a sweep interval ago or more, or all of them
        at start-up: readings a crash left unbilled); (billed, failed)."""
        cutoff = None if everything else _utc_now() - timedelta(seconds=self.pending_sweep)
        async with self._lock:
            billed, failed = await sweep_pending(cutoff, now=self.clock())
        if billed or failed:
            log_event(
                log, "pending_swept", "pending readings: %d billed, %d failed by the sweep",
                billed, failed, level=logging.WARNING, billed=billed, failed=failed,
            )  # fmt: skip
        return billed, failed

    async def run(self, stop: asyncio.Event, *, tick: float = 1.0) -> None:
        """Poll each site on its interval, flush gateway readings every `tick` seconds, sweep
        pending readings every `pending_sweep` seconds. A polling round runs beside the
        ticks (a long bus takes a minute): gateway readings are not held back by it."""
        self.stopping = stop
        await self.sweep_pending(everything=True)
        last_poll: dict[int, datetime] = {}
        polling: asyncio.Task[None] | None = None
        next_sweep = time.monotonic() + self.pending_sweep
        while not stop.is_set():
            try:
                if polling is not None and polling.done():
                    ended, polling = polling, None
                    ended.result()  # a round that failed before any bus: polled again next tick
                if polling is None:
                    polling = asyncio.create_task(self._due_polls(last_poll))
                await self.flush()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.pending_sweep
                    await self.sweep_pending()
            except Exception:
                log.exception("collector pass failed")
            self._write_status()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
        if polling is not None:  # its buses stop after the exchange in hand, stored
            try:
                await polling
            except Exception:
                log.exception("collector pass failed")
        await self.flush()

    def _write_status(self) -> None:
        if self.status is None:
            return
        r = self.last_round
        self.status.write(
            last_round_at=self.last_round_at,
            read=r.read if r else None,
            missed=r.missed if r else None,
            buses_down=sorted(self._down),
            buses_held=sorted(self.leases.held()),
            gateway_queue=len(self._queue),
            gateway_received=self.received,
        )

    async def _due_polls(self, last_poll: dict[int, datetime]) -> None:
        now = self.clock()
        intervals = dict(await MeteringPolicy.all().values_list("site_id", "poll_interval_s"))
        sites = set(await Meter.filter(status=MeterStatus.ACTIVE).values_list("site_id", flat=True))
        due = [
            s
            for s in sites
            if s not in last_poll
            or now - last_poll[s] >= timedelta(seconds=intervals.get(s, DEFAULT_INTERVAL))
        ]
        if due:
            await self.poll_round(due)  # raising before any bus (the database away): next tick
            for s in due:
                last_poll[s] = now
            await self.sweep_silent(
                timedelta(seconds=min(intervals.values(), default=DEFAULT_INTERVAL))
            )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Worker entry point: connect, subscribe to gateways, poll until `stop` is set."""
    from server.core.db import close_db, init_db
    from workers.mqtt import collector_client_id, gateway_link_from

    await init_db(settings)
    registry = DriverRegistry(
        clock=clock_from_spec(settings.sim_clock), timeout=settings.meter_timeout_s
    )
    collector = Collector(
        registry,
        live_every_poll=settings.live_every_poll_rounds,
        live_every_gateway=settings.live_every_gateway_rounds,
        pending_sweep=settings.pending_sweep_s,
        leases=leases_for(settings.db_url, "collector"),
    )
    collector.status = StatusFile.for_worker(settings.data_dir, "collector", settings.worker_name)
    try:
        async with gateway_link_from(
            settings,
            on_data=collector.on_data,
            on_status=collector.on_status,
            client_id=collector_client_id(settings),
        ) as link:
            registry.gateway_client = link
            if link is not None:
                collector.take_receipts = link.take_unacked
            await collector.run(stop)
    finally:
        collector.status.remove()
        await collector.leases.close()
        await registry.close()
        await close_db()
