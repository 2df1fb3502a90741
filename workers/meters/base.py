"""The one interface every meter driver implements, and what it returns.

Registers come back as the platform's one `Reading` (server.metering.reading: taken_at,
total, bands, raw before CT×PT), stamped by the driver when it read them, so the collector,
ingest and billing pass on what the driver returned without reshaping it.

Drivers never return a silent None: a meter that does not answer raises `MeterUnreachable`,
a meter that answers "no" raises `MeterRejected` with the meter's own error code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

# The shared words live with the platform; re-exported here for the drivers.
from server.metering.reading import Reading
from server.metering.vocabulary import (
    Instant,
    MeterKind,
    MeterProtocol,
    MoneyRegister,
    RelayAction,
    RelayState,
)

__all__ = [
    "DemandReader",
    "Instant",
    "MaxDemand",
    "MeterDriver",
    "MeterError",
    "MeterKind",
    "MeterProtocol",
    "MeterRejected",
    "MeterSnapshot",
    "MeterStatus",
    "MeterUnreachable",
    "MoneyRegister",
    "Reading",
    "RechargeRefused",
    "RelayAction",
    "RelayState",
]


class MeterError(Exception):
    """Base of the typed driver errors."""


class MeterUnreachable(MeterError):
    """No (valid) answer from the meter within the timeout: offline, silent or garbled."""


class MeterRejected(MeterError):
    """The meter answered with an error reply; `code` is the meter's own error code."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RechargeRefused(MeterRejected):
    """The meter refused a recharge, e.g. its purchase count is not last + 1."""


@dataclass(frozen=True, slots=True)
class MeterStatus:
    relay: RelayState
    protected: bool = False  # 保电
    alarm_1: bool = False
    alarm_2: bool = False
    owing: bool = False


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """Everything one billing round reads from a meter; `reading` says when it was read."""

    address: str
    reading: Reading  # kWh registers (m³ for water meters, which have no bands)
    status: MeterStatus
    instant: Instant | None = None
    money: MoneyRegister | None = None


@runtime_checkable
class MeterDriver(Protocol):
    """One meter behind one protocol. Every method raises MeterError subclasses on failure."""

    async def read_energy(self) -> Reading:
        """The energy registers, stamped with when they were read."""
        ...

    async def read_instant(self) -> Instant: ...

    async def read_money(self) -> MoneyRegister: ...

    async def read_status(self) -> MeterStatus: ...

    async def read_snapshot(self) -> MeterSnapshot: ...

    async def relay(self, action: RelayAction) -> MeterStatus:
        """Carry out `action`, then read the status back and return what the meter says."""
        ...

    async def write_prices(self, prices_yuan_per_kwh: dict[int, Decimal]) -> None: ...

    async def write_alarm_amounts(self, alarm_1_fen: int, alarm_2_fen: int) -> None: ...

    async def write_recharge(self, amount_fen: int, purchase_count: int) -> MoneyRegister:
        """Write a recharge; `purchase_count` must be the meter's count + 1."""
        ...


@dataclass(frozen=True, slots=True)
class MaxDemand:
    """A meter's maximum demand (最大需量) over a settlement period: the highest average
    active power (kW) of any demand interval, and when that interval ended (None: the
    meter has not completed one in the period)."""

    kw: Decimal
    at: datetime | None


@runtime_checkable
class DemandReader(Protocol):
    """A driver whose protocol offers the maximum demand (DL/T 645-2007 0101xxxx)."""

    async def read_max_demand(self, previous: bool = False) -> MaxDemand:
        """The current period's maximum demand, or the period before the meter last settled
        (`previous`: 上1结算日, the month before once the meter settled on the 1st)."""
        ...
