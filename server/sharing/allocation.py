"""Splits of a whole among accounts: common-area sharing (公摊) and loss sharing (线变损). Pure.

A period's whole (fen, and the kWh behind it) is divided among the members by one of four
rules, each giving every member a weight:

    RATIO   the fixed ratio staff set per member (e.g. 3 : 2 : 1)
    AREA    the member's room area in m²
    USAGE   the member's own use in the period (kWh)
    EQUAL   1 each

Money is split in fen with the largest-remainder method (`server.core.money.split_by_weights`,
the one split of the code base): each member gets the floor of its exact share, and the fen
left over go one each to the largest remainders. **Tie rule**: equal remainders go to the
member listed first — callers list members by account id, so the lower account id gets the
fen. When every weight is zero (no one used anything, no areas entered) the whole is split
equally rather than lost. So the shares always add up to the whole, to the fen.

The kWh are split the same way on a 0.0001 kWh grid (the precision daily usage keeps), so
the quantities add up to the whole too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from server.core.money import split_by_weights

QUANTITY_UNITS = Decimal("0.0001")  # kWh grid of the quantity split (as daily usage keeps)
ZERO = Decimal(0)


class Method(StrEnum):
    RATIO = "ratio"  # 按固定比例
    AREA = "area"  # 按面积
    USAGE = "usage"  # 按用量
    EQUAL = "equal"  # 平均分摊


METHOD_LABELS = {
    Method.RATIO: "按固定比例",
    Method.AREA: "按面积",
    Method.USAGE: "按用量",
    Method.EQUAL: "平均分摊",
}


@dataclass(frozen=True, slots=True)
class Member:
    """One account taking part in a split, with every figure a rule may weigh it by."""

    account_id: int
    ratio: Decimal = ZERO
    area_m2: Decimal = ZERO
    usage: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Share:
    """What one member bears: its weight, its part of the quantity and of the money."""

    account_id: int
    weight: Decimal
    quantity: Decimal
    amount_fen: int


def weight_of(method: Method, member: Member) -> Decimal:
    """The weight `method` gives `member` (never negative)."""
    value = {
        Method.RATIO: member.ratio,
        Method.AREA: member.area_m2,
        Method.USAGE: member.usage,
        Method.EQUAL: Decimal(1),
    }[Method(method)]
    if value < ZERO:
        raise ValueError(f"a weight cannot be negative: account {member.account_id}: {value}")
    return value


def split_quantity(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`total` (≥ 0) split by `weights` on the 0.0001 grid; the parts add up to `total`
    rounded to that grid."""
    units = int(total.quantize(QUANTITY_UNITS).scaleb(4))
    return [
        Decimal(p).scaleb(-4).quantize(QUANTITY_UNITS) for p in split_by_weights(units, weights)
    ]


def allocate(
    method: Method, members: Sequence[Member], amount_fen: int, quantity: Decimal
) -> tuple[Share, ...]:
    """Split `amount_fen` (and the `quantity` behind it) among `members`, in their order (see
    the module docstring for the rule and the tie rule). No members: nothing to split on."""
    if not members:
        raise ValueError("cannot split over no members")
    if amount_fen < 0 or quantity < ZERO:
        raise ValueError("a share cannot be negative")
    weights = [weight_of(method, m) for m in members]
    money = split_by_weights(amount_fen, weights)
    quantities = split_quantity(quantity, weights)
    return tuple(
        Share(m.account_id, w, q, fen)
        for m, w, q, fen in zip(members, weights, quantities, money, strict=True)
    )
