"""DTSY1352 three-phase prepaid meter: same published map as DDSY1352 (U/I are phase A),
except total active power, which ours widens to i32 over 000D–000E because a three-phase
load passes the 65.535 kW a single register holds. Shuidian's block 0020–0032 as DDSY1352.
"""

from __future__ import annotations

from decimal import Decimal

from workers.meters.modbus.maps import ddsy1352
from workers.meters.modbus.registers import ModelMap, RegType
from workers.meters.modbus.registers import Register as R

MAP = ModelMap(
    model="DTSY1352",
    phases=3,
    registers={
        **ddsy1352.PUBLISHED,
        "power": R(0x000D, RegType.I32, Decimal("0.001"), "kW", note="ours: i32 total"),
        **ddsy1352.OURS,
    },
    relay_writes=ddsy1352.RELAY_WRITES,
)
