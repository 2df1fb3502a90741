"""DL/T 645-2007 framer and DI codec: every byte vector from the reference notes, plus
properties (build -> parse identity, any split of a stream parses to the same frames)."""

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.meters.dlt645 import dataid as di
from workers.meters.dlt645.framer import (
    Frame,
    build_frame,
    encode_address,
    parse_all,
    parse_frame,
)
from workers.meters.hub import Corrupt, NeedMore, Parsed

SHANGHAI = di.SHANGHAI
ADDR = "000000000161"


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


def parsed(raw: bytes) -> Frame:
    result = parse_frame(raw)
    assert isinstance(result, Parsed), result
    assert result.consumed == len(raw)
    return result.frame


# (wire bytes, address, control, descrambled data)
VECTORS = [
    ("68 61 01 00 00 00 00 68 11 04 33 33 34 33 14 16", ADDR, 0x11, "00 00 01 00"),
    (
        "68 61 01 00 00 00 00 68 91 08 33 33 34 33 59 33 33 33 8A 16",
        ADDR,
        0x91,
        "00 00 01 00 26 00 00 00",
    ),
    ("68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16", ADDR, 0x91, "00 01 01 02 01 10"),
    ("68 AA AA AA AA AA AA 68 13 00 DF 16", "AAAAAAAAAAAA", 0x13, ""),
    ("68 61 01 00 00 00 00 68 11 04 33 35 C3 33 A5 16", ADDR, 0x11, "00 02 90 00"),
    (
        "68 61 01 00 00 00 00 68 91 08 33 35 C3 33 78 56 34 33 5E 16",
        ADDR,
        0x91,
        "00 02 90 00 45 23 01 00",
    ),
    (
        "68 61 01 00 00 00 00 68 1C 10 35 33 33 33 33 33 33 33 4D 33 8C 8C 56 64 45 CC 5B 16",
        ADDR,
        0x1C,
        "02 00 00 00 00 00 00 00 1A 00 59 59 23 31 12 99",
    ),
    ("68 61 01 00 00 00 00 68 9C 00 CE 16", ADDR, 0x9C, ""),
    ("68 61 01 00 00 00 00 68 D1 01 35 39 16", ADDR, 0xD1, "02"),
    # read 01010000 (当前)正向有功总最大需量及发生时间, and the reply: 86.4000 kW at
    # 2026-11-17 14:30 (XX.XXXX then YYMMDDhhmm, each low byte first, +0x33)
    ("68 61 01 00 00 00 00 68 11 04 33 33 34 34 15 16", ADDR, 0x11, "00 00 01 01"),
    (
        "68 61 01 00 00 00 00 68 91 0C 33 33 34 34 33 73 B9 63 47 4A 44 59 8D 16",
        ADDR,
        0x91,
        "00 00 01 01 00 40 86 30 14 17 11 26",
    ),
    # 01010001: the same for the period before the last settlement (上1结算日)
    ("68 61 01 00 00 00 00 68 11 04 34 33 34 34 16 16", ADDR, 0x11, "01 00 01 01"),
]


@pytest.mark.parametrize(("wire", "address", "control", "data"), VECTORS)
def test_reference_vectors_parse_and_build(wire, address, control, data):
    frame = parsed(hx(wire))
    assert frame == Frame(address=address, control=control, data=hx(data))
    assert build_frame(frame, preamble=0) == hx(wire)
    assert build_frame(frame, preamble=4) == b"\xfe" * 4 + hx(wire)


def test_reference_values_decode():
    energy = parsed(hx(VECTORS[1][0]))
    assert di.decode_di(energy.data) == di.FORWARD_TOTAL
    assert di.decode_value(di.FORWARD_TOTAL, energy.data[4:]) == Decimal("0.26")
    volts = parsed(hx(VECTORS[2][0]))
    assert di.decode_value(di.decode_di(volts.data), volts.data[4:]) == Decimal("100.1")
    money = parsed(hx(VECTORS[5][0]))
    assert di.decode_value(di.REMAINING_MONEY, money.data[4:]) == Decimal("123.45")
    trip = parsed(hx(VECTORS[6][0]))
    assert trip.data[8] == 0x1A
    assert di.decode_time6(trip.data[10:]) == datetime(2099, 12, 31, 23, 59, 59, tzinfo=SHANGHAI)
    ok, err = parsed(hx(VECTORS[7][0])), parsed(hx(VECTORS[8][0]))
    assert ok.is_reply and not ok.is_error and ok.function == 0x1C
    assert err.is_error and err.function == 0x11 and err.error_code == 0x02


def test_maximum_demand_decodes():
    request, reply, previous = (parsed(hx(v[0])) for v in VECTORS[-3:])
    assert di.decode_di(request.data) == di.MAX_DEMAND
    assert di.decode_di(previous.data) == di.MAX_DEMAND_LAST
    at = datetime(2026, 11, 17, 14, 30, tzinfo=SHANGHAI)
    assert di.decode_value(di.MAX_DEMAND, reply.data[4:]) == (Decimal("86.4"), at)
    assert di.encode_value(di.MAX_DEMAND, (Decimal("86.4"), at)) == reply.data[4:]
    # a meter that has completed no demand interval yet answers zeros: no time
    assert di.decode_value(di.MAX_DEMAND_LAST, bytes(8)) == (Decimal(0), None)
    assert di.encode_value(di.MAX_DEMAND_LAST, (Decimal(0), None)) == bytes(8)
    with pytest.raises(di.BadValue):  # XX.XXXX: below 100 kW, four decimals
        di.encode_value(di.MAX_DEMAND, (Decimal("100"), at))


