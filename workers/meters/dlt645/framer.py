"""DL/T 645-2007 link layer: build and parse frames. Pure: bytes in, frozen results out.

Frame layout::

    FE FE FE FE   68   A0 A1 A2 A3 A4 A5   68   C    L    DATA (L bytes)   CS   16
    \\_ 0..4 __/  start \\_ address BCD _/ start ctrl len  each byte +0x33  sum  end
     preamble          low byte first                                     mod 256

    C:  D7 direction (1 = reply)  D6 error reply  D5 more frames follow  D4..D0 function
    CS: sum of every byte from the first 68 through the last DATA byte, mod 256

`parse_frame(buf)` never raises on short or dirty input: it returns `NeedMore(discard)`
(skip that many garbage bytes and wait), `Corrupt` (a frame-shaped run with a wrong
checksum) or `Parsed(frame, consumed)`. Leading FE bytes and any other garbage are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.meters.hub import Corrupt, NeedMore, Parsed, ParseResult, split_stream

START = 0x68
END = 0x16
SCRAMBLE = 0x33
PREAMBLE = b"\xfe\xfe\xfe\xfe"
BROADCAST = "999999999999"
WILDCARD = "AAAAAAAAAAAA"

C_REPLY = 0x80
C_ERROR = 0x40
C_MORE = 0x20
FUNCTION_MASK = 0x1F

# Function codes (D4..D0).
BROADCAST_TIME = 0x08
READ = 0x11
READ_MORE = 0x12
READ_ADDRESS = 0x13
WRITE = 0x14
WRITE_ADDRESS = 0x15
RELAY = 0x1C

# Error byte bits of an error reply.
ERR_OTHER = 0x01
ERR_NO_DATA = 0x02
ERR_AUTH = 0x04

_HEADER = 10  # 68 + 6 address + 68 + C + L
_MAX_DATA = 200  # DL/T 645-2007 limits L to 200


@dataclass(frozen=True, slots=True)
class Frame:
    address: str  # 12 characters as printed on the meter, most significant digit first
    control: int
    data: bytes = b""  # already descrambled (-0x33)

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
    def more_follows(self) -> bool:
        return bool(self.control & C_MORE)

    @property
    def error_code(self) -> int | None:
        """The error byte of an error reply, None for a normal frame."""
        if not self.is_error:
            return None
        return self.data[0] if self.data else ERR_OTHER


def encode_address(address: str) -> bytes:
    """'000000000161' -> 61 01 00 00 00 00 (BCD, low byte first)."""
    if len(address) != 12:
        raise ValueError(f"DL/T 645 address must have 12 digits: {address!r}")
    return bytes.fromhex(address)[::-1]


def decode_address(raw: bytes) -> str:
    return raw[::-1].hex().upper()


def scramble(data: bytes) -> bytes:
    return bytes((b + SCRAMBLE) & 0xFF for b in data)


def descramble(data: bytes) -> bytes:
    return bytes((b - SCRAMBLE) & 0xFF for b in data)


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def build_frame(frame: Frame, preamble: int = 4) -> bytes:
    """Serialise `frame` with `preamble` (0–4) leading FE bytes."""
    if not 0 <= preamble <= 4:
        raise ValueError("preamble must be 0..4 FE bytes")
    if len(frame.data) > _MAX_DATA:
        raise ValueError("DL/T 645 data field is at most 200 bytes")
    body = (
        bytes([START])
        + encode_address(frame.address)
        + bytes([START, frame.control, len(frame.data)])
        + scramble(frame.data)
    )
    return PREAMBLE[:preamble] + body + bytes([checksum(body), END])


def parse_frame(buf: bytes) -> ParseResult:
    """Find the first frame in `buf`; see the module docstring for the result types."""
    i = 0
    while True:
        i = buf.find(START, i)
        if i < 0:
            return NeedMore(discard=len(buf))
        if len(buf) - i < _HEADER:
            return NeedMore(discard=i)
        if buf[i + 7] != START:
            i += 1  # a stray 68: not a frame start
            continue
        length = buf[i + 9]
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
            address=decode_address(body[1:7]),
            control=body[8],
            data=descramble(body[_HEADER:]),
        )
        return Parsed(frame=frame, consumed=end)


def parse_all(buf: bytes) -> tuple[list[Parsed[Frame] | Corrupt], bytes]:
    """Every complete result in `buf`, plus the bytes still waiting for more."""
    return split_stream(buf, parse_frame)


def reply_to(request: Frame, data: bytes = b"", more: bool = False) -> Frame:
    """The normal reply frame for `request` (function | 0x80, plus 0x20 if more follows)."""
    control = request.function | C_REPLY | (C_MORE if more else 0)
    return Frame(address=request.address, control=control, data=data)


def error_reply(request: Frame, code: int) -> Frame:
    """The error reply for `request`: function | 0xC0 and the one error byte."""
    return Frame(
        address=request.address, control=request.function | C_REPLY | C_ERROR, data=bytes([code])
    )
