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


# The protocols whose meters report their maximum demand (DL/T 645-2007 0101xxxx), which a
# two-part plan by demand levies on; other meters' demand is entered by staff.
DEMAND_PROTOCOLS = frozenset({MeterProtocol.DLT645})

KIND_LABELS = {MeterKind.ELECTRICITY: "电表", MeterKind.WATER: "水表"}

PROTOCOL_LABELS = {
    MeterProtocol.DLT645: "DL/T 645-2007",
    MeterProtocol.MODBUS_TCP: "Modbus TCP",
    MeterProtocol.MODBUS_RTU_TCP: "Modbus RTU over TCP",
    MeterProtocol.CJT188: "CJ/T 188",
    MeterProtocol.MQTT_GATEWAY: "MQTT 网关",
}

# The gateway kinds (server.metering.models.GatewayKind values) that carry each protocol.
PROTOCOL_GATEWAYS = {
    MeterProtocol.DLT645: "tcp",
    MeterProtocol.CJT188: "tcp",
    MeterProtocol.MODBUS_TCP: "modbus_tcp",
    MeterProtocol.MODBUS_RTU_TCP: "modbus_tcp",
    MeterProtocol.MQTT_GATEWAY: "mqtt",
}

_BCD_DIGITS = {MeterProtocol.DLT645: 12, MeterProtocol.CJT188: 14}


def address_problem(
    kind: MeterKind, protocol: MeterProtocol, address: str, unit: int = 0
) -> str | None:
    """What is wrong with a meter's wire identity, in words for staff (None: nothing).

    DL/T 645 addresses are 12 decimal digits (6 BCD bytes) and CJ/T 188 addresses 14 (7),
    printed on the nameplate; Modbus meters are reached by unit id 1–247 on their bus and
    keep a serial number as address; MQTT gateways name their devices as they like."""
    digits = _BCD_DIGITS.get(protocol)
    if protocol is MeterProtocol.CJT188 and kind is not MeterKind.WATER:
        return "CJ/T 188 是水表协议，电表请选 DL/T 645 或 Modbus"
    if protocol is MeterProtocol.DLT645 and kind is not MeterKind.ELECTRICITY:
        return "DL/T 645 是电表协议，水表请选 CJ/T 188"
    if digits is not None:
        if len(address) != digits or not address.isdecimal() or not address.isascii():
            return f"{PROTOCOL_LABELS[protocol]} 表地址应为 {digits} 位数字（见表铭牌）"
        return None
    if not address or len(address) > 32 or not address.isprintable() or address != address.strip():
        return "表地址（序列号）不能为空，最长 32 个字符"
    if (
        protocol in (MeterProtocol.MODBUS_TCP, MeterProtocol.MODBUS_RTU_TCP)
        and not 1 <= unit <= 247
    ):
        return "Modbus 从站地址应在 1 到 247 之间"
    return None


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
