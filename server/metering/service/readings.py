"""Reading ingestion: store each reading once, classify it, hold what is suspect.

`ingest(items, now=…)` takes readings from any source (a polling round, a gateway's realtime
or replayed messages, 点抄, staff) and handles the whole batch in one transaction, with a
fixed number of statements however many readings it holds:

1. lock the batch's meter rows (the controller writes the relay state on the same rows);
2. one query for the accepted readings around each meter's readings in the batch: the latest
   at or before its earliest, everything in between, the earliest after its latest;
3. per reading, in (meter, time) order, in memory: an accepted reading at the same time with
   the same registers → DUPLICATE, a no-op; different → CONFLICT, held; otherwise the pure
   `ingest.classify` decides between its neighbours, and an accepted reading joins the
   meter's timeline so the next one in the batch sees it;
4. one insert for the accepted readings (`meter_reading`, unique (meter, taken_at): a
   concurrent duplicate is skipped and counted as one), one for the held ones
   (`held_reading`, never billed), one update for the meter rows, one operation-log write;
5. a billable delta of a platform-billed meter with an account is stored `pending` and
   returned in `IngestReport.bills` with both readings, so the billing step
   (`server.billing.pipeline.process_readings`) bills it without reading it back; billing's
   own unique (meter, reading_at) is the second guard;
6. a good reading brings the meter online (logged once, at recovery), and the newest reading
   updates the relay state the meter reported and, for meter-billed meters, its money mirror.

A held reading a person accepted comes back through here marked `reviewed`
(`server.metering.service.held`): `ingest.review` decides it instead of `classify` when it is
the meter's newest reading, so it is stored, counted in the days and billed like any other —
once; anything else (an accepted reading at the same time or later) is classified as usual
and held again, which the review refuses.

Missed reads (`record_misses`) count up per meter; at `offline_after` the meter goes offline,
logged once at that moment.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from tortoise.transactions import in_transaction

from server.audit.service import Entry, record_many
from server.metering import ingest as rules
from server.metering.models import BillingStatus, Meter, MeterBilling, ReadingSource
from server.metering.models import Reading as StoredReading
from server.metering.reading import Reading
from server.metering.service import daily_usage
from server.metering.service import reading_store as store
from server.metering.service.reading_store import MeterState
from server.metering.vocabulary import Instant, MoneyRegister, RelayState

ACTOR = "system:collector"


@dataclass(frozen=True, slots=True)
class IncomingReading:
    """A meter's registers as a source delivered them, with what was read alongside."""

    meter_id: int
    reading: Reading  # raw registers, before CT×PT
    source: ReadingSource = ReadingSource.POLL
    relay: RelayState | None = None
    protected: bool | None = None
    money: MoneyRegister | None = None
    instant: Instant | None = None  # U, I, P, PF when this round read them (live values)
    reviewed: bool = False  # a held reading a person accepted (services.held)


@dataclass(frozen=True, slots=True)
class PendingBill:
    """A stored reading whose delta from `prev` waits for billing."""

    reading_id: int
    meter_id: int
    prev: Reading
    curr: Reading


@dataclass
class IngestReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)  # reading ids waiting for billing
    bills: list[PendingBill] = field(default_factory=list)  # the same, with both readings
    accounts: set[int] = field(default_factory=set)  # accounts whose meter money moved

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def spec_of(meter: Meter | MeterState) -> rules.MeterSpec:
    rated = Decimal(meter.rated_kw)
    multiplier = meter.multiplier
    return rules.MeterSpec(
        rated_per_hour=rated if rated > 0 else Decimal(1), multiplier=Decimal(multiplier)
    )


@dataclass
class _Batch:
    """What one ingest call will write, gathered while classifying."""

    now: datetime
    report: IngestReport = field(default_factory=IngestReport)
    accepted: list[tuple[IncomingReading, rules.Classification, datetime | None, bool]] = field(
        default_factory=list
    )
    held: list[tuple[MeterState, IncomingReading, rules.Classification]] = field(
        default_factory=list
    )
    log: list[Entry] = field(default_factory=list)
    usage: list[daily_usage.Inserted] = field(default_factory=list)  # the days they change


