"""DDSY1352 single-phase prepaid meter: the published map (0000–0010) plus Shuidian's own
block (0020–0032, 0057 extensions, 0059) for the money register, recharge and 保电.

See docs/modbus-maps.md; "ours" entries have no public vendor source.
"""

from __future__ import annotations

from decimal import Decimal

from workers.meters.modbus.registers import Access, ModelMap, RegisterMap, RegType, RelayWrite
from workers.meters.modbus.registers import Register as R

KWH = Decimal("0.01")
YUAN = Decimal("0.01")
PRICE = Decimal("0.0001")  # yuan/kWh, ours

PUBLISHED: RegisterMap = {
    "total": R(0x0000, RegType.U32, KWH, "kWh"),
    "band_1": R(0x0002, RegType.U32, KWH, "kWh", note="sharp 尖"),
    "band_2": R(0x0004, RegType.U32, KWH, "kWh", note="peak 峰"),
    "band_3": R(0x0006, RegType.U32, KWH, "kWh", note="flat 平"),
    "band_4": R(0x0008, RegType.U32, KWH, "kWh", note="valley 谷"),
    "voltage": R(0x000B, RegType.U16, Decimal("0.1"), "V"),
    "current": R(0x000C, RegType.U16, Decimal("0.01"), "A"),
    "power": R(0x000D, RegType.I16, Decimal("0.001"), "kW"),
    "power_factor": R(0x0010, RegType.U16, Decimal("0.001"), ""),
    "relay_control": R(
        0x0057, RegType.U32, access=Access.W, note="FC16 [enable, 0 close / 1 open / 2 allow]"
    ),
}

OURS: RegisterMap = {
    "remaining": R(0x0020, RegType.I32, YUAN, "yuan", note="ours"),
    "purchase_count": R(0x0022, RegType.U16, note="ours"),
    "status": R(0x0023, RegType.U16, note="ours: status bits"),
    "alarm_1": R(0x0024, RegType.U32, YUAN, "yuan", Access.RW, "ours"),
    "alarm_2": R(0x0026, RegType.U32, YUAN, "yuan", Access.RW, "ours"),
    "price_1": R(0x0028, RegType.U32, PRICE, "yuan/kWh", Access.RW, "ours"),
    "price_2": R(0x002A, RegType.U32, PRICE, "yuan/kWh", Access.RW, "ours"),
    "price_3": R(0x002C, RegType.U32, PRICE, "yuan/kWh", Access.RW, "ours"),
    "price_4": R(0x002E, RegType.U32, PRICE, "yuan/kWh", Access.RW, "ours"),
    "recharge": R(0x0030, RegType.U32, YUAN, "yuan", Access.RW, "ours: amount, FC16 with count"),
    "recharge_count": R(0x0032, RegType.U16, access=Access.RW, note="ours: must be count + 1"),
    "protect": R(0x0059, RegType.U16, access=Access.RW, note="ours: 1 保电 on, 0 off"),
}

RELAY_WRITES = {
    "close": RelayWrite("relay_control", (1, 0)),
    "trip": RelayWrite("relay_control", (1, 1)),
    "close_allowed": RelayWrite("relay_control", (1, 2)),  # ours
    "protect_on": RelayWrite("protect", (1,)),  # ours
    "protect_off": RelayWrite("protect", (0,)),  # ours
}

MAP = ModelMap(
    model="DDSY1352", phases=1, registers={**PUBLISHED, **OURS}, relay_writes=RELAY_WRITES
)
