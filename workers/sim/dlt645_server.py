"""A DL/T 645-2007 TCP server for simulated meters: a transparent channel (like a serial
server on an RS-485 bus) with many SimMeters behind it, answering by address.

Supported: 0x11/0x12 read (energy, instant values, status, money, prices, the maximum
demand of this and the previous settlement period; multi-frame when a reply exceeds
`max_data`), 0x14 write (prices, alarm amounts, overdraft limit, the Shuidian recharge DI),
0x08 broadcast time (recorded, no reply), 0x13 read address (answers only when exactly one
meter is on the bus — several would collide), 0x1C relay / 保电. Frames for unknown
addresses are ignored, like other meters on a bus would.

Fault switches (`Faults`), per server or per meter: silence, bad checksum, split frames
(sent in pieces with small delays), slow replies, random FE preamble count.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from workers.meters.base import MeterKind, RelayAction, RelayState
from workers.meters.dlt645 import dataid as di
from workers.meters.dlt645.driver import RELAY_N1
from workers.meters.dlt645.framer import (
    BROADCAST,
    BROADCAST_TIME,
    ERR_AUTH,
    ERR_NO_DATA,
    ERR_OTHER,
    READ,
    READ_ADDRESS,
    READ_MORE,
    RELAY,
    WILDCARD,
    WRITE,
    Frame,
    build_frame,
    encode_address,
    error_reply,
    parse_all,
    reply_to,
)
from workers.meters.dlt645.security import encode_password
from workers.meters.hub import Parsed
from workers.sim.clock import SimClock
from workers.sim.meter import SimMeter, SimRefused

log = logging.getLogger(__name__)
N1_ACTIONS = {n1: action for action, n1 in RELAY_N1.items()}


@dataclass
class Faults:
    silence: bool = False
    bad_checksum: bool = False
    split: bool = False
    slow_seconds: float = 0.0
    random_preamble: bool = False


def _yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def _status_word(m: SimMeter) -> int:
    status = m.status()
    open_ = m.relay is RelayState.OPEN
    return di.StatusWord3(
        relay_open=open_,
        relay_command_trip=open_ and not m.close_allowed_pending,
        pre_trip_alarm=status.alarm_2,
        money_prepaid=m.meter_billing,
        protected=m.protected,
    ).encode()


_ZERO = Decimal("0.00")
READERS: dict[int, Callable[[SimMeter], object]] = {
    di.ENERGY_TOTAL: lambda m: m.total,
    di.FORWARD_TOTAL: lambda m: m.total,
    di.REVERSE_TOTAL: lambda m: _ZERO,
    di.ENERGY_BLOCK: lambda m: (m.total, *(m.bands[b] for b in di.ENERGY_BANDS)),
    di.VOLTAGE_A: lambda m: m.voltage,
    di.VOLTAGE_BLOCK: lambda m: (m.voltage, Decimal(0), Decimal(0)),
    di.CURRENT_A: lambda m: m.current,
    di.POWER_TOTAL: lambda m: m.power,
    di.POWER_FACTOR: lambda m: m.power_factor,
    di.ADDRESS: lambda m: m.address,
    di.STATUS_3: _status_word,
    di.REMAINING_MONEY: lambda m: _yuan(max(m.remaining_fen, 0)),
    di.OVERDRAWN_MONEY: lambda m: _yuan(max(-m.remaining_fen, 0)),
    di.PURCHASE_COUNT: lambda m: m.purchase_count,
    di.ALARM_1: lambda m: _yuan(m.alarm_1_fen),
    di.ALARM_2: lambda m: _yuan(m.alarm_2_fen),
    di.OVERDRAFT_LIMIT: lambda m: _yuan(m.overdraft_fen),
    di.MAX_DEMAND: lambda m: (m.demand_kw, m.demand_at),
    di.MAX_DEMAND_LAST: lambda m: (m.last_demand_kw, m.last_demand_at),
}
for _band, _di in di.ENERGY_BANDS.items():
    READERS[_di] = lambda m, b=_band: m.bands[b]
    READERS[di.FORWARD_BANDS[_band]] = lambda m, b=_band: m.bands[b]
for _band, _di in di.PRICES.items():
    READERS[_di] = lambda m, b=_band: m.prices.get(b, Decimal(0))


class SimTcpServer:
    """Transport and fault injection shared by the simulator's protocol servers.

    Subclasses provide `parse_all`, `handle(frame) -> reply | None`, `encode(reply,
    preamble)` and `meter_of(reply)` (the SimMeter a reply comes from, for its switches).
    """

    def __init__(self, seed: int = 0) -> None:
        self.faults = Faults()
        self.meter_faults: dict[str, Faults] = {}
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def parse_all(self, buf: bytes) -> tuple[list[Any], bytes]:
        raise NotImplementedError

    def handle(self, request: Any) -> Any | None:
        raise NotImplementedError

    def encode(self, reply: Any, preamble: int) -> bytes:
        raise NotImplementedError

    def meter_of(self, reply: Any) -> SimMeter | None:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self.port

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await self._server.wait_closed()

    # -- wire -----------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        buf = b""
        try:
            while data := await reader.read(4096):
                results, buf = self.parse_all(buf + data)
                for item in results:
                    if isinstance(item, Parsed):  # a garbled request is ignored, as on a bus
                        await self._answer(item.frame, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, request: Any, writer: asyncio.StreamWriter) -> None:
        reply = self.handle(request)
        if reply is None:
            return
        meter = self.meter_of(reply)
        faults = self.meter_faults.get(meter.address, self.faults) if meter else self.faults
        if faults.silence or self.faults.silence or (meter is not None and not meter.online):
            return
        preamble = self._rng.randint(0, 4) if faults.random_preamble else 4
        wire = bytearray(self.encode(reply, preamble))
        if faults.bad_checksum:
            wire[-2] ^= 0x5A
        if faults.slow_seconds:
            await asyncio.sleep(faults.slow_seconds)
        if faults.split:
            await self._write_in_pieces(bytes(wire), writer)
        else:
            writer.write(wire)
            await writer.drain()

    async def _write_in_pieces(self, wire: bytes, writer: asyncio.StreamWriter) -> None:
        i = 0
        while i < len(wire):
            n = self._rng.randint(1, 5)
            writer.write(wire[i : i + n])
            await writer.drain()
            await asyncio.sleep(0.005)
            i += n


class Dlt645Server(SimTcpServer):
    """Serve `meters` (shared with the park; water meters are skipped) over TCP."""

    def __init__(
        self,
        meters: dict[str, SimMeter],
        clock: SimClock | None = None,
        *,
        password: str = "02000000",
        max_data: int = 200,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.meters, self.clock = meters, clock
        self.password = encode_password(password)
        self.max_data = max_data
        self.last_broadcast_time: datetime | None = None
        self._pending: dict[tuple[str, int], list[bytes]] = {}

    def parse_all(self, buf: bytes) -> tuple[list[Any], bytes]:
        return parse_all(buf)  # type: ignore[return-value]

    def encode(self, reply: Frame, preamble: int) -> bytes:
        return build_frame(reply, preamble)

    def meter_of(self, reply: Frame) -> SimMeter | None:
        return self.meters.get(reply.address)

    # -- protocol -------------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def _meter(self, address: str) -> SimMeter | None:
        m = self.meters.get(address)
        return m if m is not None and m.kind is MeterKind.ELECTRICITY else None

    def handle(self, req: Frame) -> Frame | None:
        """The reply to one request frame, or None when nobody on the bus answers."""
        if req.is_reply:
            return None
        if req.address == BROADCAST:
            if req.function == BROADCAST_TIME:
                self.last_broadcast_time = di.decode_time6(req.data)
            return None
        if req.address == WILDCARD and req.function == READ_ADDRESS:
            electric = [a for a in self.meters if self._meter(a) is not None]
            if len(electric) != 1:
                return None  # several meters answering at once collide on the bus
            return Frame(electric[0], READ_ADDRESS | 0x80, encode_address(electric[0]))
        meter = self._meter(req.address)
        if meter is None:
            return None
        meter.advance(self._now())
        try:
            if req.function == READ:
                return self._read(meter, req)
            if req.function == READ_MORE:
                return self._read_more(req)
            if req.function == WRITE:
                return self._write(meter, req)
            if req.function == RELAY:
                return self._relay(meter, req)
        except SimRefused as exc:
            return error_reply(req, exc.code)
        except (di.BadValue, IndexError, ValueError):
            return error_reply(req, ERR_OTHER)
        return error_reply(req, ERR_OTHER)

    def _read(self, meter: SimMeter, req: Frame) -> Frame:
        data_id = di.decode_di(req.data)
        if data_id == di.DATETIME:
            value = di.encode_value(data_id, self._now())
        elif data_id in READERS:
            value = di.encode_value(data_id, READERS[data_id](meter))
        else:
            return error_reply(req, ERR_NO_DATA)
        first = self.max_data - 4
        if len(value) <= first:
            return reply_to(req, req.data[:4] + value)
        rest, step = value[first:], self.max_data - 5
        self._pending[(meter.address, data_id)] = [
            rest[k : k + step] for k in range(0, len(rest), step)
        ]
        return reply_to(req, req.data[:4] + value[:first], more=True)

    def _read_more(self, req: Frame) -> Frame:
        data_id, seq = di.decode_di(req.data), req.data[4]
        chunks = self._pending.get((req.address, data_id))
        if not chunks or not 1 <= seq <= len(chunks):
            return error_reply(req, ERR_NO_DATA)
        more = seq < len(chunks)
        if not more:
            del self._pending[(req.address, data_id)]
        return reply_to(req, req.data[:4] + chunks[seq - 1] + bytes([seq]), more=more)

    def _write(self, meter: SimMeter, req: Frame) -> Frame:
        data_id, password, value = di.decode_di(req.data), req.data[4:8], req.data[12:]
        if password != self.password:
            return error_reply(req, ERR_AUTH)
        if data_id == di.SHUIDIAN_RECHARGE:
            meter.recharge(*di.decode_recharge(value))
        elif data_id in di.PRICES.values():
            band = next(b for b, d in di.PRICES.items() if d == data_id)
            meter.set_prices({band: di.decode_number(value[:4], 4)})
        elif data_id in (di.ALARM_1, di.ALARM_2):
            fen = int(di.decode_number(value[:4], 2).scaleb(2))
            a1 = fen if data_id == di.ALARM_1 else meter.alarm_1_fen
            a2 = fen if data_id == di.ALARM_2 else meter.alarm_2_fen
            # Two separate writes: check only the final pair, not the transient one.
            meter.alarm_1_fen, meter.alarm_2_fen = a1, a2
        elif data_id == di.OVERDRAFT_LIMIT:
            meter.overdraft_fen = int(di.decode_number(value[:4], 2).scaleb(2))
        else:
            return error_reply(req, ERR_NO_DATA)
        return reply_to(req)

    def _relay(self, meter: SimMeter, req: Frame) -> Frame:
        if req.data[:4] != self.password:
            return error_reply(req, ERR_AUTH)
        action: RelayAction | None = N1_ACTIONS.get(req.data[8])
        if action is None:
            return error_reply(req, ERR_OTHER)
        meter.relay_action(action)
        return reply_to(req)