async def ingest(items: Iterable[IncomingReading], *, now: datetime) -> IngestReport:
    """Store and classify a batch of readings (see the module docstring)."""
    batch = sorted(items, key=lambda r: (r.meter_id, r.reading.taken_at))
    work = _Batch(now)
    if not batch:
        return work.report
    async with in_transaction() as conn:
        meters = await store.lock_meters(conn, {r.meter_id for r in batch})
        before = {m.id: m.mutable() for m in meters.values()}
        spans: dict[int, tuple[datetime, datetime]] = {}
        for r in batch:
            if r.meter_id in meters:
                at = r.reading.taken_at
                spans[r.meter_id] = (spans.get(r.meter_id, (at, at))[0], at)
        timelines = await store.neighbours(conn, spans)
        times = {m: [r.taken_at for r in tl] for m, tl in timelines.items()}
        specs = {m.id: spec_of(m) for m in meters.values()}
        for item in batch:
            meter = meters.get(item.meter_id)
            if meter is None:
                work.report.count("unknown_meter")
                continue
            if meter.removed_at is not None and item.reading.taken_at > meter.removed_at:
                work.report.count("removed_meter")  # 换表: the new meter reads from here on
                continue
            _classify(meter, specs[meter.id], (times[meter.id], timelines[meter.id]), item, work)
        await _write(conn, meters, work)
        changed = [m for m in meters.values() if m.mutable() != before[m.id]]
        await store.save_meters(conn, changed)
        await record_many(work.log)  # last: the log's chain lock is held only until commit
    return work.report


def _classify(
    meter: MeterState,
    spec: rules.MeterSpec,
    known: tuple[list[datetime], list[Reading]],
    item: IncomingReading,
    work: _Batch,
) -> None:
    """Classify `item` against the meter's accepted readings `known` (times, readings)."""
    times, timeline = known
    new = item.reading
    at = bisect_right(times, new.taken_at)
    previous = timeline[at - 1] if at else None
    following = None
    if previous is None or previous.taken_at != new.taken_at:
        following = timeline[at] if at < len(timeline) else None
    newest = following is None and (previous is None or previous.taken_at < new.taken_at)
    if item.reviewed and newest:
        verdict, new = rules.review(new, previous, spec)
        item = replace(item, reading=new)
    else:
        verdict = rules.classify(new, previous, spec, following)
    work.report.count(verdict.outcome.value)
    if not item.reviewed:  # a reviewed reading is old news: the meter's state moved on
        _mark_good(meter, item, following is None, work)
    if verdict.outcome is rules.Outcome.DUPLICATE:
        return
    if verdict.held_for_review:
        work.held.append((meter, item, verdict))
        return
    times.insert(at, new.taken_at)
    timeline.insert(at, new)
    before = None if verdict.outcome is rules.Outcome.RESTART else previous  # curves restart
    work.usage.append(
        daily_usage.Inserted(meter.id, meter.account_id, meter.multiplier, before, new, following)
    )
    billable = (
        verdict.billable
        and meter.billing == MeterBilling.PLATFORM.value
        and meter.account_id is not None
    )
    prev_at = previous.taken_at if previous is not None and verdict.billable else None
    work.accepted.append((item, verdict, prev_at, billable))
    if billable:
        assert previous is not None
        work.report.bills.append(PendingBill(0, meter.id, previous, new))


async def _write(conn: object, meters: dict[int, MeterState], work: _Batch) -> None:
    stamp = datetime.now(UTC)
    rows = [
        (
            item.meter_id, item.reading.taken_at.astimezone(UTC),
            store.total_text(item.reading.total), store.bands_json(item.reading.bands),
            verdict.outcome.value, item.source.value,
            (BillingStatus.PENDING if billable else BillingStatus.NONE).value,
            prev_at.astimezone(UTC) if prev_at else None, str(verdict.usage.energy), "",
            item.money.remaining_fen if item.money else None,
            item.money.purchase_count if item.money else None, stamp,
        )
        for item, verdict, prev_at, billable in work.accepted
    ]  # fmt: skip
    ids = await store.insert_new(conn, "meter_reading", store.READING_COLS, rows)  # type: ignore[arg-type]
    bills = iter(work.report.bills)
    kept: list[PendingBill] = []
    for item, _, _, billable in work.accepted:
        row_id = ids.get((item.meter_id, item.reading.taken_at.astimezone(UTC)))
        bill = next(bills) if billable else None
        if row_id is None:  # a concurrent ingest stored the same (meter, taken_at) first
            work.report.count("duplicate")
        elif bill is not None:
            kept.append(PendingBill(row_id, bill.meter_id, bill.prev, bill.curr))
    work.report.bills = kept
    work.report.pending = [b.reading_id for b in kept]
    stored = [u for u in work.usage if (u.meter_id, u.new.taken_at.astimezone(UTC)) in ids]
    await daily_usage.record_ingested(conn, stored)
    await _write_held(conn, work, stamp)


