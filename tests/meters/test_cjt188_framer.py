"""CJ/T 188-2004 framer: field byte vectors, payload codec, parse properties."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.meters.cjt188.framer import (
    DI_READ_DATA,
    DI_VALVE,
    VALVE_CLOSE,
    Frame,
    ValveState,
    WaterReading,
    build_frame,
    di_bytes,
    parse_all,
    parse_frame,
)
from workers.meters.hub import Corrupt, NeedMore, Parsed

ADDR = "00000000000012"
READ_REQ = "68 10 12 00 00 00 00 00 00 01 03 90 1F 00 3D 16"
READ_REPLY = (
    "68 10 12 00 00 00 00 00 00 81 16 90 1F 00 10 00 10 00 2C 10 00 10 00 2C"
    " 00 00 00 00 00 00 00 00 FF 67 16"
)


def test_read_request_vector():
    frame = Frame(ADDR, 0x01, di_bytes(DI_READ_DATA, 0))
    assert build_frame(frame, preamble=0) == bytes.fromhex(READ_REQ)
    result = parse_frame(b"\xfe\xfe\xfe" + bytes.fromhex(READ_REQ))
    assert isinstance(result, Parsed) and result.frame == frame
    assert result.frame.di == DI_READ_DATA and result.frame.ser == 0


def test_read_reply_vector_decodes():
    result = parse_frame(bytes.fromhex(READ_REPLY))
    assert isinstance(result, Parsed)
    f = result.frame
    assert f.is_reply and not f.is_error and f.function == 0x01 and f.address == ADDR
    reading = WaterReading.decode(f.data[3:])
    assert reading.total_m3 == Decimal("1000.10")
    assert reading.settlement_m3 == Decimal("1000.10")
    assert reading.valve == ValveState.OPEN and not reading.battery_low


def test_valve_close_vector():
    frame = Frame("00000000000171", 0x04, di_bytes(DI_VALVE, 7) + bytes([VALVE_CLOSE]))
    wire = build_frame(frame, preamble=0)
    assert wire[:11] == bytes.fromhex("68 10 71 01 00 00 00 00 00 04 04")
    assert wire[11:15] == bytes.fromhex("A0 17 07 99")
    assert wire[-2] == sum(wire[:-2]) & 0xFF and wire[-1] == 0x16


def test_reading_roundtrip():
    r = WaterReading(Decimal("123.45"), Decimal("100.00"), "20240715103000", ValveState.CLOSED)
    assert WaterReading.decode(r.encode()) == r
    assert len(r.encode()) == 19


def test_short_garbage_and_bad_checksum():
    wire = bytes.fromhex(READ_REQ)
    for cut in range(len(wire)):
        assert isinstance(parse_frame(wire[:cut]), NeedMore)
    assert parse_frame(b"\x00\x01") == NeedMore(2)
    bad = bytearray(wire)
    bad[-2] ^= 1
    assert isinstance(parse_frame(bytes(bad)), Corrupt)
    result = parse_frame(b"\x68\x00\x68" + wire)  # a stray 68 with an impossible type
    assert isinstance(result, Parsed) and result.consumed == 3 + len(wire)


frames_st = st.builds(
    Frame,
    address=st.text("0123456789", min_size=14, max_size=14),
    control=st.integers(0, 255),
    data=st.binary(max_size=30),
    meter_type=st.sampled_from([0x10, 0x11, 0x20, 0x30]),
)


@settings(max_examples=100)
@given(st.lists(st.tuples(frames_st, st.integers(0, 3)), min_size=1, max_size=4), st.data())
def test_build_parse_identity_under_any_split(items, data):
    stream = b"".join(build_frame(f, p) for f, p in items)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=6)))
    got, buf = [], b""
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        results, buf = parse_all(buf + stream[a:b])
        got.extend(r.frame for r in results if isinstance(r, Parsed))
    assert got == [f for f, _ in items] and buf == b""
