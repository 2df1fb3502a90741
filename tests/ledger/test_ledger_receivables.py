"""The chart's property accounts (posting.py): a fee item's own revenue line, the tenant's
receivable, and the bill postings over them. Pure."""

from __future__ import annotations

import pytest

from server.ledger import posting
from server.ledger.errors import UnbalancedTransaction
from server.ledger.posting import LedgerAccountKind, Leg


def test_a_custom_item_and_a_receivable_are_accounts_of_the_chart() -> None:
    assert posting.spec_of("revenue:item:7").kind is LedgerAccountKind.REVENUE
    assert posting.spec_of("receivable:12").kind is LedgerAccountKind.RECEIVABLE
    for unknown in ("revenue:item:", "revenue:item:x", "revenue:parking", "receivable:a"):
        with pytest.raises(UnbalancedTransaction):
            posting.spec_of(unknown)
    with pytest.raises(UnbalancedTransaction):
        posting.item_revenue(0)


def test_a_bill_puts_its_lines_on_the_receivable_and_may_carry_usage_from_the_wallet() -> None:
    legs = posting.bill_legs(3, [("revenue:rent", 100), ("revenue:item:9", 50),
                                 ("revenue:rent", 25)], carried_fen=30)  # fmt: skip
    assert legs == (Leg("receivable:3", -205), Leg("revenue:item:9", 50),
                    Leg("revenue:rent", 125), Leg("wallet:3", 30))  # fmt: skip
    assert posting.validate(legs) == legs
    with pytest.raises(UnbalancedTransaction):
        posting.bill_legs(3, [("wallet:4", 100)])
    with pytest.raises(UnbalancedTransaction):
        posting.fee_legs(3, "receivable:3", 100)
    assert posting.bill_settle_legs(3, 205) == (Leg("wallet:3", -205), Leg("receivable:3", 205))
