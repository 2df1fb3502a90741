"""The PostgreSQL balance guard (migrations 0004 + 0007): a deferred constraint trigger that
checks each transaction once — on its debit leg — at commit, and a statement guard that
refuses legs added without a debit among them. Whatever writes the legs (INSERT or the
billing path's COPY), an unbalanced transaction never commits."""

from __future__ import annotations

import pytest
from asyncpg.exceptions import CheckViolationError
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.ledger import Channel, recharge
from server.ledger.check import check_ledger
from server.ledger.models import LedgerLeg, LedgerTransaction
from server.ledger.sql import copy_rows, fetch, ledger_account_ids, now
from tests.factories import create_account

pytestmark = pytest.mark.postgres
REFUSED = (CheckViolationError, IntegrityError)
LEG_COLUMNS = ("transaction_id", "ledger_account_id", "amount_fen")


async def _new_transaction(conn: BaseDBAsyncClient, key: str) -> int:
    rows = await fetch(
        conn,
        'INSERT INTO ledger_transaction ("key", kind, memo, actor, created_at)'
        " VALUES ($1, 'adjustment', 'test', 'staff:1', $2) RETURNING id",
        [key, now()],
    )
    return int(rows[0]["id"])


async def test_a_debit_alone_is_refused_at_commit(db: None) -> None:
    account = await create_account()
    posted = await recharge(account.id, Channel.CASH, 100, key="cash:d", actor="staff:1")
    leg = await LedgerLeg.filter(transaction_id=posted.transaction_id).first()
    assert leg is not None
    reached_commit = False
    with pytest.raises(REFUSED, match="unbalanced"):
        async with in_transaction() as conn:
            await conn.execute_query(
                "INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
                " VALUES ($1, $2, -1)",
                [posted.transaction_id, leg.ledger_account_id],
            )
            reached_commit = True  # the INSERT went through: the deferred check speaks later
    assert reached_commit
    assert await LedgerLeg.filter(transaction_id=posted.transaction_id).count() == 2


async def test_credits_without_a_debit_are_refused_at_once(db: None) -> None:
    async with in_transaction() as conn:
        codes = await ledger_account_ids(conn, ["adjustments", "clearing:cash"])
    with pytest.raises(REFUSED, match="without a debit"):
        async with in_transaction() as conn:
            tx = await _new_transaction(conn, "adj:credits")
            await conn.execute_query(
                "INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
                " VALUES ($1, $2, 5), ($1, $3, 7)",
                [tx, codes["adjustments"], codes["clearing:cash"]],
            )
    assert await LedgerTransaction.filter(key="adj:credits").count() == 0


async def test_copied_legs_are_checked_like_inserted_ones(db: None) -> None:
    async with in_transaction() as conn:
        codes = await ledger_account_ids(conn, ["adjustments", "clearing:cash"])
    a, c = codes["adjustments"], codes["clearing:cash"]
    # Balanced: committed. Two legs, one debit: one check.
    async with in_transaction() as conn:
        tx = await _new_transaction(conn, "adj:copied")
        await copy_rows(conn, "ledger_leg", LEG_COLUMNS, [(tx, a, -9), (tx, c, 9)])
    # Unbalanced by one fen: refused at commit, nothing left behind.
    with pytest.raises(REFUSED, match="unbalanced"):
        async with in_transaction() as conn:
            tx = await _new_transaction(conn, "adj:off-by-one")
            await copy_rows(conn, "ledger_leg", LEG_COLUMNS, [(tx, a, -9), (tx, c, 10)])
    assert await LedgerTransaction.filter(key__startswith="adj:").count() == 1
    assert await check_ledger() == []
