"""An invoice's lines: the tax-inclusive amount of each item split into net and VAT.

Chinese e-invoices for a tenant's utilities are priced tax-inclusive (含税): a line of
¥113.00 at 13% carries tax round(113.00 × 0.13 / 1.13) = ¥13.00 and a net ¥100.00. Each
line's tax is rounded half-up to the fen on its own, as the platforms compute it per line;
the net is what remains, so net + tax = the amount, always.

Allocation of a request's amount over its payments takes the oldest first (`allocate`).
Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True, slots=True)
class Priced:
    amount_fen: int  # tax-inclusive
    net_fen: int
    tax_fen: int


def price_line(amount_fen: int, rate: Decimal) -> Priced:
    """Split a tax-inclusive amount at `rate` (0.13 for 13%) into net and tax, to the fen."""
    if rate < 0:
        raise ValueError("tax rate below zero")
    tax = (Decimal(amount_fen) * rate / (1 + rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return Priced(amount_fen, amount_fen - int(tax), int(tax))


def allocate(amount_fen: int, open_fen: Sequence[int]) -> list[int]:
    """How much of `amount_fen` each payment gives, oldest first, never above its open part.

    Raises ValueError when the payments' open parts do not cover the amount."""
    if amount_fen > sum(open_fen):
        raise ValueError("amount above what the payments leave open")
    out, left = [], amount_fen
    for available in open_fen:
        take = min(left, available)
        out.append(take)
        left -= take
    return out


def parse_rate(text: str) -> Decimal:
    """A rate as staff type it: "13%", "13", "0.13" → Decimal("0.13"); "0" or "免税" → 0."""
    cleaned = text.strip().removesuffix("%")
    if cleaned in ("免税", "不征税"):
        return Decimal(0)
    value = Decimal(cleaned)
    if value >= 1:
        value = value / 100
    if not Decimal(0) <= value < 1:
        raise ValueError("rate out of range")
    return value.normalize() if value else Decimal(0)
