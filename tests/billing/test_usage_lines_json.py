"""The bill lines stored on usage_charge are the text json.dumps would give, to the byte."""

from __future__ import annotations

import json
from decimal import Decimal

from server.billing.repository import lines_json
from server.tariffs import Band, LineKind, PriceLine


def test_lines_are_stored_as_json_dumps_writes_them() -> None:
    lines = [
        PriceLine(LineKind.ENERGY, "峰时段电量", Decimal("0.5"), "kWh", Decimal("1.12036"),
                  Decimal("0.560180"), band=Band.PEAK),
        PriceLine(LineKind.TIER_SURCHARGE, "第二档加价", Decimal("1E+2"), "kWh", Decimal("0.05"),
                  Decimal("5.00"), tier=2),
        PriceLine(LineKind.ENERGY, '用水量 "A"', Decimal("0"), "m³", Decimal("3.45"),
                  Decimal("0.00")),
    ]  # fmt: skip
    expected = json.dumps(
        [[ln.label, str(ln.quantity), str(ln.unit_price), str(ln.amount)] for ln in lines],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert lines_json(lines) == expected
    assert lines_json([]) == "[]"
    assert json.loads(lines_json(lines))[0] == ["峰时段电量", "0.5", "1.12036", "0.560180"]
