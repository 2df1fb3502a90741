"""Meter addresses as staff type them: the one check the admin's forms and the import share."""

from __future__ import annotations

import pytest

from server.metering.vocabulary import MeterKind, MeterProtocol, address_problem

E, W = MeterKind.ELECTRICITY, MeterKind.WATER
P = MeterProtocol


@pytest.mark.parametrize(
    ("kind", "protocol", "address", "unit"),
    [
        (E, P.DLT645, "000000000101", 0),
        (W, P.CJT188, "12345678901234", 0),
        (E, P.MODBUS_TCP, "SN-2024-0001", 1),
        (E, P.MODBUS_RTU_TCP, "box3-c2", 247),
        (W, P.MQTT_GATEWAY, "dev-7", 0),
    ],
)
def test_good_addresses(kind: MeterKind, protocol: MeterProtocol, address: str, unit: int) -> None:
    assert address_problem(kind, protocol, address, unit) is None


@pytest.mark.parametrize(
    ("kind", "protocol", "address", "unit", "words"),
    [
        (E, P.DLT645, "00000000010", 0, "12 位数字"),
        (E, P.DLT645, "00000000010A", 0, "12 位数字"),
        (E, P.DLT645, "０００００００００１０１", 0, "12 位数字"),  # full-width digits
        (W, P.DLT645, "000000000101", 0, "水表请选"),
        (E, P.CJT188, "12345678901234", 0, "电表请选"),
        (W, P.CJT188, "1234567890123", 0, "14 位数字"),
        (E, P.MODBUS_TCP, "SN1", 0, "1 到 247"),
        (E, P.MODBUS_TCP, "SN1", 248, "1 到 247"),
        (E, P.MODBUS_TCP, "", 1, "不能为空"),
        (E, P.MQTT_GATEWAY, " dev", 0, "不能为空"),
        (E, P.MQTT_GATEWAY, "x" * 33, 0, "最长 32"),
    ],
)
def test_bad_addresses(
    kind: MeterKind, protocol: MeterProtocol, address: str, unit: int, words: str
) -> None:
    problem = address_problem(kind, protocol, address, unit)
    assert problem is not None and words in problem
