"""The seam to the billing service: pending readings in, one outcome per reading out.

Billing (`server.billing.service.bill_readings`) prices each (previous, current) pair and
debits the wallet, idempotent per (meter, reading time). This module only translates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from server.metering import ingest as rules
from server.metering.services.readings import PendingBill

# The wrap point ingest uses to accept a roll-over (999999.99 → 0.00), so billing prices what
# ingest accepted instead of refusing it as running backwards.
_REGISTER_MAX = rules.MeterSpec(rated_per_hour=Decimal(1)).modulus


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error: str = ""
    account_id: int | None = None
    amount_fen: int = 0  # what the wallet was charged now (0: a duplicate or only the carry)
    charged: bool = False  # billed by this call (not a duplicate): its amount is new money


def _reading(r: rules.Reading):
    from server.billing.usage import MeterReading

    return MeterReading(r.taken_at, r.total, dict(r.bands))


async def bill(items: Sequence[PendingBill]) -> list[Outcome]:
    """Bill `items` in one call to billing; `result[i]` answers `items[i]`."""
    from server.billing import service as billing

    results = await billing.bill_readings(
        [
            billing.ReadingToBill(
                meter_id=it.meter_id,
                prev=_reading(it.prev),
                curr=_reading(it.curr),
                register_max=_REGISTER_MAX,
            )
            for it in items
        ]
    )
    return [
        Outcome(
            ok=r.status in (billing.BillStatus.BILLED, billing.BillStatus.DUPLICATE),
            error="" if r.error is None else getattr(r.error, "message", str(r.error)),
            account_id=r.account_id,
            amount_fen=r.amount_fen if r.status is billing.BillStatus.BILLED else 0,
            charged=r.status is billing.BillStatus.BILLED,
        )
        for r in results
    ]
