"""Line and transformer losses (线变损) of a site's period. Pure.

Staff enter the upstream grid meter's readings (the utility's 关口表) and the grid bill's
total for the period. Then

    grid kWh   = (end reading − start reading) × multiplier
    loss kWh   = grid kWh − (tenant meters + common-area meters + the operator's own use)
    loss rate  = loss kWh / grid kWh

The grid bill is what the operator paid for all the grid kWh, so each kWh is worth the grid's
average settlement price (grid bill / grid kWh). The bill is split over the four uses by
their kWh with the largest-remainder method, so the four parts add up to the bill to the fen;
the loss's part is the money shared out to the tenants (LOSS_SHARE), by `allocation`'s rules.
The operator's own use is not shared: it is the operator's cost.

A grid figure below what the meters downstream measured is refused: the readings are wrong
(a missed roll-over, a wrong multiplier), and a negative loss would pay tenants money.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from server.core.errors import ValidationFailed
from server.core.money import split_by_weights

ZERO = Decimal(0)
RATE_PLACES = Decimal("0.0001")  # a rate shown to 0.01 %
PRICE_PLACES = Decimal("0.000001")  # ¥/kWh shown to 6 places


class LossNotPositive(ValidationFailed):
    """The grid meter measured less than the meters below it: the loss would be negative."""

    code = "loss_negative"


@dataclass(frozen=True, slots=True)
class GridEntry:
    """What staff entered for a period."""

    start_reading: Decimal
    end_reading: Decimal
    multiplier: int
    bill_fen: int
    own_use_kwh: Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    """The period's energy balance and what each part of it cost at the grid's price."""

    grid_kwh: Decimal
    tenant_kwh: Decimal
    common_kwh: Decimal
    own_use_kwh: Decimal
    loss_kwh: Decimal
    bill_fen: int
    tenant_fen: int  # the grid's cost of what the tenant meters measured
    common_fen: int
    own_use_fen: int
    loss_fen: int  # shared out to the tenants

    @property
    def loss_rate(self) -> Decimal:
        """loss kWh / grid kWh (0 when the grid measured nothing)."""
        if self.grid_kwh == ZERO:
            return ZERO
        return (self.loss_kwh / self.grid_kwh).quantize(RATE_PLACES)

    @property
    def grid_price(self) -> Decimal:
        """The grid's average settlement price, ¥/kWh."""
        return average_price(self.bill_fen, self.grid_kwh)


def average_price(amount_fen: int, kwh: Decimal) -> Decimal:
    """¥ per kWh of `amount_fen` over `kwh`, to six places (0 over no use)."""
    if kwh <= ZERO:
        return ZERO
    return (Decimal(amount_fen) / 100 / kwh).quantize(PRICE_PLACES)


def grid_kwh(entry: GridEntry) -> Decimal:
    """The grid meter's period use; a reading that went backwards is refused."""
    if entry.multiplier < 1:
        raise ValidationFailed("倍率必须是正整数")
    if entry.end_reading < entry.start_reading:
        raise ValidationFailed("关口表期末读数小于期初读数")
    return (entry.end_reading - entry.start_reading) * entry.multiplier


def balance(entry: GridEntry, tenant_kwh: Decimal, common_kwh: Decimal) -> Balance:
    """The period's balance (see the module docstring)."""
    if entry.bill_fen < 0 or entry.own_use_kwh < ZERO:
        raise ValidationFailed("电网账单金额和自用电量不能为负数")
    grid = grid_kwh(entry)
    loss = grid - tenant_kwh - common_kwh - entry.own_use_kwh
    if loss < ZERO:
        raise LossNotPositive(
            "关口表电量小于租户表、公共表和自用电量之和，请核对读数和倍率",
            grid_kwh=grid, metered_kwh=grid - loss,
        )  # fmt: skip
    uses = [tenant_kwh, common_kwh, entry.own_use_kwh, loss]
    tenant_fen, common_fen, own_fen, loss_fen = split_by_weights(entry.bill_fen, uses)
    return Balance(
        grid, tenant_kwh, common_kwh, entry.own_use_kwh, loss, entry.bill_fen,
        tenant_fen, common_fen, own_fen, loss_fen,
    )  # fmt: skip
