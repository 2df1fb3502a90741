"""Modbus TCP (and RTU-over-TCP) server whose slaves are SimMeters.

Design
------
pymodbus 3.16 hands every request PDU to `context.async_getValues / async_setValues`. Our
`SimModbusContext` subclasses its (deprecated, but stable in 3.x) `ModbusServerContext`
with `old_simulator = True`, which makes the server call it directly instead of wrapping it
in its own SimCore. Reads are computed from the SimMeter at read time through the same
`ModelMap` the driver uses; writes call `SimMeter.relay_action / recharge / set_prices /
set_alarm_amounts`. So there is one source of truth per model: the map.

Answers:
- a read touching no register of the map → exception 02 (illegal address); holes inside a
  read are 0, as on the vendor meters;
- a write that does not start and end on register boundaries, or hits a read-only one → 02;
- a refused recharge (count not last + 1) → 03 (illegal value); any other refusal by the
  meter (trip under 保电, close at zero balance, bad prices) → 04 (device failure);
- a silent slave (fault switch or `SimMeter.online = False`) does not answer at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

from workers.meters.base import RelayAction, RelayState
from workers.meters.modbus.registers import ModelMap, Register
from workers.sim.clock import SimClock
from workers.sim.meter import SimMeter, SimRechargeRefused, SimRefused

READ_CODES = (3, 4)
WRITE_CODES = (6, 16)


@dataclass
class SimSlave:
    """One Modbus slave id: a SimMeter seen through a model's map, plus fault switches."""

    meter: SimMeter
    model: ModelMap
    silent: bool = False
    delay: float = 0.0  # seconds before answering (slow meter)


def meter_values(meter: SimMeter, model: ModelMap) -> dict[str, Decimal]:
    """Every readable register of `model`, in its unit, from the meter's current state."""
    bits = model.status_bits
    status = meter.status()
    word = (
        (status.relay is RelayState.OPEN) << bits.relay_open
        | status.alarm_1 << bits.alarm_1
        | status.alarm_2 << bits.alarm_2
        | status.owing << bits.owing
        | status.protected << bits.protected
    )
    values: dict[str, Decimal] = {
        "total": meter.total,
        "voltage": meter.voltage,
        "current": meter.current,
        "power": meter.power,
        "power_factor": meter.power_factor,
        "remaining": Decimal(meter.remaining_fen).scaleb(-2),
        "purchase_count": Decimal(meter.purchase_count),
        "status": Decimal(word),
        "alarm_1": Decimal(meter.alarm_1_fen).scaleb(-2),
        "alarm_2": Decimal(meter.alarm_2_fen).scaleb(-2),
        "recharge": Decimal(0),
        "recharge_count": Decimal(meter.purchase_count),
        "relay_control": Decimal(0),
        "protect": Decimal(int(meter.protected)),
    }
    for band in (1, 2, 3, 4):
        values[f"band_{band}"] = meter.bands.get(band, Decimal(0))
        values[f"price_{band}"] = meter.prices.get(band, Decimal(0))
    return values


def _words(reg: Register, value: Decimal) -> list[int]:
    """Encode, rounding to the register's resolution and clamping to its range."""
    raw = int((value / reg.scale).to_integral_value(rounding=ROUND_HALF_EVEN))
    bits = 16 * reg.count
    signed = reg.type.value.startswith("i")
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return reg.encode_raw(min(max(raw, low), high))


def read_words(slave: SimSlave, address: int, count: int) -> list[int] | ExcCodes:
    """`count` registers from `address` as the meter would answer them."""
    end = address + count
    model = slave.model
    hits = [(n, r) for n, r in model.registers.items() if r.address < end and r.end > address]
    if not hits:
        return ExcCodes.ILLEGAL_ADDRESS
    values = meter_values(slave.meter, model)
    out = [0] * count
    for name, reg in hits:
        for i, word in enumerate(_words(reg, values[name])):
            if address <= reg.address + i < end:
                out[reg.address + i - address] = word
    return out


def _parse_write(model: ModelMap, address: int, values: Sequence[int]) -> dict[str, list[int]]:
    """Split a write into whole writable registers; raises LookupError on misalignment."""
    by_address = {r.address: (n, r) for n, r in model.registers.items()}
    out: dict[str, list[int]] = {}
    pos = address
    while pos < address + len(values):
        if pos not in by_address:
            raise LookupError(f"no register starts at {pos:#06x}")
        name, reg = by_address[pos]
        if reg.access == "r" or reg.end > address + len(values):
            raise LookupError(f"{name} is read-only or cut short")
        out[name] = list(values[pos - address : reg.end - address])
        pos = reg.end
    return out


