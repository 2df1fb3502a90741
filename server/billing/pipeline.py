"""Readings in, money and alarms out: ingest → bill pending deltas → evaluate alarms.

Billing consumes what metering measured, so this orchestration lives on billing's side of the
one-way dependency (billing → metering): metering ingests and stores readings `pending`
without knowing who prices them; this module prices them with `service.bill_readings`, marks
them billed or failed, and hands the accounts whose money moved back to metering's alarms.

Three steps, three transactions, each safe to repeat: a crash after ingest leaves readings
`pending`, billed by the next `bill_pending` sweep (billing is idempotent per (meter,
reading time) as well); a crash after billing leaves alarms to the next evaluation (the
collector's next round or the scheduler's sweep).

Derived rows ride along (docs/daily-usage.md): ingest adds the stored readings' use to
`daily_usage` in its transaction; billing's transaction nests in one that adds the charges
to the same days; the live-round readings refresh `meter_live` right after ingest.

Alarms are evaluated for the accounts whose money moved: a wallet charged a fen or more, or
a meter-billed meter's money register read. An account whose balance did not change would
get the same decision as last time (repeats are the scheduler's sweep).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from server.billing.service import BillStatus, ReadingToBill, bill_readings
from server.metering.models import BillingStatus
from server.metering.models import Reading as StoredReading
from server.metering.reading import MODULUS, Reading
from server.metering.service import daily_usage, live_values
from server.metering.service import reading_store as store
from server.metering.service.alarm_service import evaluate_accounts
from server.metering.service.held import Accepted, accept_held
from server.metering.service.readings import IncomingReading, IngestReport, PendingBill, ingest
from server.metering.service.replacement import MeterReplaced, replace_meter


@dataclass
class ProcessReport:
    ingest: IngestReport
    billed: int = 0
    failed: int = 0
    accounts: set[int] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=dict)  # per step, for metrics


async def process_readings(items: Iterable[IncomingReading], *, now: datetime) -> ProcessReport:
    t0 = time.perf_counter()
    items = list(items)
    report = ProcessReport(ingest=await ingest(items, now=now))
    await live_values.record(items)
    t1 = time.perf_counter()
    if report.ingest.bills:
        billed, failed, accounts = await bill(report.ingest.bills)
        report.billed, report.failed = billed, failed
        report.accounts |= accounts
    t2 = time.perf_counter()
    report.accounts |= report.ingest.accounts
    if report.accounts:
        await evaluate_accounts(report.accounts, now=now)
    report.seconds = {"ingest": t1 - t0, "billing": t2 - t1, "alarms": time.perf_counter() - t2}
    return report


async def process_replacement(old_meter_id: int, *, at: datetime, **swap: Any) -> MeterReplaced:
    """换表 end to end, in one transaction: `replace_meter(old_meter_id, at=at, **swap)` (see
    `server.metering.service.replacement` for the arguments), then bill the old meter's final
    reading and re-evaluate the account's alarms."""
    async with in_transaction():
        result = await replace_meter(old_meter_id, at=at, **swap)
        if result.closing_bills:
            await bill(result.closing_bills)
        if result.account_id is not None:
            await evaluate_accounts([result.account_id], now=at)
    return result


async def process_held_acceptance(
    site_ids: Sequence[int], held_id: int, *, actor: str, now: datetime
) -> Accepted:
    """Accept a held reading (`server.metering.service.held.accept_held`: what accepting each
    reason means) and bill what it adds, in one transaction, then re-evaluate the account's
    alarms. Accepting it again bills nothing (`Accepted.already`)."""
    async with in_transaction():
        result = await accept_held(site_ids, held_id, actor=actor, now=now)
        if result.bills:
            await bill(result.bills)
        if result.bills and result.account_id is not None:
            await evaluate_accounts([result.account_id], now=now)
    return result


async def bill(items: Sequence[PendingBill]) -> tuple[int, int, set[int]]:
    """Bill pending readings; (billed, failed, accounts charged at least a fen)."""
    async with in_transaction() as conn:  # billing's own transaction nests in this one
        outcomes = await bill_readings(
            # the readings ingest accepted, wrapping where ingest's register wraps (999999.99)
            [ReadingToBill(it.meter_id, it.prev, it.curr, MODULUS) for it in items]
        )
        charged = [  # new money only: duplicates and refusals add nothing to the days
            daily_usage.Charged(
                it.meter_id, o.account_id, it.prev.taken_at, it.curr.taken_at, o.amount_fen
            )
            for it, o in zip(items, outcomes, strict=True)
            if o.status is BillStatus.BILLED
        ]
        await daily_usage.record_charged(conn, charged)
    billed = failed = 0
    accounts: set[int] = set()
    results: list[tuple[int, str, str]] = []
    for item, outcome in zip(items, outcomes, strict=True):
        if outcome.status in (BillStatus.BILLED, BillStatus.DUPLICATE):
            billed += 1
            results.append((item.reading_id, BillingStatus.BILLED.value, ""))
            charged = outcome.amount_fen if outcome.status is BillStatus.BILLED else 0
            if charged and outcome.account_id is not None:
                accounts.add(outcome.account_id)
        else:
            failed += 1
            error = outcome.error
            why = "" if error is None else getattr(error, "message", str(error))
            results.append((item.reading_id, BillingStatus.FAILED.value, why[:200]))
    async with in_transaction() as conn:
        await store.set_billing(conn, results)
    return billed, failed, accounts


async def bill_pending(
    reading_ids: Sequence[int] | None = None, *, received_before: datetime | None = None
) -> tuple[int, int, set[int]]:
    """Bill pending readings (all of them when `reading_ids` is None; only those stored
    before `received_before` when given: younger ones are still on their own way), oldest
    first."""
    query = StoredReading.filter(billing=BillingStatus.PENDING)
    if reading_ids is not None:
        query = query.filter(id__in=list(reading_ids))
    if received_before is not None:
        query = query.filter(received_at__lt=received_before)
    rows = await query.order_by("meter_id", "taken_at")
    if not rows:
        return 0, 0, set()
    wanted = {(r.meter_id, r.prev_taken_at) for r in rows}
    prevs = {
        (p.meter_id, p.taken_at): p
        for p in await StoredReading.filter(
            meter_id__in={m for m, _ in wanted}, taken_at__in={t for _, t in wanted}
        )
    }
    items = [
        PendingBill(
            row.id,
            row.meter_id,
            _registers(prevs[(row.meter_id, row.prev_taken_at)]),
            _registers(row),
        )
        for row in rows
    ]
    return await bill(items)


async def sweep_pending(received_before: datetime | None, *, now: datetime) -> tuple[int, int]:
    """The periodic sweep: bill what a crash (or a killed controller's 点抄) left `pending`
    and re-evaluate the alarms of the accounts charged; (billed, failed)."""
    billed, failed, accounts = await bill_pending(received_before=received_before)
    if accounts:
        await evaluate_accounts(accounts, now=now)
    return billed, failed


def _registers(row: StoredReading) -> Reading:
    return store.reading_of(row.taken_at, row.total, row.bands)
