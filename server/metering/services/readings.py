"""Reading ingestion: store each reading once, classify it, hold what is suspect.

`ingest(items, now=…)` takes readings from any source (a polling round, a gateway's realtime
or replayed messages, 点抄, staff) and, per reading, in one transaction per batch:

1. looks for an accepted reading at the same (meter, taken_at): same registers → DUPLICATE,
   a no-op; different → CONFLICT, held;
2. otherwise finds the accepted neighbours (`previous` ≤ t < `following`) and asks the pure
   `ingest.classify` what the reading means;
3. stores accepted ones in `meter_reading` (unique (meter, taken_at), so a concurrent
   duplicate fails the insert and is counted as a duplicate), and held ones in
   `held_reading`, never billed;
4. a billable delta of a platform-billed meter with an account is stored `pending`; the
   billing step (`billing_bridge.bill_pending`) bills it once (billing's own unique
   (meter, reading_at) is the second guard);
5. a good reading brings the meter online (logged once, at recovery), and the newest reading
   updates the relay state the meter reported and, for meter-billed meters, its money mirror.

Missed reads (`record_misses`) count up per meter; at `offline_after` the meter goes offline,
logged once at that moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.metering import ingest as rules
from server.metering.models import (
    BillingStatus,
    HeldReading,
    Meter,
    MeterBilling,
    Reading,
    ReadingSource,
)
from workers.meters.base import MeterKind, MoneyRegister, RelayState

ACTOR = "system:collector"
_COLLECTOR_FIELDS = [
    "missed_reads",
    "online",
    "last_reading_at",
    "relay_state",
    "relay_confirmed_at",
    "trip_cause",
    "protected",
    "money_fen",
    "money_read_at",
]


@dataclass(frozen=True, slots=True)
class IncomingReading:
    """A reading as a source delivered it (raw registers, before CT×PT)."""

    meter_id: int
    taken_at: datetime
    total: Decimal
    bands: Mapping[int, Decimal] = field(default_factory=dict)
    source: ReadingSource = ReadingSource.POLL
    relay: RelayState | None = None
    protected: bool | None = None
    money: MoneyRegister | None = None


@dataclass
class IngestReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)  # reading ids waiting for billing
    accounts: set[int] = field(default_factory=set)  # accounts whose meter money moved

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def spec_of(meter: Meter) -> rules.MeterSpec:
    rated = Decimal(meter.rated_kw)
    return rules.MeterSpec(
        rated_per_hour=rated if rated > 0 else Decimal(1),
        multiplier=Decimal(meter.multiplier),
    )


def _as_rule(r: Reading) -> rules.Reading:
    return rules.Reading(
        r.taken_at, Decimal(r.total), {int(k): Decimal(v) for k, v in r.bands.items()}
    )


def _bands_json(bands: Mapping[int, Decimal]) -> dict[str, str]:
    return {str(k): str(v) for k, v in sorted(bands.items())}


async def ingest(items: Iterable[IncomingReading], *, now: datetime) -> IngestReport:
    """Store and classify a batch of readings (see the module docstring)."""
    batch = sorted(items, key=lambda r: (r.meter_id, r.taken_at))
    report = IngestReport()
    if not batch:
        return report
    async with in_transaction():
        # Locked: the controller writes the relay state it confirmed on the same rows.
        rows = await Meter.filter(id__in={r.meter_id for r in batch}).select_for_update()
        meters = {m.id: m for m in rows}
        for item in batch:
            meter = meters.get(item.meter_id)
            if meter is None:
                report.count("unknown_meter")
                continue
            await _one(meter, item, report, now)
        for meter in meters.values():
            await meter.save(update_fields=_COLLECTOR_FIELDS)
    return report


async def _one(meter: Meter, item: IncomingReading, report: IngestReport, now: datetime) -> None:
    new = rules.Reading(item.taken_at, item.total, dict(item.bands))
    previous = (
        await Reading.filter(meter_id=meter.id, taken_at__lte=item.taken_at)
        .order_by("-taken_at")
        .first()
    )
    following = None
    if previous is None or previous.taken_at != item.taken_at:
        following = (
            await Reading.filter(meter_id=meter.id, taken_at__gt=item.taken_at)
            .order_by("taken_at")
            .first()
        )
    verdict = rules.classify(
        new,
        _as_rule(previous) if previous else None,
        spec_of(meter),
        _as_rule(following) if following else None,
    )
    report.count(verdict.outcome.value)
    await _mark_good(meter, item, following is None, report, now)
    if verdict.outcome is rules.Outcome.DUPLICATE:
        return
    if verdict.held_for_review:
        await _hold(meter, item, verdict, now)
        return
    billable = (
        verdict.billable and meter.billing == MeterBilling.PLATFORM and meter.account_id is not None
    )
    try:
        async with in_transaction():
            row = await Reading.create(
                meter_id=meter.id,
                taken_at=item.taken_at,
                total=item.total,
                bands=_bands_json(item.bands),
                outcome=verdict.outcome.value,
                source=item.source,
                billing=BillingStatus.PENDING if billable else BillingStatus.NONE,
                prev_taken_at=previous.taken_at if previous and verdict.billable else None,
                energy=str(verdict.usage.energy),
                money_fen=item.money.remaining_fen if item.money else None,
                purchase_count=item.money.purchase_count if item.money else None,
            )
    except IntegrityError:  # a concurrent ingest stored the same (meter, taken_at) first
        report.count("duplicate")
        return
    if billable:
        report.pending.append(row.id)


async def _hold(
    meter: Meter, item: IncomingReading, verdict: rules.Classification, now: datetime
) -> None:
    _, created = await HeldReading.get_or_create(
        meter_id=meter.id,
        taken_at=item.taken_at,
        defaults={
            "total": item.total,
            "bands": _bands_json(item.bands),
            "outcome": verdict.outcome.value,
            "reason": verdict.reason[:300],
            "source": item.source,
        },
    )
    if created:
        await record(
            ACTOR,
            "reading.held",
            target_type="meter",
            target_id=meter.id,
            site_id=meter.site_id,
            reason=verdict.reason,
            detail={"taken_at": item.taken_at.isoformat(), "total": str(item.total)},
            at=now,
        )


async def _mark_good(
    meter: Meter, item: IncomingReading, newest: bool, report: IngestReport, now: datetime
) -> None:
    """The meter answered: online again (logged once), newest state mirrored on the row."""
    meter.missed_reads = 0
    if not meter.online:
        meter.online = True
        await record(
            ACTOR,
            "meter.online",
            target_type="meter",
            target_id=meter.id,
            site_id=meter.site_id,
            reason="电表恢复通讯",
            at=now,
        )
    if not newest or (meter.last_reading_at and item.taken_at < meter.last_reading_at):
        return
    meter.last_reading_at = item.taken_at
    confirmed = meter.relay_confirmed_at
    fresher = confirmed is None or item.taken_at >= confirmed
    if fresher and item.relay is not None and item.relay is not RelayState.UNKNOWN:
        if item.relay is RelayState.CLOSED:
            meter.trip_cause = None
        meter.relay_state = item.relay
        meter.relay_confirmed_at = item.taken_at
    if item.protected is not None:
        meter.protected = item.protected
    if item.money is not None and meter.billing == MeterBilling.METER:
        meter.money_fen = item.money.remaining_fen
        meter.money_read_at = item.taken_at
        if meter.account_id is not None:
            report.accounts.add(meter.account_id)


async def record_misses(
    meter_ids: Sequence[int], error: Mapping[int, str], *, offline_after: int, now: datetime
) -> list[int]:
    """Count a missed read per meter; returns the meters that just went offline."""
    went_offline: list[int] = []
    async with in_transaction():
        for meter in await Meter.filter(id__in=list(meter_ids)):
            meter.missed_reads += 1
            if meter.online and meter.missed_reads >= offline_after:
                meter.online = False
                went_offline.append(meter.id)
                await record(
                    ACTOR,
                    "meter.offline",
                    target_type="meter",
                    target_id=meter.id,
                    site_id=meter.site_id,
                    reason=f"连续 {meter.missed_reads} 次抄表失败，电表离线",
                    detail={"error": error.get(meter.id, "")[:300]},
                    at=now,
                )
            await meter.save(update_fields=["missed_reads", "online"])
    return went_offline


def is_water(meter: Meter) -> bool:
    return meter.kind == MeterKind.WATER
