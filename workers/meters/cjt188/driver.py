"""Cjt188Driver: one CJ/T 188 valve water meter behind a Hub, implementing MeterDriver.

Relay actions map to the valve: TRIP closes it, CLOSE / CLOSE_ALLOWED open it. Water meters
here are billed by the platform: money, prices, alarm amounts and 保电 are not supported
and raise MeterRejected (code None) rather than pretending.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from workers.meters.base import (
    Instant,
    MeterRejected,
    MeterSnapshot,
    MeterStatus,
    MeterUnreachable,
    MoneyRegister,
    Reading,
    RelayAction,
    RelayState,
)
from workers.meters.cjt188.framer import (
    DI_READ_DATA,
    DI_VALVE,
    READ,
    VALVE_CLOSE,
    VALVE_OPEN,
    WATER_COLD,
    WRITE,
    Frame,
    ValveState,
    WaterReading,
    build_frame,
    di_bytes,
    parse_frame,
)
from workers.meters.hub import Hub

VALVE_TO_RELAY = {
    ValveState.OPEN: RelayState.CLOSED,
    ValveState.CLOSED: RelayState.OPEN,
}


def cjt188_hub(host: str, port: int, **kwargs: float) -> Hub:
    return Hub(host, port, parse_frame, **kwargs)  # type: ignore[arg-type]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Cjt188Driver:
    def __init__(
        self,
        hub: Hub,
        address: str,
        meter_type: int = WATER_COLD,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.key = address  # as the platform knows the meter
        if len(address) == 12:
            address = "00" + address  # our 12-digit meter numbers, high bytes zero
        if len(address) != 14 or not address.isdigit():
            raise ValueError(f"CJ/T 188 address must be 14 digits: {address!r}")
        self.hub, self.address, self.meter_type, self.clock = hub, address, meter_type, clock
        self._ser = itertools.count(1)

    async def request(self, control: int, di: int, payload: bytes = b"") -> Frame:
        ser = next(self._ser) & 0xFF
        request = Frame(self.address, control, di_bytes(di, ser) + payload, self.meter_type)

        def match(f: Frame) -> bool:
            return (
                f.address == self.address
                and f.is_reply
                and f.function == control
                and (f.is_error or (f.di == di and f.ser == ser))
            )

        reply: Frame = await self.hub.exchange(build_frame(request), match, key=self.address)
        if reply.is_error:
            code = reply.data[-1] if len(reply.data) >= 5 else None  # ST1
            raise MeterRejected(f"水表 {self.address} 拒绝命令 {control:02X}", code)
        return reply

    async def read_reading(self) -> WaterReading:
        reply = await self.request(READ, DI_READ_DATA)
        try:
            return WaterReading.decode(reply.data[3:])
        except ValueError as exc:
            raise MeterUnreachable(f"水表 {self.address}: bad 901F payload: {exc}") from exc

    async def read_energy(self) -> Reading:
        return Reading(self.clock(), (await self.read_reading()).total_m3)

    async def read_instant(self) -> Instant:
        return Instant()  # a valve water meter reports no instantaneous values

    async def read_money(self) -> MoneyRegister:
        raise MeterRejected("水表不支持金额寄存器")

    async def read_status(self) -> MeterStatus:
        return self._status(await self.read_reading())

    @staticmethod
    def _status(reading: WaterReading) -> MeterStatus:
        return MeterStatus(relay=VALVE_TO_RELAY.get(reading.valve, RelayState.UNKNOWN))

    async def read_snapshot(self) -> MeterSnapshot:
        reading = await self.read_reading()
        return MeterSnapshot(
            address=self.key,
            reading=Reading(self.clock(), reading.total_m3),
            status=self._status(reading),
        )

    async def relay(self, action: RelayAction) -> MeterStatus:
        if action is RelayAction.TRIP:
            command = VALVE_CLOSE
        elif action in (RelayAction.CLOSE, RelayAction.CLOSE_ALLOWED):
            command = VALVE_OPEN
        else:
            raise MeterRejected(f"水表不支持 {action}")
        await self.request(WRITE, DI_VALVE, bytes([command]))
        return await self.read_status()

    async def write_prices(self, prices_yuan_per_kwh: dict[int, Decimal]) -> None:
        raise MeterRejected("水表不支持写电价")

    async def write_alarm_amounts(self, alarm_1_fen: int, alarm_2_fen: int) -> None:
        raise MeterRejected("水表不支持报警金额")

    async def write_recharge(self, amount_fen: int, purchase_count: int) -> MoneyRegister:
        raise MeterRejected("水表不支持表端充值")
