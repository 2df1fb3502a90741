"""Modbus driver: one `ModbusBus` per TCP connection, one `ModbusDriver` per slave on it.

Design
------
A serial server or an ADF400L box puts many slave ids behind one TCP connection (Modbus TCP
framing, or raw RTU frames over TCP). Like Home Assistant's modbus hub, the bus owns one
pymodbus `AsyncModbusTcpClient`, an `asyncio.Lock` so one request is on the wire at a time,
and a gap between frames for RS-485 converters that need the line quiet (3.5 characters).

Every register access goes through the model's `ModelMap` (maps/…): reads are planned
into as few contiguous blocks as possible, so a billing snapshot of a DDSY1352 is two
requests. Errors are typed, never a silent None:

- no answer within `timeout` (silent slave, dead link) → `MeterUnreachable`;
- a Modbus exception response → `MeterRejected(code)` with the exception code;
- a refused recharge write → `RechargeRefused(code)` (the meter wants count = last + 1).

The pymodbus client would close the shared connection after `retries + 3` unanswered
requests; one silent slave must not cut off the rest of the bus, so that limit is lifted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from workers.meters.base import (
    Instant,
    MeterRejected,
    MeterSnapshot,
    MeterStatus,
    MeterUnreachable,
    MoneyRegister,
    Reading,
    RechargeRefused,
    RelayAction,
    RelayState,
)
from workers.meters.modbus.registers import ModelMap, decode_block, plan_blocks

log = logging.getLogger(__name__)

INSTANT = ("voltage", "current", "power", "power_factor")
MONEY = ("remaining", "purchase_count")
ILLEGAL_VALUE = 0x03  # the exception a meter answers to a recharge with the wrong count


class ModbusBus:
    """One shared connection to a Modbus TCP endpoint; many slave ids talk through it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        rtu: bool = False,
        timeout: float = 1.0,
        gap: float = 0.0,
    ) -> None:
        self.host, self.port, self.gap, self.timeout = host, port, gap, timeout
        self.client = AsyncModbusTcpClient(
            host,
            port=port,
            framer=FramerType.RTU if rtu else FramerType.SOCKET,
            timeout=timeout,
            retries=0,
            reconnect_delay=0,  # we reconnect on demand, under the lock
        )
        self.client.set_max_no_responses(1 << 30)
        self.lock = asyncio.Lock()
        self._last_frame = 0.0

    async def _ensure_connected(self) -> None:
        if self.client.connected:
            return
        if not await self.client.connect():
            raise MeterUnreachable(f"cannot connect to {self.host}:{self.port}")

    async def _call(self, slave: int, what: str, request: Callable[[], object]) -> object:
        async with self.lock:
            loop = asyncio.get_running_loop()
            wait = self._last_frame + self.gap - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self._ensure_connected()
                response = await asyncio.wait_for(request(), self.timeout * 2)
            except (ModbusException, TimeoutError, OSError) as exc:
                raise MeterUnreachable(f"slave {slave} {what}: {exc}") from exc
            finally:
                self._last_frame = loop.time()
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise MeterRejected(f"slave {slave} {what}: exception {code}", code=code)
        return response

    async def read(self, slave: int, address: int, count: int) -> list[int]:
        """Holding registers `address .. address+count-1` of `slave` (FC03)."""
        response = await self._call(
            slave,
            f"read {address:#06x}+{count}",
            lambda: self.client.read_holding_registers(address, count=count, device_id=slave),
        )
        return list(response.registers)

    async def write(self, slave: int, address: int, values: list[int]) -> None:
        """One FC16 write of `values` from `address`."""
        await self._call(
            slave,
            f"write {address:#06x}",
            lambda: self.client.write_registers(address, values, device_id=slave),
        )

    def close(self) -> None:
        self.client.close()


