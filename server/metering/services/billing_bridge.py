"""The seam to the billing service: pending readings in, one outcome per reading out.

Billing (`server.billing.service.bill_readings`) prices each (previous, current) pair and
debits the wallet, idempotent per (meter, reading time). This module only translates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from server.metering.models import Reading
from server.metering.services.readings import spec_of


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error: str = ""


def _bands(raw: dict[str, str]) -> dict[int, Decimal]:
    return {int(k): Decimal(v) for k, v in raw.items()}


async def bill(rows: Sequence[Reading]) -> list[Outcome]:
    """Bill `rows` (pending readings with `meter` fetched) in one call to billing."""
    from server.billing import service as billing
    from server.billing.usage import MeterReading

    prev_at = {(r.meter_id, r.prev_taken_at) for r in rows}
    prevs = {
        (p.meter_id, p.taken_at): p
        for p in await Reading.filter(
            meter_id__in={m for m, _ in prev_at}, taken_at__in={t for _, t in prev_at}
        )
    }
    items = []
    for row in rows:
        prev = prevs[(row.meter_id, row.prev_taken_at)]
        items.append(
            billing.ReadingToBill(
                meter_id=row.meter_id,
                prev=MeterReading(prev.taken_at, Decimal(prev.total), _bands(prev.bands)),
                curr=MeterReading(row.taken_at, Decimal(row.total), _bands(row.bands)),
                # The same wrap point ingest used to accept a roll-over (999999.99 → 0.00),
                # so billing prices what ingest accepted instead of refusing it as negative.
                register_max=spec_of(row.meter).modulus,
            )
        )
    results = await billing.bill_readings(items)
    done = {billing.BillStatus.BILLED, billing.BillStatus.DUPLICATE}
    return [
        Outcome(
            ok=r.status in done,
            error="" if r.error is None else getattr(r.error, "message", str(r.error)),
        )
        for r in results
    ]
