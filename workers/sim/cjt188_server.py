"""A CJ/T 188-2004 TCP server for simulated water meters: a transparent channel with many
valve meters behind it, answering by address.

Addresses: a SimMeter's 12-digit address with two leading zeros (A5 A6 = 00), so meter
"000000000171" answers to 14-digit "00000000000171". Supported: C=01 DI 901F (cumulative
flow, settlement-day flow, meter clock, status with the valve in b0–1) and C=04 DI A017
(valve: 55 open, 99 close; the reply carries the new status). Requests for unknown
addresses are ignored; unknown functions or DIs get an abnormal reply (C | 0xC0).
Fault switches as for DL/T 645 (see `Faults`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workers.meters.base import MeterKind, RelayAction, RelayState
from workers.meters.cjt188.framer import (
    C_ERROR,
    C_REPLY,
    DI_READ_DATA,
    DI_VALVE,
    READ,
    VALVE_CLOSE,
    VALVE_OPEN,
    WRITE,
    Frame,
    ValveState,
    WaterReading,
    build_frame,
    parse_all,
)
from workers.sim.clock import SimClock
from workers.sim.dlt645_server import SimTcpServer
from workers.sim.meter import SimMeter, SimRefused
from workers.sim.profiles import SHANGHAI

ST_ERROR = 0x01  # ST1 vendor byte of an abnormal reply: command not carried out


def _valve(m: SimMeter) -> int:
    return ValveState.CLOSED if m.relay is RelayState.OPEN else ValveState.OPEN


class Cjt188Server(SimTcpServer):
    def __init__(
        self, meters: dict[str, SimMeter], clock: SimClock | None = None, *, seed: int = 0
    ) -> None:
        super().__init__(seed)
        self.meters, self.clock = meters, clock

    def parse_all(self, buf: bytes) -> tuple[list[Any], bytes]:
        return parse_all(buf)  # type: ignore[return-value]

    def encode(self, reply: Frame, preamble: int) -> bytes:
        return build_frame(reply, min(preamble, 3))

    def meter_of(self, reply: Frame) -> SimMeter | None:
        return self._meter(reply.address)

    def _meter(self, address: str) -> SimMeter | None:
        m = self.meters.get(address[2:]) if address.startswith("00") else None
        return m if m is not None and m.kind is MeterKind.WATER else None

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def handle(self, req: Frame) -> Frame | None:
        if req.is_reply:
            return None
        meter = self._meter(req.address)
        if meter is None:
            return None
        now = self._now()
        meter.advance(now)
        head = req.data[:3]
        if req.function == READ and req.di == DI_READ_DATA:
            reading = WaterReading(
                total_m3=meter.total,
                settlement_m3=meter.total,  # settlement day is not simulated
                clock_digits=f"{now.astimezone(SHANGHAI):%Y%m%d%H%M%S}",
                valve=_valve(meter),
            )
            return self._reply(req, head + reading.encode())
        if req.function == WRITE and req.di == DI_VALVE and len(req.data) >= 4:
            command = req.data[3]
            action = {VALVE_OPEN: RelayAction.CLOSE, VALVE_CLOSE: RelayAction.TRIP}.get(command)
            if action is None:
                return self._error(req, meter)
            try:
                meter.relay_action(action)
            except SimRefused:
                return self._error(req, meter)
            return self._reply(req, head + bytes([_valve(meter), 0x00]))
        return self._error(req, meter)

    @staticmethod
    def _reply(req: Frame, data: bytes) -> Frame:
        return Frame(req.address, req.function | C_REPLY, data, req.meter_type)

    @staticmethod
    def _error(req: Frame, meter: SimMeter) -> Frame:
        data = req.data[:3] + bytes([_valve(meter), ST_ERROR])
        return Frame(req.address, req.function | C_REPLY | C_ERROR, data, req.meter_type)