class ModbusDriver:
    """MeterDriver for one slave id on a `ModbusBus`, speaking the model's register map."""

    def __init__(
        self,
        bus: ModbusBus,
        slave: int,
        model: ModelMap,
        address: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bus, self.slave, self.model, self.address, self._now = bus, slave, model, address, now

    # -- reads ------------------------------------------------------------------------------
    async def _read(self, names: list[str]) -> dict[str, Decimal]:
        values: dict[str, Decimal] = {}
        for block in plan_blocks(self.model, names):
            words = await self.bus.read(self.slave, block.address, block.count)
            values.update(decode_block(self.model, block, words))
        return values

    def _require(self, *names: str) -> None:
        if not self.model.has(*names):
            raise MeterRejected(f"{self.model.model} has no {', '.join(names)} register")

    def _energy_names(self) -> list[str]:
        return ["total", *(f"band_{b}" for b in self.model.bands)]

    def _reading(self, v: dict[str, Decimal]) -> Reading:
        return Reading(self._now(), v["total"], {b: v[f"band_{b}"] for b in self.model.bands})

    def _instant(self, v: dict[str, Decimal]) -> Instant:
        return Instant(**{n: v.get(n) for n in INSTANT})

    def _status(self, v: dict[str, Decimal]) -> MeterStatus:
        word, bits = int(v["status"]), self.model.status_bits
        return MeterStatus(
            relay=RelayState.OPEN if word >> bits.relay_open & 1 else RelayState.CLOSED,
            protected=bool(word >> bits.protected & 1),
            alarm_1=bool(word >> bits.alarm_1 & 1),
            alarm_2=bool(word >> bits.alarm_2 & 1),
            owing=bool(word >> bits.owing & 1),
        )

    @staticmethod
    def _money(v: dict[str, Decimal]) -> MoneyRegister:
        return MoneyRegister(
            remaining_fen=int(v["remaining"].scaleb(2)), purchase_count=int(v["purchase_count"])
        )

    async def read_energy(self) -> Reading:
        return self._reading(await self._read(self._energy_names()))

    async def read_instant(self) -> Instant:
        return self._instant(await self._read([n for n in INSTANT if self.model.has(n)]))

    async def read_money(self) -> MoneyRegister:
        self._require(*MONEY)
        return self._money(await self._read(list(MONEY)))

    async def read_status(self) -> MeterStatus:
        return self._status(await self._read(["status"]))

    async def read_snapshot(self) -> MeterSnapshot:
        """Everything a billing round needs, in as few requests as the map allows."""
        has_money = self.model.has(*MONEY)
        names = self._energy_names() + [n for n in INSTANT if self.model.has(n)] + ["status"]
        v = await self._read(names + (list(MONEY) if has_money else []))
        return MeterSnapshot(
            address=self.address,
            reading=self._reading(v),
            status=self._status(v),
            instant=self._instant(v),
            money=self._money(v) if has_money else None,
        )

    async def read_billing(self) -> MeterSnapshot:
        """What a billing round needs (energy, status, money where kept), no instant values.

        Skipping U/I/P/PF keeps a DDSY1352 at two short reads however the map is laid out.
        """
        has_money = self.model.has(*MONEY)
        names = self._energy_names() + ["status"] + (list(MONEY) if has_money else [])
        v = await self._read(names)
        return MeterSnapshot(
            address=self.address,
            reading=self._reading(v),
            status=self._status(v),
            money=self._money(v) if has_money else None,
        )

    # -- writes -----------------------------------------------------------------------------
    async def relay(self, action: RelayAction) -> MeterStatus:
        write = self.model.relay_writes.get(action.value)
        if write is None:
            raise MeterRejected(f"{self.model.model} cannot {action}")
        await self.bus.write(self.slave, self.model[write.register].address, list(write.values))
        return await self.read_status()

    async def _write_named(self, values: dict[str, Decimal | int]) -> None:
        """Write named registers, one FC16 per run of adjacent registers."""
        regs = sorted(((self.model[n], v) for n, v in values.items()), key=lambda rv: rv[0].address)
        runs: list[tuple[int, list[int]]] = []
        for reg, value in regs:
            words = reg.encode(value)
            if runs and runs[-1][0] + len(runs[-1][1]) == reg.address:
                runs[-1][1].extend(words)
            else:
                runs.append((reg.address, words))
        for address, words in runs:
            await self.bus.write(self.slave, address, words)

    async def write_prices(self, prices_yuan_per_kwh: dict[int, Decimal]) -> None:
        self._require(*(f"price_{b}" for b in prices_yuan_per_kwh))
        await self._write_named({f"price_{b}": p for b, p in prices_yuan_per_kwh.items()})

    async def write_alarm_amounts(self, alarm_1_fen: int, alarm_2_fen: int) -> None:
        self._require("alarm_1", "alarm_2")
        await self._write_named(
            {
                "alarm_1": Decimal(alarm_1_fen).scaleb(-2),
                "alarm_2": Decimal(alarm_2_fen).scaleb(-2),
            }
        )

    async def write_recharge(self, amount_fen: int, purchase_count: int) -> MoneyRegister:
        """Amount and count in one FC16 write; the meter refuses unless count = last + 1."""
        self._require("recharge", "recharge_count", *MONEY)
        amount, count = self.model["recharge"], self.model["recharge_count"]
        if amount.end != count.address:
            raise MeterRejected(f"{self.model.model}: recharge amount and count not adjacent")
        words = amount.encode_raw(amount_fen) + count.encode_raw(purchase_count)
        try:
            await self.bus.write(self.slave, amount.address, words)
        except MeterRejected as exc:
            if exc.code != ILLEGAL_VALUE:
                raise
            raise RechargeRefused(
                f"meter {self.address} refused recharge #{purchase_count}", code=exc.code
            ) from exc
        return await self.read_money()