def test_control_bits():
    f = Frame(ADDR, 0xB1)
    assert f.is_reply and f.more_follows and not f.is_error and f.function == 0x11


def test_short_input_needs_more_and_never_raises():
    wire = hx(VECTORS[0][0])
    for cut in range(len(wire)):
        result = parse_frame(wire[:cut])
        assert isinstance(result, NeedMore)
        assert result.discard == 0
    assert parse_frame(b"") == NeedMore(0)


def test_garbage_and_preamble_are_skipped():
    wire = hx(VECTORS[0][0])
    result = parse_frame(b"\x00\x68\x12\xfe\xfe" + wire)
    assert isinstance(result, Parsed) and result.frame.control == 0x11
    assert result.consumed == 5 + len(wire)
    assert parse_frame(b"\x01\x02\xfe") == NeedMore(3)


def test_bad_checksum_is_a_typed_result():
    wire = bytearray(hx(VECTORS[1][0]))
    wire[-2] ^= 0xFF
    result = parse_frame(bytes(wire))
    assert isinstance(result, Corrupt) and result.consumed == len(wire)
    frames, rest = parse_all(bytes(wire) + hx(VECTORS[0][0]))
    assert isinstance(frames[0], Corrupt) and isinstance(frames[1], Parsed) and rest == b""


@pytest.mark.parametrize(
    ("value", "length", "decimals", "signed", "wire"),
    [
        (Decimal("0.26"), 4, 2, False, "26 00 00 00"),
        (Decimal("123.45"), 4, 2, False, "45 23 01 00"),
        (Decimal("100.1"), 2, 1, False, "01 10"),
        (Decimal("-1.234"), 3, 3, True, "34 12 80"),
        (Decimal("12.3456"), 3, 4, True, "56 34 12"),
        (Decimal("0.955"), 2, 3, True, "55 09"),
        (Decimal("0.6543"), 4, 4, False, "43 65 00 00"),
    ],
)
def test_bcd_numbers(value, length, decimals, signed, wire):
    assert di.encode_number(value, length, decimals, signed) == hx(wire)
    assert di.decode_number(hx(wire), decimals, signed) == value


def test_bcd_errors():
    with pytest.raises(di.BadValue):
        di.encode_number(Decimal("1.234"), 4, 2)
    with pytest.raises(di.BadValue):
        di.encode_number(Decimal("1000000"), 4, 2)
    with pytest.raises(di.BadValue):
        di.encode_number(Decimal("-1"), 4, 2)
    with pytest.raises(di.BadValue):
        di.decode_number(hx("1A 00"), 0)


def test_codec_kinds():
    t = datetime(2024, 7, 14, 8, 30, 5, tzinfo=SHANGHAI)  # a Sunday
    raw = di.encode_value(di.DATETIME, t)
    assert raw == hx("05 30 08 00 14 07 24")
    assert di.decode_value(di.DATETIME, raw) == t
    assert di.encode_value(di.ADDRESS, ADDR) == encode_address(ADDR)
    assert di.decode_value(di.ADDRESS, encode_address(ADDR)) == ADDR
    block = (Decimal("10.00"), Decimal("1.00"), Decimal("2.00"), Decimal("3.00"), Decimal("4.00"))
    assert di.decode_value(di.ENERGY_BLOCK, di.encode_value(di.ENERGY_BLOCK, block)) == block
    word = di.StatusWord3(relay_open=True, money_prepaid=True, protected=True).encode()
    assert word == 0x1210
    assert di.StatusWord3.decode(word).protected
    assert di.encode_recharge(12345, 7) == hx("45 23 01 00 07 00")
    assert di.decode_recharge(hx("45 23 01 00 07 00")) == (12345, 7)


frames_st = st.builds(
    Frame,
    address=st.text("0123456789", min_size=12, max_size=12),
    control=st.integers(0, 255),
    data=st.binary(max_size=40),
)


@settings(max_examples=150)
@given(frames_st, st.integers(0, 4))
def test_build_parse_identity(frame, preamble):
    wire = build_frame(frame, preamble)
    result = parse_frame(wire)
    assert isinstance(result, Parsed) and result.frame == frame and result.consumed == len(wire)


@settings(max_examples=100)
@given(st.lists(st.tuples(frames_st, st.integers(0, 4)), min_size=1, max_size=5), st.data())
def test_any_split_parses_to_the_same_frames(items, data):
    stream = b"".join(build_frame(f, p) for f, p in items)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=8)))
    got: list[Frame] = []
    buf = b""
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        results, buf = parse_all(buf + stream[a:b])
        got.extend(r.frame for r in results if isinstance(r, Parsed))
    assert got == [f for f, _ in items] and buf == b""
