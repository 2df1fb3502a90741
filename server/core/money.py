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


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_BIG_UNITS = ("", "万", "亿", "万亿")


def in_words(fen: int) -> str:
    """An amount in Chinese capital numerals as receipts write it (人民币大写): 12,345.60 →
    壹万贰仟叁佰肆拾伍元陆角整; 100.05 → 壹佰元零伍分; 0.50 → 伍角整; 0 → 零元整."""
    if fen < 0:
        return "负" + in_words(-fen)
    whole, cents = divmod(int(fen), FEN_PER_YUAN)
    jiao, fen_part = divmod(cents, 10)
    if whole == 0 and cents == 0:
        return "零元整"
    text = _integer_words(whole) + "元" if whole else ""
    if jiao == 0 and fen_part == 0:
        return text + "整"
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif whole:
        text += "零"
    if fen_part:
        text += _DIGITS[fen_part] + "分"
    else:
        text += "整"
    return text


def _integer_words(n: int) -> str:
    groups: list[int] = []
    while n:
        n, group = divmod(n, 10_000)
        groups.append(group)
    out, zero = "", False
    for i in range(len(groups) - 1, -1, -1):
        group = groups[i]
        if group == 0:
            zero = bool(out)
            continue
        if out and (zero or group < 1000):
            out += "零"
        out += _group_words(group) + _BIG_UNITS[i]
        zero = False
    return out


def _group_words(n: int) -> str:
    """1..9999 in capital numerals, inner zeros read once (壹仟零伍)."""
    out, zero = "", False
    for position in range(3, -1, -1):
        digit = n // 10**position % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[digit] + _SMALL_UNITS[position]
    return out
