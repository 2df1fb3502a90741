"""Money helpers: integer fen everywhere, Decimal for quantities and prices.

One function splits a sum (`split_by_weights`, largest remainder), so splits always add up;
`yuan` and `parse_yuan` convert at the edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal

FEN_PER_YUAN = 100


def yuan(fen: int) -> Decimal:
    """Fen as a Decimal yuan amount with two places, for display and payment APIs."""
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def parse_yuan(text: str) -> int:
    """Parse a yuan string such as "12.30" into fen; more than two decimals is an error."""
    value = Decimal(text.strip())
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"amount has more than two decimal places: {text!r}")
    return int(value * FEN_PER_YUAN)


def split_by_weights(total: int, weights: Sequence[Decimal | int]) -> list[int]:
    """Split `total` fen by `weights` with the largest-remainder method.

    The parts always add up to `total`; ties go to the earlier weight. Negative totals are
    split as the mirror image of the positive one.
    """
    if not weights:
        raise ValueError("cannot split over no weights")
    ws = [Decimal(w) for w in weights]
    if any(w < 0 for w in ws):
        raise ValueError("weights must not be negative")
    weight_sum = sum(ws)
    if weight_sum == 0:
        ws = [Decimal(1)] * len(ws)
        weight_sum = Decimal(len(ws))
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    exact = [magnitude * w / weight_sum for w in ws]
    parts = [int(e.to_integral_value(rounding=ROUND_FLOOR)) for e in exact]
    short = magnitude - sum(parts)
    order = sorted(range(len(ws)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:short]:
        parts[i] += 1
    return [sign * p for p in parts]
