"""The monthly comprehensive report on the seeded November (tests/reports/seeded.py, every
figure worked out there by hand): its money equals the ledger's for the month, its usage is
by reading time, and the late readings are named on both sides of the month's edge."""

from __future__ import annotations

from datetime import UTC

import pytest

from server.ledger.models import LedgerLeg
from server.reports.periods import Month
from server.reports.service.monthly import monthly_report
from server.tariffs import LOCAL_TZ
from tests.reports.seeded import seed_november

NOV = Month(2026, 11)


async def _ledger_sum(code_prefix: str, *, kinds: tuple[str, ...] = ()) -> int:
    """The legs on accounts named `code_prefix…` posted in November, straight from the table."""
    start, end = NOV.bounds(LOCAL_TZ)
    q = LedgerLeg.filter(
        ledger_account__code__startswith=code_prefix,
        transaction__created_at__gte=start.astimezone(UTC),
        transaction__created_at__lt=end.astimezone(UTC),
    )
    if kinds:
        q = q.filter(transaction__kind__in=kinds)
    return sum(await q.values_list("amount_fen", flat=True))


async def test_november_adds_up_to_the_ledger(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    park = await seed_november(monkeypatch)
    report = await monthly_report([park.site_id], NOV, LOCAL_TZ)
    shops = {r.account.number: r for r in report.rows}

    a = shops["A101"]
    assert (a.opening_fen, a.closing_fen) == (50_000, 23_100)
    assert (a.electricity_fen, a.refunds_fen, a.payments_fen) == (16_900, 10_000, 0)
    assert a.electricity_e4 == 190 * 10_000
    assert (a.bands_e4[2], a.bands_e4[4]) == (150 * 10_000, 40 * 10_000)
    assert a.electricity_usage_fen == 18_100
    assert (a.bands_fen[2], a.bands_fen[4], a.other_band_fen) == (16_000, 2_100, 0)
    assert (a.late_usage_fen, a.earlier_usage_fen) == (1_200, 0)

    b = shops["A102"]
    assert (b.opening_fen, b.closing_fen) == (0, 18_550)
    assert (b.payments_fen, b.payments_by_channel) == (20_000, {"alipay": 20_000})
    assert (b.electricity_fen, b.earlier_usage_fen, b.adjustments_fen) == (1_750, 900, 300)
    assert (b.electricity_e4, b.bands_e4[2], b.bands_e4[4]) == (100_000, 70_000, 30_000)
    assert (b.electricity_usage_fen, b.bands_fen[2], b.bands_fen[4]) == (850, 700, 150)

    # The report's sums against the ledger's own legs of November, read independently.
    t = report.total
    assert t.closing_fen - t.opening_fen == await _ledger_sum("wallet:") == -8_350
    assert t.electricity_fen == await _ledger_sum("revenue:electricity") == 18_650
    assert t.payments_fen == -await _ledger_sum("clearing:", kinds=("recharge",)) == 20_000
    assert t.refunds_fen == await _ledger_sum("refunds_payable", kinds=("refund_hold",))
    assert t.adjustments_fen == -await _ledger_sum("adjustments") == 300
    for shop in report.rows:  # each row adds up: opening + movements = closing
        assert shop.opening_fen + shop.movement_fen == shop.closing_fen


async def test_one_account_and_an_empty_month(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    park = await seed_november(monkeypatch)
    only = await monthly_report([park.site_id], NOV, LOCAL_TZ, account_id=park.a102)
    assert [r.account.number for r in only.rows] == ["A102"]
    assert only.total.closing_fen == 18_550
    october = await monthly_report([park.site_id], Month(2026, 10), LOCAL_TZ)
    shops = {r.account.number: r for r in october.rows}
    assert (shops["A101"].opening_fen, shops["A101"].closing_fen) == (0, 50_000)
    assert shops["A102"].late_usage_fen == 900  # October's reading, posted 3 Nov
    assert (await monthly_report([], NOV, LOCAL_TZ)).rows == []
