"""The resale compliance statement (转供电合规) of a period. Pure.

The rule (NDRC 2018 and the provinces' implementations): a reseller charges its tenants the
grid's actual settlement price, with no mark-up; common-area costs are shared fairly, never
hidden in a higher unit price; losses are shared as actually incurred, within a cap (commonly
10 % of the grid bill); the operator's own use is not shared out; and in total the tenants pay
no more than the operator paid the grid for what they used.

Per tenant the statement shows its kWh, what it paid for energy, its common-area and loss
shares, its effective unit prices (energy alone, and everything together) against the grid's
average settlement price, and its loss share against the cap. Flags:

    MARKUP        the energy charge is above the tenant's kWh at the grid's average price
                  (rounded up to the fen): a mark-up;
    LOSS_OVER_CAP the tenant's loss share is above the cap (share of its energy cost);
and for the site: the tenants' total above the grid's cost of their kWh, common use and
losses (OVERCHARGED), and the park's loss share above the cap of the grid bill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from server.sharing.losses import RATE_PLACES, ZERO, Balance, average_price

DEFAULT_CAP = Decimal("0.10")  # loss share ≤ 10 % of the grid bill


class Flag(StrEnum):
    MARKUP = "markup"
    LOSS_OVER_CAP = "loss_over_cap"
    OVERCHARGED = "overcharged"


FLAG_LABELS = {
    Flag.MARKUP: "电价加价",
    Flag.LOSS_OVER_CAP: "损耗分摊超上限",
    Flag.OVERCHARGED: "收费总额超过电网结算",
}


@dataclass(frozen=True, slots=True)
class TenantUse:
    """One tenant's period: use and what it was charged, by kind."""

    account_id: int
    number: str
    tenant_name: str
    kwh: Decimal
    energy_fen: int
    common_fen: int
    loss_fen: int


@dataclass(frozen=True, slots=True)
class TenantLine:
    use: TenantUse
    energy_price: Decimal  # ¥/kWh of the energy charge alone
    effective_price: Decimal  # ¥/kWh of energy + common share + loss share
    loss_ratio: Decimal  # loss share / energy charge
    flags: tuple[Flag, ...]

    @property
    def total_fen(self) -> int:
        return self.use.energy_fen + self.use.common_fen + self.use.loss_fen


@dataclass(frozen=True, slots=True)
class Statement:
    balance: Balance
    cap: Decimal
    lines: tuple[TenantLine, ...]
    charged_fen: int  # what the tenants paid in all (energy + shares)
    allowed_fen: int  # the grid's cost of the tenants' kWh, the common use and the losses
    loss_ratio: Decimal  # the losses' part of the grid bill
    flags: tuple[Flag, ...]

    @property
    def flagged(self) -> tuple[TenantLine, ...]:
        return tuple(line for line in self.lines if line.flags)


def at_grid_price_fen(kwh: Decimal, balance: Balance) -> int:
    """`kwh` at the grid's average settlement price, rounded up to the fen (exact integers:
    a charge within the fen the rounding allows is no mark-up)."""
    units = int(kwh.scaleb(4).to_integral_value())
    grid_units = int(balance.grid_kwh.scaleb(4).to_integral_value())
    if grid_units <= 0:
        return 0
    return -(-(units * balance.bill_fen) // grid_units)


def _ratio(part: int, whole: int) -> Decimal:
    return (Decimal(part) / whole).quantize(RATE_PLACES) if whole > 0 else ZERO


def statement(balance: Balance, uses: Sequence[TenantUse], cap: Decimal = DEFAULT_CAP) -> Statement:
    """The period's statement (see the module docstring)."""
    lines = []
    for use in uses:
        energy_price = average_price(use.energy_fen, use.kwh)
        total = use.energy_fen + use.common_fen + use.loss_fen
        loss_ratio = _ratio(use.loss_fen, use.energy_fen)
        flags = []
        if use.energy_fen > at_grid_price_fen(use.kwh, balance):
            flags.append(Flag.MARKUP)
        if loss_ratio > cap:
            flags.append(Flag.LOSS_OVER_CAP)
        lines.append(
            TenantLine(use, energy_price, average_price(total, use.kwh), loss_ratio, tuple(flags))
        )
    charged = sum(line.total_fen for line in lines)
    allowed = balance.tenant_fen + balance.common_fen + balance.loss_fen
    loss_ratio = _ratio(balance.loss_fen, balance.bill_fen)
    site_flags = []
    if charged > allowed:
        site_flags.append(Flag.OVERCHARGED)
    if loss_ratio > cap:
        site_flags.append(Flag.LOSS_OVER_CAP)
    if any(Flag.MARKUP in line.flags for line in lines):
        site_flags.append(Flag.MARKUP)
    return Statement(balance, cap, tuple(lines), charged, allowed, loss_ratio, tuple(site_flags))
