"""CJ/T 188-2004 link layer (water, heat and gas meters): build and parse frames. Pure.

Frame layout::

    FE…FE   68   T    A0 A1 A2 A3 A4 A5 A6   C    L    DI0 DI1 SER  DATA…   CS   16
    preamble    type  address BCD, low first ctrl len  \\_______ L bytes ______/ sum end
                                                                                 mod 256
    T:  10 cold water, 11 hot water, 20–29 heat, 30 gas, 40 electricity, AA wildcard
    C:  D7 direction (1 = reply), D6 abnormal reply, D5..D0 function (01 read, 04 write)
    CS: sum of every byte from 68 through the last data byte, mod 256; no scrambling

The DI is sent as written in the standard's tables (901F -> 90 1F), as most meters and
tools in the field do. `parse_frame` follows the DL/T 645 framer's contract: NeedMore on
short input, Corrupt on a wrong checksum, garbage skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from workers.meters.hub import Corrupt, NeedMore, Parsed, ParseResult, split_stream

START = 0x68
END = 0x16
PREAMBLE = b"\xfe\xfe\xfe"
WATER_COLD = 0x10
C_REPLY = 0x80
C_ERROR = 0x40
FUNCTION_MASK = 0x3F
READ = 0x01
WRITE = 0x04
READ_ADDRESS = 0x03

DI_READ_DATA = 0x901F
DI_VALVE = 0xA017
VALVE_OPEN = 0x55
VALVE_CLOSE = 0x99
UNIT_M3 = 0x2C

_HEADER = 11  # 68 T A0..A6 C L
_MAX_DATA = 100
_TYPES = {*range(0x10, 0x1A), *range(0x20, 0x2A), *range(0x30, 0x4A), 0xAA}


@dataclass(frozen=True, slots=True)
class Frame:
    address: str  # 14 digits, most significant first
    control: int
    data: bytes = b""  # DI0 DI1 SER + payload
    meter_type: int = WATER_COLD

    @property
    def function(self) -> int:
        return self.control & FUNCTION_MASK

    @property
    def is_reply(self) -> bool:
        return bool(self.control & C_REPLY)

    @property
    def is_error(self) -> bool:
        return bool(self.control & C_ERROR)

    @property
    def di(self) -> int:
        return int.from_bytes(self.data[:2], "big") if len(self.data) >= 2 else -1

    @property
    def ser(self) -> int:
        return self.data[2] if len(self.data) >= 3 else -1


def encode_address(address: str) -> bytes:
    if len(address) != 14:
        raise ValueError(f"CJ/T 188 address must have 14 digits: {address!r}")
    return bytes.fromhex(address)[::-1]


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def build_frame(frame: Frame, preamble: int = 3) -> bytes:
    if len(frame.data) > _MAX_DATA:
        raise ValueError("CJ/T 188 data field too long")
    body = (
        bytes([START, frame.meter_type])
        + encode_address(frame.address)
        + bytes([frame.control, len(frame.data)])
        + frame.data
    )
    return b"\xfe" * preamble + body + bytes([checksum(body), END])


def parse_frame(buf: bytes) -> ParseResult:
    i = 0
    while True:
        i = buf.find(START, i)
        if i < 0:
            return NeedMore(discard=len(buf))
        if len(buf) - i < 2:
            return NeedMore(discard=i)
        if buf[i + 1] not in _TYPES:
            i += 1
            continue
        if len(buf) - i < _HEADER:
            return NeedMore(discard=i)
        length = buf[i + 10]
        if length > _MAX_DATA:
            i += 1
            continue
        end = i + _HEADER + length + 2
        if len(buf) < end:
            return NeedMore(discard=i)
        if buf[end - 1] != END:
            i += 1
            continue
        body = buf[i : end - 2]
        if checksum(body) != buf[end - 2]:
            return Corrupt(consumed=end, raw=bytes(buf[i:end]))
        frame = Frame(
            address=body[2:9][::-1].hex().upper(),
            control=body[9],
            data=bytes(body[_HEADER:]),
            meter_type=body[1],
        )
        return Parsed(frame=frame, consumed=end)


def parse_all(buf: bytes) -> tuple[list[Parsed[Frame] | Corrupt], bytes]:
    return split_stream(buf, parse_frame)


# -- payloads ---------------------------------------------------------------------------
def di_bytes(di: int, ser: int) -> bytes:
    return di.to_bytes(2, "big") + bytes([ser & 0xFF])


def bcd_le(value: int, length: int) -> bytes:
    return bytes.fromhex(f"{value:0{length * 2}d}")[::-1]


def from_bcd_le(raw: bytes) -> int:
    text = raw[::-1].hex()
    if not text.isdigit():
        raise ValueError(f"not BCD: {raw.hex(' ')}")
    return int(text)


class ValveState:
    """ST0 bits 0–1."""

    OPEN = 0b00
    CLOSED = 0b01
    FAULT = 0b11


@dataclass(frozen=True, slots=True)
class WaterReading:
    """Payload of a 901F reply (after DI0 DI1 SER)."""

    total_m3: Decimal
    settlement_m3: Decimal
    clock_digits: str  # YYYYMMDDhhmmss as the meter keeps it
    valve: int  # ValveState
    battery_low: bool = False

    def encode(self) -> bytes:
        st0 = self.valve | (0b100 if self.battery_low else 0)
        return (
            bcd_le(int(self.total_m3.scaleb(2)), 4)
            + bytes([UNIT_M3])
            + bcd_le(int(self.settlement_m3.scaleb(2)), 4)
            + bytes([UNIT_M3])
            + bytes.fromhex(self.clock_digits)[::-1]
            + bytes([st0, 0x00])
        )

    @classmethod
    def decode(cls, payload: bytes) -> WaterReading:
        if len(payload) < 19:
            raise ValueError(f"901F payload has 19 bytes, got {len(payload)}")
        return cls(
            total_m3=Decimal(from_bcd_le(payload[0:4])).scaleb(-2),
            settlement_m3=Decimal(from_bcd_le(payload[5:9])).scaleb(-2),
            clock_digits=payload[10:17][::-1].hex(),
            valve=payload[17] & 0b11,
            battery_low=bool(payload[17] & 0b100),
        )
