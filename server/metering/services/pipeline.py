"""Readings in, money and alarms out: ingest → bill pending deltas → evaluate alarms.

Three steps, three transactions, each safe to repeat: a crash after ingest leaves readings
`pending`, billed by the next `bill_pending` sweep (billing is idempotent per (meter,
reading time) as well); a crash after billing leaves alarms to the next evaluation (the
collector's next round or the scheduler's sweep).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.transactions import in_transaction

from server.metering.models import BillingStatus, Reading
from server.metering.services import billing_bridge
from server.metering.services.alarm_service import evaluate_accounts
from server.metering.services.readings import IncomingReading, IngestReport, ingest


@dataclass
class ProcessReport:
    ingest: IngestReport
    billed: int = 0
    failed: int = 0
    accounts: set[int] = field(default_factory=set)


async def process_readings(items: Iterable[IncomingReading], *, now: datetime) -> ProcessReport:
    report = ProcessReport(ingest=await ingest(items, now=now))
    if report.ingest.pending:
        billed, failed, accounts = await bill_pending(report.ingest.pending)
        report.billed, report.failed = billed, failed
        report.accounts |= accounts
    report.accounts |= report.ingest.accounts
    if report.accounts:
        await evaluate_accounts(report.accounts, now=now)
    return report


async def bill_pending(reading_ids: Sequence[int] | None = None) -> tuple[int, int, set[int]]:
    """Bill pending readings (all of them when `reading_ids` is None), oldest first."""
    query = Reading.filter(billing=BillingStatus.PENDING)
    if reading_ids is not None:
        query = query.filter(id__in=list(reading_ids))
    rows = await query.order_by("meter_id", "taken_at").prefetch_related("meter")
    if not rows:
        return 0, 0, set()
    outcomes = await billing_bridge.bill(rows)
    billed = failed = 0
    accounts: set[int] = set()
    async with in_transaction():
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome.ok:
                row.billing, billed = BillingStatus.BILLED, billed + 1
                accounts.add(row.meter.account_id)
            else:
                row.billing, failed = BillingStatus.FAILED, failed + 1
                row.billing_error = outcome.error[:200]
            await row.save(update_fields=["billing", "billing_error"])
    return billed, failed, accounts
