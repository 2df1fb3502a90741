"""post() without a key look-up first and without a savepoint inside the caller's
transaction: replays, conflicts and refusals must leave exactly what they left before."""

from __future__ import annotations

import asyncio

import pytest
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.ledger import (
    Channel,
    ChargeType,
    IdempotencyConflict,
    InsufficientBalance,
    balance_of,
    charge,
    recharge,
)
from server.ledger.check import check_ledger
from server.ledger.models import LedgerAccount, LedgerTransaction
from tests.factories import create_account

STAFF = "staff:1"


async def _balance(account: Account) -> int:
    await account.refresh_from_db()
    return account.balance_fen


async def test_a_replay_inside_the_callers_transaction_moves_nothing(db: None) -> None:
    account = await create_account()
    async with in_transaction():
        first = await recharge(account.id, Channel.WECHAT, 700, key="wx:in-tx", actor="t")
        again = await recharge(account.id, Channel.WECHAT, 700, key="wx:in-tx", actor="t")
        with pytest.raises(IdempotencyConflict):
            await recharge(account.id, Channel.WECHAT, 900, key="wx:in-tx", actor="t")
        # The caller's transaction is still usable and goes on.
        await charge(account.id, ChargeType.SERVICE_FEE, 200, key="sf:in-tx", actor=STAFF)
    assert (first.created, again.created) == (True, False)
    assert again.transaction_id == first.transaction_id
    assert await _balance(account) == 500
    assert await LedgerTransaction.all().count() == 2
    assert await check_ledger() == []


async def test_a_conflicting_key_on_another_wallet_is_undone_in_the_callers_transaction(
    db: None,
) -> None:
    first, second = await create_account(), await create_account()
    await recharge(first.id, Channel.WECHAT, 1_000, key="wx:taken", actor="t")
    async with in_transaction():
        with pytest.raises(IdempotencyConflict):
            await recharge(second.id, Channel.WECHAT, 1_000, key="wx:taken", actor="t")
    assert (await _balance(first), await _balance(second)) == (1_000, 0)
    assert await check_ledger() == []


async def test_a_replay_is_answered_even_when_the_wallet_would_refuse_now(db: None) -> None:
    """Without the look-up first, the wallet is asked before the key: a charge replayed
    after the money is gone, or a recharge replayed after the account closed, is still the
    first result, not a refusal."""
    account = await create_account()
    await recharge(account.id, Channel.WECHAT, 1_000, key="wx:r", actor="t")
    spent = await charge(account.id, ChargeType.SERVICE_FEE, 1_000, key="sf:all", actor=STAFF)
    for in_tx in (False, True):
        if in_tx:
            async with in_transaction():
                again = await charge(
                    account.id, ChargeType.SERVICE_FEE, 1_000, key="sf:all", actor=STAFF
                )
        else:
            again = await charge(
                account.id, ChargeType.SERVICE_FEE, 1_000, key="sf:all", actor=STAFF
            )
        assert (again.created, again.transaction_id) == (False, spent.transaction_id)
    with pytest.raises(InsufficientBalance):
        await charge(account.id, ChargeType.SERVICE_FEE, 1, key="sf:more", actor=STAFF)
    await Account.filter(id=account.id).update(status=AccountStatus.CLOSED)
    replay = await recharge(account.id, Channel.WECHAT, 1_000, key="wx:r", actor="t")
    assert replay.created is False and replay.balance_after_fen == 1_000
    assert await _balance(account) == 0
    assert await check_ledger() == []


async def test_first_posts_creating_one_ledger_account_at_once_all_land(db: None) -> None:
    """Many first recharges through a channel whose clearing account does not exist yet,
    at once: one creates it, the others find it (after waiting for it) — none fails, none is
    posted twice, the chart has one row per code."""
    accounts = [await create_account() for _ in range(12)]
    results = await asyncio.gather(
        *(recharge(a.id, Channel.ALIPAY, 100 + i, key=f"ali:first:{i}", actor="t")
          for i, a in enumerate(accounts))
    )  # fmt: skip
    assert all(r.created for r in results)
    assert await LedgerAccount.filter(code="clearing:alipay").count() == 1
    assert await balance_of("clearing:alipay") == -sum(100 + i for i in range(12))
    for i, a in enumerate(accounts):
        assert await _balance(a) == 100 + i
    assert await check_ledger() == []
