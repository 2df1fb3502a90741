"""The words the platform and the meters share: kinds, protocols, relay states and actions,
the money register. Pure values (no framework, no I/O), so the meter rows in
`server.metering.models`, the decision modules and the drivers in `workers.meters` speak the
same words while `server/` never imports `workers/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class MeterKind(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"


class MeterProtocol(StrEnum):
    """Wire protocol a meter is reached by (stored on the meter row)."""

    DLT645 = "dlt645"
    MODBUS_TCP = "modbus_tcp"
    MODBUS_RTU_TCP = "modbus_rtu_tcp"
    CJT188 = "cjt188"
    MQTT_GATEWAY = "mqtt_gateway"


class RelayState(StrEnum):
    CLOSED = "closed"  # power on / valve open
    OPEN = "open"  # tripped / valve closed
    UNKNOWN = "unknown"


class RelayAction(StrEnum):
    TRIP = "trip"  # 跳闸 / 关阀
    CLOSE = "close"  # 合闸 / 开阀
    CLOSE_ALLOWED = "close_allowed"  # 允许合闸: a person presses the button
    PROTECT_ON = "protect_on"  # 保电
    PROTECT_OFF = "protect_off"  # 保电解除


@dataclass(frozen=True, slots=True)
class MoneyRegister:
    """Meter-side billing registers (表端计费)."""

    remaining_fen: int
    purchase_count: int


@dataclass(frozen=True, slots=True)
class Instant:
    """Instant values read with a snapshot (live values): U, I, P, PF."""

    voltage: Decimal | None = None  # V
    current: Decimal | None = None  # A
    power: Decimal | None = None  # kW
    power_factor: Decimal | None = None
