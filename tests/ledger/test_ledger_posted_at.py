"""A batch may carry each posting's time (`post_batch(at=…)`): a history taken over, the
demo's back-dated month. The postings are otherwise those of now; the books still check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from tortoise.transactions import in_transaction

from server.ledger import Channel, ChargeType, TxKind
from server.ledger.batch import post_batch
from server.ledger.check import check_ledger
from server.ledger.models import LedgerTransaction
from server.ledger.posting import Posting, charge_legs, recharge_posting
from tests.factories import create_account


async def test_postings_keep_the_times_they_were_given(db: None) -> None:
    account = await create_account()
    shanghai = timezone(timedelta(hours=8))
    at = [datetime(2026, 11, 3, 9, 30, tzinfo=shanghai), datetime(2026, 11, 3, 23, tzinfo=UTC)]
    postings = [
        recharge_posting(account.id, Channel.CASH, 500, key="h:1", actor="system:test"),
        Posting("usage:h:2", TxKind.CHARGE, charge_legs(account.id, ChargeType.WATER, 120),
                "水费", "system:test", allow_arrears=True),
    ]  # fmt: skip
    async with in_transaction():
        await post_batch(postings, at=at)
    stored = await LedgerTransaction.filter(key__in=["h:1", "usage:h:2"]).order_by("id")
    assert [t.created_at for t in stored] == at
    assert await check_ledger() == []
    with pytest.raises(ValueError):
        async with in_transaction():
            await post_batch(postings[:1], at=[datetime(2026, 11, 3)])  # no zone: refused
    with pytest.raises(ValueError):
        async with in_transaction():
            await post_batch(postings[:1], at=at)  # one time per posting
