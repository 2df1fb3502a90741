"""The bill lines stored on usage_charge are the text json.dumps would give, to the byte."""

from __future__ import annotations

import json
from decimal import Decimal

from server.billing.repository import lines_json
from server.tariffs.plans import Unit
from server.tariffs.pricing import LineKind, PriceLine


def _line(label: str, quantity: str, unit_price: str, amount: str) -> PriceLine:
    q, price, a = Decimal(quantity), Decimal(unit_price), Decimal(amount)
    return PriceLine(LineKind.ENERGY, label, q, Unit.KWH, price, a)


def test_lines_are_stored_as_json_dumps_writes_them() -> None:
    lines = [  # a bill's price lines, as bill_round gives them
        _line("峰时段电量", "0.5", "1.12036", "0.560180"),
        _line("第二档加价", "1E+2", "0.05", "5.00"),
        _line('用水量 "A"', "0", "3.45", "0.00"),
        _line("谷时段电量", "-0", "2E+1", "-0E+1"),
    ]
    expected = json.dumps(
        [[ln.label, str(ln.quantity), str(ln.unit_price), str(ln.amount)] for ln in lines],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert lines_json(lines) == expected
    first = lines[0]
    assert lines_json(lines[:1]) == json.dumps(
        [[first.label, str(first.quantity), str(first.unit_price), str(first.amount)]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert lines_json([]) == "[]"
    assert json.loads(lines_json(lines))[0] == ["峰时段电量", "0.5", "1.12036", "0.560180"]