def apply_write(slave: SimSlave, address: int, values: Sequence[int]) -> ExcCodes | None:
    """Carry out a write on the SimMeter; the exception code to answer, or None for OK."""
    model, meter = slave.model, slave.meter
    try:
        regs = _parse_write(model, address, values)
    except LookupError:
        return ExcCodes.ILLEGAL_ADDRESS
    dec = {n: model[n].decode(w) for n, w in regs.items()}
    try:
        if "recharge" in regs or "recharge_count" in regs:
            if not {"recharge", "recharge_count"} <= regs.keys():
                return ExcCodes.ILLEGAL_VALUE  # amount and count only ever travel together
            meter.recharge(int(dec["recharge"].scaleb(2)), int(dec["recharge_count"]))
        prices = {int(n[-1]): v for n, v in dec.items() if n.startswith("price_")}
        if prices:
            meter.set_prices(prices)
        if "alarm_1" in dec or "alarm_2" in dec:
            a1 = int(dec["alarm_1"].scaleb(2)) if "alarm_1" in dec else meter.alarm_1_fen
            a2 = int(dec["alarm_2"].scaleb(2)) if "alarm_2" in dec else meter.alarm_2_fen
            meter.set_alarm_amounts(a1, a2)
        for name in ("relay_control", "protect"):
            if name in regs:
                action = _relay_action(model, name, regs[name])
                if action is None:
                    return ExcCodes.ILLEGAL_VALUE
                meter.relay_action(action)
    except SimRechargeRefused:
        return ExcCodes.ILLEGAL_VALUE
    except SimRefused:
        return ExcCodes.DEVICE_FAILURE
    return None


def _relay_action(model: ModelMap, register: str, words: list[int]) -> RelayAction | None:
    for action, write in model.relay_writes.items():
        if write.register == register and tuple(words) == write.values:
            return RelayAction(action)
    return None


class SimModbusContext(ModbusServerContext):
    """pymodbus server context backed by SimSlaves, keyed by slave id."""

    def __init__(self, slaves: dict[int, SimSlave], clock: SimClock | None = None) -> None:
        # No super().__init__(): see the module docstring.
        self.slaves = slaves
        self.clock = clock
        self.old_simulator = True
        self.simdevices = []
        self._devices = {}

    def device_ids(self) -> list[int]:
        return list(self.slaves)

    async def _slave(self, device_id: int) -> SimSlave:
        slave = self.slaves.get(device_id)
        if slave is None or slave.silent or not slave.meter.online:
            raise NoSuchIdException(f"slave {device_id} does not answer")
        if slave.delay:
            await asyncio.sleep(slave.delay)
        if self.clock is not None:
            slave.meter.advance(self.clock.now())  # registers are current when read
        return slave

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        slave = await self._slave(device_id)
        if func_code not in READ_CODES + WRITE_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        return read_words(slave, address, count)

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        slave = await self._slave(device_id)
        if func_code not in WRITE_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        return apply_write(slave, address, [int(v) for v in values])


class SimModbusServer:
    """One listening Modbus port (TCP framing or RTU over TCP) serving a set of slaves."""

    def __init__(
        self,
        slaves: dict[int, SimSlave],
        host: str = "127.0.0.1",
        port: int = 0,
        framer: FramerType = FramerType.SOCKET,
        clock: SimClock | None = None,
    ) -> None:
        self.context = SimModbusContext(slaves, clock)
        self.host = host
        self._requested_port = port
        self.framer = framer
        self._server: ModbusTcpServer | None = None

    @property
    def slaves(self) -> dict[int, SimSlave]:
        return self.context.slaves

    @property
    def port(self) -> int:
        """The port actually bound (useful with port=0)."""
        if self._server is None or self._server.transport is None:
            raise RuntimeError("server not started")
        return self._server.transport.sockets[0].getsockname()[1]

    async def start(self) -> SimModbusServer:
        self._server = ModbusTcpServer(
            self.context,
            framer=self.framer,
            address=(self.host, self._requested_port),
            ignore_missing_devices=True,  # a silent slave must stay silent
        )
        await self._server.serve_forever(background=True)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
