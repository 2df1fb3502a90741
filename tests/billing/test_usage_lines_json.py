"""The bill lines stored on usage_charge are the text json.dumps would give, to the byte."""

from __future__ import annotations

import json
from decimal import Decimal

from server.billing.repository import lines_json


def test_lines_are_stored_as_json_dumps_writes_them() -> None:
    lines = [  # (label, quantity, unit price, amount), as bill_round gives them
        ("峰时段电量", Decimal("0.5"), Decimal("1.12036"), Decimal("0.560180")),
        ("第二档加价", Decimal("1E+2"), Decimal("0.05"), Decimal("5.00")),
        ('用水量 "A"', Decimal("0"), Decimal("3.45"), Decimal("0.00")),
        ("谷时段电量", Decimal("-0"), Decimal("2E+1"), Decimal("-0E+1")),
    ]
    expected = json.dumps(
        [[label, str(q), str(price), str(amount)] for label, q, price, amount in lines],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert lines_json(lines) == expected
    assert lines_json(lines[:1]) == json.dumps(
        [[lines[0][0], *map(str, lines[0][1:])]], ensure_ascii=False, separators=(",", ":")
    )
    assert lines_json([]) == "[]"
    assert json.loads(lines_json(lines))[0] == ["峰时段电量", "0.5", "1.12036", "0.560180"]
