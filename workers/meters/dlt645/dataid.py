"""DL/T 645-2007 data identifiers (DI) and their value formats. Pure.

Values are packed BCD, low byte first on the wire (the framer adds the +0x33). A format
such as XXXXXX.XX is `Fmt(length=4, decimals=2)`; signed quantities (current, power, power
factor) carry their sign in the top bit of the most significant byte.

`SHUIDIAN_RECHARGE` is ours, not State Grid's: see docs/dlt645.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

ENERGY_TOTAL = 0x00000000
ENERGY_BANDS = {1: 0x00000100, 2: 0x00000200, 3: 0x00000300, 4: 0x00000400}
ENERGY_BLOCK = 0x0000FF00
FORWARD_TOTAL = 0x00010000
FORWARD_BANDS = {1: 0x00010100, 2: 0x00010200, 3: 0x00010300, 4: 0x00010400}
REVERSE_TOTAL = 0x00020000
VOLTAGE_A = 0x02010100
VOLTAGE_BLOCK = 0x0201FF00
CURRENT_A = 0x02020100
POWER_TOTAL = 0x02030000
POWER_FACTOR = 0x02060000
DATETIME = 0x0400010C
ADDRESS = 0x04000401
STATUS_3 = 0x04000503
PRICES = {1: 0x04050101, 2: 0x04050102, 3: 0x04050103, 4: 0x04050104}
REMAINING_KWH = 0x00900100
REMAINING_MONEY = 0x00900200
OVERDRAWN_MONEY = 0x00900201
PURCHASE_COUNT = 0x03330201
ALARM_1 = 0x04001001
ALARM_2 = 0x04001002
OVERDRAFT_LIMIT = 0x04001003
# Maximum demand (最大需量及发生时间): forward active total, XX.XXXX kW then the minute it
# happened (YYMMDDhhmm). DI0 is the settlement: 00 the current period (since the meter last
# settled, normally 00:00 on the 1st), 01 the period before it (上1结算日), … 0C.
MAX_DEMAND = 0x01010000
MAX_DEMAND_LAST = 0x01010001
# Ours: recharge as one plaintext write of amount XXXXXX.XX yuan + purchase count NNNN.
SHUIDIAN_RECHARGE = 0x04A00101


class Kind(StrEnum):
    NUMBER = "number"  # Decimal (or a tuple of them for block DIs)
    WORD = "word"  # int bit field
    ADDRESS = "address"  # 12-digit str
    DATETIME = "datetime"  # YYMMDDWWhhmmss
    DEMAND = "demand"  # (kW XX.XXXX, YYMMDDhhmm or None): a maximum demand and when


@dataclass(frozen=True, slots=True)
class Fmt:
    length: int  # bytes per item
    decimals: int = 0
    signed: bool = False
    items: int = 1
    kind: Kind = Kind.NUMBER


KWH = Fmt(4, 2)
YUAN = Fmt(4, 2)
PRICE = Fmt(4, 4)
DEMAND = Fmt(8, kind=Kind.DEMAND)

DI_FORMATS: dict[int, Fmt] = {
    ENERGY_TOTAL: KWH,
    **{di: KWH for di in ENERGY_BANDS.values()},
    ENERGY_BLOCK: Fmt(4, 2, items=5),
    FORWARD_TOTAL: KWH,
    **{di: KWH for di in FORWARD_BANDS.values()},
    REVERSE_TOTAL: KWH,
    VOLTAGE_A: Fmt(2, 1),
    VOLTAGE_BLOCK: Fmt(2, 1, items=3),
    CURRENT_A: Fmt(3, 3, signed=True),
    POWER_TOTAL: Fmt(3, 4, signed=True),
    POWER_FACTOR: Fmt(2, 3, signed=True),
    DATETIME: Fmt(7, kind=Kind.DATETIME),
    ADDRESS: Fmt(6, kind=Kind.ADDRESS),
    STATUS_3: Fmt(2, kind=Kind.WORD),
    **{di: PRICE for di in PRICES.values()},
    REMAINING_KWH: KWH,
    REMAINING_MONEY: YUAN,
    OVERDRAWN_MONEY: YUAN,
    PURCHASE_COUNT: Fmt(2),
    ALARM_1: YUAN,
    ALARM_2: YUAN,
    OVERDRAFT_LIMIT: YUAN,
    MAX_DEMAND: DEMAND,
    MAX_DEMAND_LAST: DEMAND,
}


class BadValue(ValueError):
    """Bytes that are not valid BCD for the format, or a value that does not fit."""


def encode_di(di: int) -> bytes:
    return di.to_bytes(4, "little")


def decode_di(raw: bytes) -> int:
    if len(raw) < 4:
        raise BadValue("a DI has 4 bytes")
    return int.from_bytes(raw[:4], "little")


def encode_number(
    value: Decimal | int, length: int, decimals: int = 0, signed: bool = False
) -> bytes:
    """Decimal -> packed BCD, low byte first. Raises BadValue if it does not fit exactly."""
    value = Decimal(value)
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise BadValue(f"{value} has more than {decimals} decimals")
    negative = scaled < 0
    if negative and not signed:
        raise BadValue(f"{value} is negative in an unsigned field")
    digits = f"{int(abs(scaled)):0{length * 2}d}"
    if len(digits) > length * 2 or (signed and int(digits[0]) > 7):
        raise BadValue(f"{value} does not fit in {length} bytes")
    raw = bytearray(bytes.fromhex(digits)[::-1])
    if negative:
        raw[-1] |= 0x80
    return bytes(raw)


def decode_number(raw: bytes, decimals: int = 0, signed: bool = False) -> Decimal:
    be = bytearray(raw[::-1])
    negative = signed and bool(be[0] & 0x80)
    if signed:
        be[0] &= 0x7F
    text = be.hex()
    if not text.isdigit():
        raise BadValue(f"not BCD: {bytes(raw).hex(' ')}")
    value = Decimal(int(text)).scaleb(-decimals)
    return -value if negative else value


def encode_time6(dt: datetime) -> bytes:
    """ssmmhhDDMMYY, as broadcast time and relay valid-until use it (meter local time)."""
    t = dt.astimezone(SHANGHAI)
    return bytes.fromhex(f"{t:%y%m%d%H%M%S}")[::-1]


def _from_digits(text: str) -> datetime:
    """YYMMDDhhmmss -> datetime in 2000–2099 (meters count years from 2000)."""
    try:
        parts = [int(text[k : k + 2]) for k in range(0, 12, 2)]
        return datetime(2000 + parts[0], *parts[1:], tzinfo=SHANGHAI)
    except ValueError as exc:
        raise BadValue(f"not a date-time: {text}") from exc


def decode_time6(raw: bytes) -> datetime:
    return _from_digits(raw[:6][::-1].hex())


def _encode_datetime7(dt: datetime) -> bytes:
    t = dt.astimezone(SHANGHAI)
    week = (t.weekday() + 1) % 7  # DL/T 645: 0 = Sunday
    return bytes.fromhex(f"{t:%y%m%d}{week:02d}{t:%H%M%S}")[::-1]


def _decode_datetime7(raw: bytes) -> datetime:
    text = raw[::-1].hex()
    return _from_digits(text[:6] + text[8:])


def _encode_demand(value: object) -> bytes:
    kw, at = value  # type: ignore[misc]
    when = bytes(5) if at is None else bytes.fromhex(f"{at.astimezone(SHANGHAI):%y%m%d%H%M}")
    return encode_number(kw, 3, 4) + when[::-1]


def _decode_demand(raw: bytes) -> tuple[Decimal, datetime | None]:
    """A meter that has seen no demand period yet answers zeros: (0, None)."""
    text = raw[3:8][::-1].hex()
    return decode_number(raw[:3], 4), None if text == "0" * 10 else _from_digits(text + "00")


def encode_value(di: int, value: object) -> bytes:
    """Encode `value` in the format of `di` (KeyError for an unknown DI)."""
    fmt = DI_FORMATS[di]
    if fmt.kind is Kind.WORD:
        return int(value).to_bytes(fmt.length, "little")  # type: ignore[call-overload]
    if fmt.kind is Kind.ADDRESS:
        return bytes.fromhex(str(value))[::-1]
    if fmt.kind is Kind.DATETIME:
        assert isinstance(value, datetime)
        return _encode_datetime7(value)
    if fmt.kind is Kind.DEMAND:
        return _encode_demand(value)
    values = value if fmt.items > 1 else (value,)
    if len(values) != fmt.items:  # type: ignore[arg-type]
        raise BadValue(f"DI {di:08X} takes {fmt.items} values")
    return b"".join(encode_number(v, fmt.length, fmt.decimals, fmt.signed) for v in values)  # type: ignore[union-attr]


def decode_value(di: int, raw: bytes) -> object:
    """Decode the value bytes (after the DI) of `di`."""
    fmt = DI_FORMATS[di]
    if len(raw) < fmt.length * fmt.items:
        raise BadValue(f"DI {di:08X}: {len(raw)} bytes, need {fmt.length * fmt.items}")
    if fmt.kind is Kind.WORD:
        return int.from_bytes(raw[: fmt.length], "little")
    if fmt.kind is Kind.ADDRESS:
        return raw[: fmt.length][::-1].hex().upper()
    if fmt.kind is Kind.DATETIME:
        return _decode_datetime7(raw[: fmt.length])
    if fmt.kind is Kind.DEMAND:
        return _decode_demand(raw[: fmt.length])
    numbers = tuple(
        decode_number(raw[k * fmt.length : (k + 1) * fmt.length], fmt.decimals, fmt.signed)
        for k in range(fmt.items)
    )
    return numbers if fmt.items > 1 else numbers[0]


# -- status word 3 ----------------------------------------------------------------------
_RELAY_OPEN = 1 << 4
_RELAY_CMD_TRIP = 1 << 6
_PRE_TRIP_ALARM = 1 << 7
_TYPE_MONEY = 0b10 << 8  # b8–9 meter type: 10 = money prepaid
_TYPE_MASK = 0b11 << 8
_PROTECTED = 1 << 12


@dataclass(frozen=True, slots=True)
class StatusWord3:
    relay_open: bool = False
    relay_command_trip: bool = False
    pre_trip_alarm: bool = False
    money_prepaid: bool = False
    protected: bool = False

    def encode(self) -> int:
        word = _TYPE_MONEY if self.money_prepaid else 0
        for flag, bit in (
            (self.relay_open, _RELAY_OPEN),
            (self.relay_command_trip, _RELAY_CMD_TRIP),
            (self.pre_trip_alarm, _PRE_TRIP_ALARM),
            (self.protected, _PROTECTED),
        ):
            word |= bit if flag else 0
        return word

    @classmethod
    def decode(cls, word: int) -> StatusWord3:
        return cls(
            relay_open=bool(word & _RELAY_OPEN),
            relay_command_trip=bool(word & _RELAY_CMD_TRIP),
            pre_trip_alarm=bool(word & _PRE_TRIP_ALARM),
            money_prepaid=(word & _TYPE_MASK) == _TYPE_MONEY,
            protected=bool(word & _PROTECTED),
        )


def encode_recharge(amount_fen: int, purchase_count: int) -> bytes:
    """Value of SHUIDIAN_RECHARGE (ours): amount XXXXXX.XX yuan, then count NNNN."""
    return encode_number(Decimal(amount_fen).scaleb(-2), 4, 2) + encode_number(purchase_count, 2)


def decode_recharge(raw: bytes) -> tuple[int, int]:
    if len(raw) < 6:
        raise BadValue("recharge value has 6 bytes")
    amount = decode_number(raw[:4], 2).scaleb(2)
    return int(amount), int(decode_number(raw[4:6]))
