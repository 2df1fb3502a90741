"""T+1 reconciliation: worked examples a finance clerk can check, and a property."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from server.payments.providers.base import BillRow, BillRowType, Channel
from server.payments.reconcile import MatchKey, OurRecord, Side, reconcile

T = datetime(2024, 3, 1, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PAY, REFUND = BillRowType.PAYMENT, BillRowType.REFUND
WX, ALI = Channel.WECHAT, Channel.ALIPAY


def row(no: str, fen: int, kind=PAY, refund_no="", status="SUCCESS", channel=WX) -> BillRow:
    return BillRow(channel, kind, no, refund_no, "42" + no, fen, status, T)


def ours(no: str, fen: int, kind=PAY, refund_no="", channel=WX) -> OurRecord:
    return OurRecord(channel, kind, no, refund_no, fen)


def test_a_clean_day():
    bill = [row("R1", 10000), row("R2", 5000), row("R1", 1234, REFUND, "RF1")]
    report = reconcile(bill, [ours("R1", 10000), ours("R2", 5000), ours("R1", 1234, REFUND, "RF1")])
    assert report.clean and report.matched == 3


def test_missing_extra_amount_and_duplicates():
    bill = [
        row("R1", 10000),  # matched
        row("R2", 5000),  # missing: paid, never credited
        row("R3", 3000),  # we credited 30.01 yuan: amount mismatch of -1 fen
        row("R4", 2000),
        row("R4", 2000),  # the platform listed it twice
        row("R5", 800, status="REVOKED"),  # not settled: ignored
        row("R1", 500, REFUND, "RF9"),  # refund we never booked: missing
    ]
    mine = [
        ours("R1", 10000),
        ours("R3", 3001),
        ours("R4", 2000),
        ours("R6", 700),  # extra: credited, not on the bill
        ours("R6", 700),  # and credited twice
    ]
    report = reconcile(bill, mine)
    assert report.matched == 2  # R1, R4
    assert [m.key for m in report.missing] == [
        MatchKey(WX, PAY, "R2"),
        MatchKey(WX, REFUND, "RF9"),
    ]
    assert [e.key.number for e in report.extra] == ["R6"]
    [mismatch] = report.amount_mismatches
    assert (mismatch.key.number, mismatch.bill_fen, mismatch.ours_fen) == ("R3", 3000, 3001)
    assert mismatch.difference_fen == -1
    assert [(d.key.number, d.side, d.count) for d in report.duplicates] == [
        ("R4", Side.BILL, 2),
        ("R6", Side.OURS, 2),
    ]
    assert report.ignored_rows == 1 and not report.clean


def test_channels_do_not_match_each_other():
    report = reconcile([row("R1", 100, channel=ALI)], [ours("R1", 100, channel=WX)])
    assert [m.key.channel for m in report.missing] == [ALI]
    assert [e.key.channel for e in report.extra] == [WX]


records = st.dictionaries(
    st.text("ABCDEF0123456789", min_size=6, max_size=12), st.integers(1, 10**7), max_size=30
)


@settings(max_examples=100)
@given(records, st.data())
def test_dropping_rows_reports_exactly_those_missing(credits, data):
    bill = [row(no, fen) for no, fen in credits.items()]
    kept = data.draw(st.sets(st.sampled_from(sorted(credits))) if credits else st.just(set()))
    report = reconcile(bill, [ours(no, credits[no]) for no in kept])
    assert {m.key.number for m in report.missing} == set(credits) - kept
    assert report.matched == len(kept) and not report.extra and not report.amount_mismatches
