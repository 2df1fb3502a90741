"""Acrel ADF400L multi-user meter box (manual V1.2): every circuit answers as its own slave.

Three-phase users sit 3 slave ids apart (1, 4, 7 … up to 12 users), single-phase users
are consecutive (1 … 36). Addresses from the manual; value encodings the manual leaves
open (forced-control values, price scale, status bits, single-phase remaining money) are
ours and marked so in docs/modbus-maps.md.
"""

from __future__ import annotations

from decimal import Decimal

from workers.meters.modbus.registers import Access, ModelMap, RegisterMap, RegType, RelayWrite
from workers.meters.modbus.registers import Register as R

MAX_SINGLE_PHASE = 36
MAX_THREE_PHASE = 12

KWH = Decimal("0.01")
YUAN = Decimal("0.01")
PRICE = Decimal("0.0001")

PARAMETERS: RegisterMap = {
    "price_1": R(0x0501, RegType.U32, PRICE, "yuan/kWh", Access.RW, "scale ours"),
    "price_2": R(0x0503, RegType.U32, PRICE, "yuan/kWh", Access.RW, "scale ours"),
    "price_3": R(0x0505, RegType.U32, PRICE, "yuan/kWh", Access.RW, "scale ours"),
    "price_4": R(0x0507, RegType.U32, PRICE, "yuan/kWh", Access.RW, "scale ours"),
    "alarm_1": R(0x0509, RegType.U32, YUAN, "yuan", Access.RW),
    "alarm_2": R(0x050B, RegType.U32, YUAN, "yuan", Access.RW),
    "recharge": R(0x050D, RegType.U32, YUAN, "yuan", Access.RW, "new purchase amount"),
    "recharge_count": R(0x050F, RegType.U16, access=Access.RW, note="must be count + 1"),
    "relay_control": R(0x0801, RegType.U16, access=Access.RW, note="ours: 0 auto 1 trip 2 close"),
    "protect": R(0x0804, RegType.U16, access=Access.RW, note="ours: 1 保电 on, 0 off"),
}

SINGLE_PHASE: RegisterMap = {
    "voltage": R(0x0300, RegType.U16, Decimal("0.1"), "V"),
    "current": R(0x0301, RegType.U16, Decimal("0.01"), "A"),
    "power": R(0x0302, RegType.I16, Decimal("0.001"), "kW"),
    "total": R(0x0306, RegType.U32, KWH, "kWh"),
    "remaining": R(0x030A, RegType.I32, YUAN, "yuan", note="address ours"),
    "purchase_count": R(0x030E, RegType.U16),
    "status": R(0x0311, RegType.U16, note="bits ours"),
    "band_1": R(0x0410, RegType.U32, KWH, "kWh", note="sharp 尖"),
    "band_2": R(0x0412, RegType.U32, KWH, "kWh", note="peak 峰"),
    "band_3": R(0x0414, RegType.U32, KWH, "kWh", note="flat 平"),
    "band_4": R(0x0416, RegType.U32, KWH, "kWh", note="valley 谷"),
    **PARAMETERS,
}

THREE_PHASE: RegisterMap = {
    "total": R(0x035E, RegType.U32, KWH, "kWh"),
    "remaining": R(0x0362, RegType.I32, YUAN, "yuan"),
    "purchase_count": R(0x0366, RegType.U16),
    "status": R(0x0369, RegType.U16, note="bits ours"),
    **PARAMETERS,
}

RELAY_WRITES = {
    "trip": RelayWrite("relay_control", (1,)),
    "close": RelayWrite("relay_control", (2,)),
    "close_allowed": RelayWrite("relay_control", (3,)),  # ours
    "protect_on": RelayWrite("protect", (1,)),
    "protect_off": RelayWrite("protect", (0,)),
}

MAP_1P = ModelMap(model="ADF400L-1P", phases=1, registers=SINGLE_PHASE, relay_writes=RELAY_WRITES)
MAP_3P = ModelMap(
    model="ADF400L-3P", phases=3, registers=THREE_PHASE, relay_writes=RELAY_WRITES, bands=()
)


class CircuitLayoutError(ValueError):
    """More circuits than one ADF400L box holds."""


def slave_ids(single_phase: int = 0, three_phase: int = 0) -> dict[int, ModelMap]:
    """Slave id → map for a box: three-phase users first (1, 4, 7 …), then single-phase.

    A three-phase user occupies three consecutive ids (one per phase circuit).
    """
    used = 3 * three_phase + single_phase
    if used > MAX_SINGLE_PHASE or three_phase > MAX_THREE_PHASE:
        raise CircuitLayoutError(f"{three_phase} three-phase + {single_phase} single-phase > 36")
    layout = {1 + 3 * i: MAP_3P for i in range(three_phase)}
    first = 1 + 3 * three_phase
    layout.update({first + i: MAP_1P for i in range(single_phase)})
    return layout
