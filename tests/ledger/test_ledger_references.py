"""Ledger references on PostgreSQL (migration 0009): checked once per INSERT statement over
its new rows instead of by per-row foreign keys, and the referenced rows can never go away.
Each check is made to fail here with the row that breaks it, by INSERT and by COPY, and a
good statement of many rows still goes through."""

from __future__ import annotations

import pytest
from asyncpg.exceptions import ForeignKeyViolationError, RestrictViolationError
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from server.ledger import Channel, recharge
from server.ledger.check import check_ledger
from server.ledger.models import LedgerAccount, LedgerLeg, LedgerTransaction
from server.ledger.sql import copy_rows, fetch, ledger_account_ids, now
from tests.factories import create_account

pytestmark = pytest.mark.postgres
MISSING = (ForeignKeyViolationError, IntegrityError)
REFUSED = (RestrictViolationError, IntegrityError, OperationalError, ForeignKeyViolationError)
LEG_COLUMNS = ("transaction_id", "ledger_account_id", "amount_fen")


async def _transactions(
    conn: BaseDBAsyncClient, keys: list[str], account_id: int | None
) -> list[int]:
    rows = await fetch(
        conn,
        'INSERT INTO ledger_transaction ("key", kind, memo, actor, account_id, created_at)'
        " SELECT k, 'adjustment', 'test', 'staff:1', $2, $3 FROM unnest($1::text[]) AS k"
        " RETURNING id",
        [keys, account_id, now()],
    )
    return [int(r["id"]) for r in rows]


async def _codes(*codes: str) -> dict[str, int]:
    async with in_transaction() as conn:
        return await ledger_account_ids(conn, list(codes))


async def test_a_statement_of_many_good_rows_goes_through(db: None) -> None:
    account = await create_account()
    ids = await _codes("adjustments", f"wallet:{account.id}")
    adj, wallet = ids["adjustments"], ids[f"wallet:{account.id}"]
    async with in_transaction() as conn:
        txs = await _transactions(conn, [f"adj:{i}" for i in range(300)], account.id)
        legs = [leg for tx in txs for leg in ((tx, wallet, 5), (tx, adj, -5))]
        await copy_rows(conn, "ledger_leg", LEG_COLUMNS, legs)
        await conn.execute_query(
            "UPDATE account SET balance_fen = balance_fen + $1 WHERE id = $2", [5 * 300, account.id]
        )
    assert await LedgerLeg.all().count() == 600
    assert await check_ledger() == []


@pytest.mark.parametrize("how", ["insert", "copy"])
async def test_a_leg_of_a_transaction_that_does_not_exist_is_refused(db: None, how: str) -> None:
    ids = await _codes("adjustments", "clearing:cash")
    with pytest.raises(MISSING, match="names transaction 999999"):
        async with in_transaction() as conn:
            tx = (await _transactions(conn, ["adj:real"], None))[0]
            rows = [
                (tx, ids["adjustments"], -3), (tx, ids["clearing:cash"], 3),
                (999999, ids["adjustments"], -3), (999999, ids["clearing:cash"], 3),
            ]  # fmt: skip
            if how == "copy":
                await copy_rows(conn, "ledger_leg", LEG_COLUMNS, rows)
            else:
                await conn.execute_query(
                    "INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
                    " SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[])",
                    [list(c) for c in zip(*rows, strict=True)],
                )
    assert await LedgerTransaction.all().count() == 0
    assert await LedgerLeg.all().count() == 0


async def test_a_leg_on_a_ledger_account_that_does_not_exist_is_refused(db: None) -> None:
    ids = await _codes("adjustments")
    with pytest.raises(MISSING, match="names ledger account 424242"):
        async with in_transaction() as conn:
            tx = (await _transactions(conn, ["adj:ghost"], None))[0]
            await copy_rows(
                conn, "ledger_leg", LEG_COLUMNS, [(tx, ids["adjustments"], -3), (tx, 424242, 3)]
            )
    assert await LedgerTransaction.all().count() == 0


async def test_a_transaction_of_an_account_that_does_not_exist_is_refused(db: None) -> None:
    with pytest.raises(MISSING, match="names account 777777"):
        async with in_transaction() as conn:
            await _transactions(conn, ["adj:a", "adj:b"], 777777)
    assert await LedgerTransaction.all().count() == 0


async def test_reversing_or_resolving_a_transaction_that_does_not_exist_is_refused(
    db: None,
) -> None:
    for column in ("reverses_id", "resolves_id"):
        with pytest.raises(MISSING, match=f"{column.split('_')[0]} transaction 55555"):
            async with in_transaction() as conn:
                await conn.execute_query(
                    f'INSERT INTO ledger_transaction ("key", kind, memo, actor, {column},'
                    " created_at) VALUES ('adj:x', 'reversal', '', 'staff:1', 55555, $1)",
                    [now()],
                )
    assert await LedgerTransaction.all().count() == 0


async def test_a_usage_row_naming_a_missing_transaction_is_refused(db: None) -> None:
    columns = ("meter_id", "account_id", "prev_reading_at", "reading_at", "quantity",
               "exact_yuan", "amount_fen", "lines", "transaction_id", "created_at")  # fmt: skip
    at = now()
    with pytest.raises(MISSING, match="names ledger transaction 31337"):
        async with in_transaction() as conn:
            await copy_rows(
                conn, "usage_charge", columns, [(1, 1, at, at, "1", "1", 100, "[]", 31337, at)]
            )


async def test_what_ledger_rows_refer_to_cannot_be_deleted(db: None) -> None:
    account = await create_account()
    await recharge(account.id, Channel.CASH, 100, key="cash:keep", actor="staff:1")
    wallet = await LedgerAccount.get(code=f"wallet:{account.id}")
    with pytest.raises(REFUSED, match="cannot be deleted"):
        async with in_transaction() as conn:
            await conn.execute_query("DELETE FROM ledger_account WHERE id = $1", [wallet.id])
    with pytest.raises(REFUSED, match="renumbered"):
        async with in_transaction() as conn:
            await conn.execute_query(
                "UPDATE ledger_account SET id = id + 1000 WHERE id = $1", [wallet.id]
            )
    with pytest.raises(REFUSED, match="close it instead"):
        async with in_transaction() as conn:
            await conn.execute_query("DELETE FROM account WHERE id = $1", [account.id])
    # Renaming a chart account is still allowed; only its identity is fixed.
    await LedgerAccount.filter(id=wallet.id).update(name="改名")
    assert await check_ledger() == []
