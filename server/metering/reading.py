"""The register reading, and the one rule for how far a register advanced. Pure.

One value from the meter to the bill: a driver reads a meter's cumulative registers and
stamps them (`Reading`: taken_at, total, bands — raw, before CT×PT); ingest classifies it,
stores it and hands it, with the accepted reading before it, to billing, which prices the
pair. Nobody converts it on the way: the gateway message, the collector's `IncomingReading`
and billing's requests carry a `Reading` rather than its fields under other names.

    taken_at  when the meter was read (aware)
    total     the total register, e.g. 012345.67 kWh
    bands     band register number (1 尖, 2 峰, 3 平, 4 谷, 5 深谷) → its value; {} if none

Roll-over. A register counts up to its maximum and wraps to zero; its modulus is the
maximum plus one step of its last digit (999999.99 → 1000000.00). `advance(prev, curr,
modulus)` is the one place that decides how far a register moved between two readings,
for ingest (ROLLOVER, or RESET/IMPLAUSIBLE when it raises) and for billing (NegativeDelta
when it raises):

    curr ≥ prev                                  → curr − prev
    curr < prev, wrapped = modulus − prev + curr,
        0 < wrapped < modulus / 2                → wrapped (a roll-over)
    otherwise (or no modulus known)              → RegisterWentBack

A wrap is believed only while it is the shorter way round: a register that "wrapped" more
than half its range is far likelier reset, replaced or misread than run half a million kWh.
The arithmetic is plain operators in the caller's decimal context (billing runs it in its
exact context, where a result that would be rounded raises).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# A register showing 999999.99 wraps to 000000.00: its modulus is 1000000.00.
REGISTER_MAX = Decimal("999999.99")
RESOLUTION = Decimal("0.01")
MODULUS = REGISTER_MAX + RESOLUTION


@dataclass(frozen=True, slots=True)
class Reading:
    """Cumulative registers of one meter at the time it was read (raw, before CT×PT)."""

    taken_at: datetime
    total: Decimal
    bands: Mapping[int, Decimal] = field(default_factory=dict)

    def same_registers(self, other: Reading) -> bool:
        return self.total == other.total and dict(self.bands) == dict(other.bands)


class RegisterWentBack(ValueError):
    """The register is lower than before and no roll-over explains it: a reset, a replaced
    meter or a misread. Never turned into negative use: ingest holds the reading for review
    and billing refuses it."""

    def __init__(self, prev: Decimal, curr: Decimal) -> None:
        super().__init__(f"register went back from {prev} to {curr}")
        self.prev = prev
        self.curr = curr


def advance(prev: Decimal, curr: Decimal, modulus: Decimal | None = MODULUS) -> Decimal:
    """How far a register moved from `prev` to `curr` (see the module docstring)."""
    if curr >= prev:
        return curr - prev
    if modulus is not None and prev < modulus:
        wrapped = modulus - prev + curr
        if 0 < wrapped < modulus / 2:
            return wrapped
    raise RegisterWentBack(prev, curr)
