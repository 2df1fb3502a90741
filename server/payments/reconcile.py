"""T+1 reconciliation: match a channel's daily bill to our ledger credits (pure).

Design
------
Each successful bill row and each of our records is keyed by (channel, kind, number): the
out_trade_no for a payment, the out_refund_no for a refund. Every key must appear exactly
once on each side with the same amount in fen (invariant 10). The report lists:

- `missing`: on the bill, not ours (money arrived we did not credit, or a refund we never
  booked) — finance must look;
- `extra`: ours, not on the bill (we credited money the platform did not settle);
- `amount_mismatches`: on both sides with different amounts;
- `duplicates`: a key seen more than once on one side.

Bill rows whose status is not SUCCESS (e.g. a WeChat REVOKED payment or a refund still
PROCESSING) are not settlement and are only counted. No clock, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from server.payments.providers.base import BillRow, BillRowType, Channel


class Side(StrEnum):
    BILL = "bill"
    OURS = "ours"


@dataclass(frozen=True, slots=True)
class OurRecord:
    """One credit (payment) or refund as our ledger booked it."""

    channel: Channel
    type: BillRowType
    out_trade_no: str
    out_refund_no: str
    amount_fen: int


@dataclass(frozen=True, slots=True, order=True)
class MatchKey:
    channel: Channel
    type: BillRowType
    number: str  # out_trade_no for payments, out_refund_no for refunds


@dataclass(frozen=True, slots=True)
class Missing:
    """On the platform's bill, not in our ledger."""

    key: MatchKey
    row: BillRow


@dataclass(frozen=True, slots=True)
class Extra:
    """In our ledger, not on the platform's bill."""

    key: MatchKey
    record: OurRecord


@dataclass(frozen=True, slots=True)
class AmountMismatch:
    key: MatchKey
    bill_fen: int
    ours_fen: int

    @property
    def difference_fen(self) -> int:
        return self.bill_fen - self.ours_fen


@dataclass(frozen=True, slots=True)
class Duplicate:
    key: MatchKey
    side: Side
    count: int


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    matched: int
    missing: tuple[Missing, ...]
    extra: tuple[Extra, ...]
    amount_mismatches: tuple[AmountMismatch, ...]
    duplicates: tuple[Duplicate, ...]
    ignored_rows: int  # bill rows that are not settled (not SUCCESS)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.amount_mismatches or self.duplicates)


def key_of(item: BillRow | OurRecord) -> MatchKey:
    number = item.out_refund_no if item.type is BillRowType.REFUND else item.out_trade_no
    return MatchKey(item.channel, item.type, number)


def _duplicates(keys: Iterable[MatchKey], side: Side) -> list[Duplicate]:
    return [Duplicate(k, side, n) for k, n in sorted(Counter(keys).items()) if n > 1]


def reconcile(bill: Iterable[BillRow], ours: Iterable[OurRecord]) -> ReconcileReport:
    """Compare one day's bill rows with our records for the same channel(s) and day."""
    bill_rows = list(bill)
    settled = [r for r in bill_rows if r.status == "SUCCESS"]
    records = list(ours)
    by_bill: dict[MatchKey, BillRow] = {}
    for row in settled:
        by_bill.setdefault(key_of(row), row)
    by_ours: dict[MatchKey, OurRecord] = {}
    for record in records:
        by_ours.setdefault(key_of(record), record)

    missing = [Missing(k, by_bill[k]) for k in sorted(by_bill.keys() - by_ours.keys())]
    extra = [Extra(k, by_ours[k]) for k in sorted(by_ours.keys() - by_bill.keys())]
    both = sorted(by_bill.keys() & by_ours.keys())
    mismatches = [
        AmountMismatch(k, by_bill[k].amount_fen, by_ours[k].amount_fen)
        for k in both
        if by_bill[k].amount_fen != by_ours[k].amount_fen
    ]
    duplicates = _duplicates(map(key_of, settled), Side.BILL) + _duplicates(
        map(key_of, records), Side.OURS
    )
    return ReconcileReport(
        matched=len(both) - len(mismatches),
        missing=tuple(missing),
        extra=tuple(extra),
        amount_mismatches=tuple(mismatches),
        duplicates=tuple(duplicates),
        ignored_rows=len(bill_rows) - len(settled),
    )