async def _write_held(conn: object, work: _Batch, stamp: datetime) -> None:
    rows = [
        (
            item.meter_id, item.reading.taken_at.astimezone(UTC),
            store.total_text(item.reading.total), store.bands_json(item.reading.bands),
            verdict.outcome.value, verdict.reason[:300],
            item.source.value, "open", stamp,
        )
        for _, item, verdict in work.held
    ]  # fmt: skip
    created = await store.insert_new(conn, "held_reading", store.HELD_COLS, rows)  # type: ignore[arg-type]
    for meter, item, verdict in work.held:
        reading = item.reading
        if (item.meter_id, reading.taken_at.astimezone(UTC)) in created:
            work.log.append(
                Entry(
                    ACTOR,
                    "reading.held",
                    "meter",
                    meter.id,
                    meter.site_id,
                    verdict.reason,
                    {"taken_at": reading.taken_at.isoformat(), "total": str(reading.total)},
                    work.now,
                )
            )


def _mark_good(meter: MeterState, item: IncomingReading, newest: bool, work: _Batch) -> None:
    """The meter answered: online again (logged once), newest state mirrored on the row."""
    meter.missed_reads = 0
    if not meter.online:
        meter.online = True
        work.log.append(
            Entry(
                ACTOR, "meter.online", "meter", meter.id, meter.site_id, "电表恢复通讯", at=work.now
            )
        )
    at = item.reading.taken_at
    if not newest or (meter.last_reading_at and at < meter.last_reading_at):
        return
    meter.last_reading_at = at
    confirmed = meter.relay_confirmed_at
    fresher = confirmed is None or at >= confirmed
    if fresher and item.relay is not None and item.relay is not RelayState.UNKNOWN:
        if item.relay is RelayState.CLOSED:
            meter.trip_cause = None
        meter.relay_state = item.relay.value
        meter.relay_confirmed_at = at
    if item.protected is not None:
        meter.protected = item.protected
    if item.money is not None and meter.billing == MeterBilling.METER.value:
        meter.money_fen = item.money.remaining_fen
        meter.money_read_at = at
        if meter.account_id is not None:
            work.report.accounts.add(meter.account_id)


async def record_misses(
    meter_ids: Sequence[int], error: Mapping[int, str], *, offline_after: int, now: datetime
) -> list[int]:
    """Count a missed read per meter; returns the meters that just went offline."""
    went_offline: list[int] = []
    log: list[Entry] = []
    async with in_transaction() as conn:
        meters = await store.lock_meters(conn, list(meter_ids))
        for meter in meters.values():
            meter.missed_reads += 1
            if meter.online and meter.missed_reads >= offline_after:
                meter.online = False
                went_offline.append(meter.id)
                log.append(
                    Entry(
                        ACTOR,
                        "meter.offline",
                        "meter",
                        meter.id,
                        meter.site_id,
                        f"连续 {meter.missed_reads} 次抄表失败，电表离线",
                        {"error": error.get(meter.id, "")[:300]},
                        now,
                    )
                )
        await store.save_meters(conn, meters.values())
        await record_many(log)
    return went_offline


async def pending_before(received_before: datetime) -> list[StoredReading]:
    """Readings stored before `received_before` and still waiting to be billed (oldest first):
    the sweep should have billed them; `shuidian ledger check` lists them."""
    return (
        await StoredReading.filter(billing=BillingStatus.PENDING, received_at__lt=received_before)
        .order_by("received_at", "id")
        .limit(1000)
    )
