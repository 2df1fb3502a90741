"""The transfer posting (过户): one wallet's money to another in one balanced transaction,
once per key, never below the source's floor, never into or out of a closed wallet."""

from __future__ import annotations

import pytest

from server.accounts.models import Account, AccountStatus
from server.ledger import (
    AccountClosed,
    Channel,
    IdempotencyConflict,
    InsufficientBalance,
    TxKind,
    UnbalancedTransaction,
    load,
    recharge,
    transfer,
)
from server.ledger.check import check_ledger
from server.ledger.posting import transfer_legs, wallet
from tests.factories import create_account


def test_transfer_legs_move_one_wallet_to_another() -> None:
    assert transfer_legs(1, 2, 500) == ((wallet(1), -500), (wallet(2), 500))
    with pytest.raises(UnbalancedTransaction):
        transfer_legs(1, 1, 500)
    with pytest.raises(UnbalancedTransaction):
        transfer_legs(1, 2, 0)


async def test_transfer_moves_the_balance_once(db: None) -> None:
    old, new = await create_account(), await create_account()
    await recharge(old.id, Channel.CASH, 10_000, key="cash:t1", actor="staff:1")
    first = await transfer(old.id, new.id, 6_000, key="transfer:1", actor="staff:1")
    again = await transfer(old.id, new.id, 6_000, key="transfer:1", actor="staff:1")
    assert first.created and not again.created
    assert first.transaction_id == again.transaction_id
    assert first.balance_after_fen == 4_000  # the source account's, which the row names
    assert [
        (a.id, a.balance_fen) for a in await Account.filter(id__in=[old.id, new.id]).order_by("id")
    ] == [
        (old.id, 4_000),
        (new.id, 6_000),
    ]
    stored = await load("transfer:1")
    assert stored.kind is TxKind.TRANSFER and stored.account_id == old.id
    with pytest.raises(IdempotencyConflict):
        await transfer(old.id, new.id, 1_000, key="transfer:1", actor="staff:1")
    assert await check_ledger() == []


async def test_transfer_respects_the_floor_and_closed_wallets(db: None) -> None:
    old, new = await create_account(), await create_account()
    await recharge(old.id, Channel.CASH, 1_000, key="cash:t2", actor="staff:1")
    with pytest.raises(InsufficientBalance):
        await transfer(old.id, new.id, 1_001, key="transfer:2", actor="staff:1")
    await Account.filter(id=new.id).update(status=AccountStatus.CLOSED)
    with pytest.raises(AccountClosed):
        await transfer(old.id, new.id, 500, key="transfer:3", actor="staff:1")
    assert (await Account.get(id=old.id)).balance_fen == 1_000
    assert (await Account.get(id=new.id)).balance_fen == 0
    assert await check_ledger() == []
