"""Register maps as data: byte vectors for encode/decode, block planning, ADF400L layout."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.meters.modbus.maps import MAPS, UnknownModel, adf400l, ddsy1352, dtsy1352, get_map
from workers.meters.modbus.registers import (
    Register,
    RegisterValueError,
    RegType,
    plan_blocks,
)


def test_u32_total_is_high_word_first():
    reg = ddsy1352.MAP["total"]
    assert reg.encode(Decimal("1000.00")) == [0x0001, 0x86A0]
    assert reg.decode([0x0001, 0x86A0]) == Decimal("1000.00")


def test_i32_remaining_money_negative_when_overdrawn():
    reg = ddsy1352.MAP["remaining"]
    assert reg.encode(Decimal("-1.50")) == [0xFFFF, 0xFF6A]
    assert reg.decode([0xFFFF, 0xFF6A]) == Decimal("-1.50")


def test_i16_power_signed():
    reg = adf400l.MAP_1P["power"]
    assert reg.decode([0xFFFE]) == Decimal("-0.002")
    assert reg.encode(Decimal("1.234")) == [0x04D2]


def test_price_scale_is_a_ten_thousandth_of_a_yuan():
    assert ddsy1352.MAP["price_1"].encode(Decimal("0.6512")) == [0x0000, 0x1970]


def test_value_off_the_scale_or_out_of_range_is_refused():
    with pytest.raises(RegisterValueError):
        ddsy1352.MAP["total"].encode(Decimal("0.001"))
    with pytest.raises(RegisterValueError):
        ddsy1352.MAP["purchase_count"].encode(70000)
    with pytest.raises(RegisterValueError):
        ddsy1352.MAP["total"].encode(Decimal("-0.01"))


@given(st.sampled_from([RegType.U16, RegType.I16, RegType.U32, RegType.I32]), st.integers())
def test_encode_decode_round_trip(reg_type, raw):
    reg = Register(0, reg_type)
    bits = 16 * reg.count
    if reg_type in (RegType.I16, RegType.I32):
        fits = -(1 << (bits - 1)) <= raw < 1 << (bits - 1)
    else:
        fits = 0 <= raw < 1 << bits
    if not fits:
        with pytest.raises(RegisterValueError):
            reg.encode_raw(raw)
        return
    words = reg.encode_raw(raw)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert reg.decode_raw(words) == raw


def test_ddsy_billing_snapshot_is_two_requests():
    names = ["total", "band_1", "band_2", "band_3", "band_4", "voltage", "current", "power"]
    names += ["power_factor", "status", "remaining", "purchase_count"]
    blocks = plan_blocks(ddsy1352.MAP, names)
    assert [(b.address, b.count) for b in blocks] == [(0x0000, 17), (0x0020, 4)]


def test_dtsy_power_is_wide():
    assert dtsy1352.MAP["power"].count == 2
    assert dtsy1352.MAP["total"] == ddsy1352.MAP["total"]


def test_blocks_never_exceed_a_modbus_read():
    model = adf400l.MAP_1P
    blocks = plan_blocks(model, list(model.registers), max_count=10)
    assert all(b.count <= 10 for b in blocks)
    assert sorted(n for b in blocks for n in b.names) == sorted(model.registers)


def test_no_two_registers_overlap_in_any_map():
    for model in MAPS.values():
        taken: dict[int, str] = {}
        for name, reg in model.registers.items():
            for a in range(reg.address, reg.end):
                assert a not in taken, f"{model.model} {name} overlaps {taken.get(a)}"
                taken[a] = name


def test_recharge_amount_and_count_are_adjacent_for_one_write():
    for model in MAPS.values():
        assert model["recharge"].end == model["recharge_count"].address


def test_adf400l_layout_three_phase_three_apart_then_single_phase():
    layout = adf400l.slave_ids(single_phase=3, three_phase=2)
    assert list(layout) == [1, 4, 7, 8, 9]
    assert layout[4] is adf400l.MAP_3P and layout[9] is adf400l.MAP_1P
    assert list(adf400l.slave_ids(single_phase=36)) == list(range(1, 37))
    assert list(adf400l.slave_ids(three_phase=12)) == list(range(1, 35, 3))
    with pytest.raises(adf400l.CircuitLayoutError):
        adf400l.slave_ids(single_phase=1, three_phase=12)


def test_get_map_by_model_name():
    assert get_map("ddsy1352") is ddsy1352.MAP
    with pytest.raises(UnknownModel):
        get_map("XYZ")
