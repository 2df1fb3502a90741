"""Ledger service on a real database: postings, floor, idempotency, reversal, refunds."""

from __future__ import annotations

import asyncio

import pytest
from asyncpg.exceptions import CheckViolationError
from tortoise import connections
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.ledger import (
    AccountClosed,
    AlreadyReversed,
    Channel,
    ChargeType,
    IdempotencyConflict,
    InsufficientBalance,
    Leg,
    NotReversible,
    RefundAlreadyResolved,
    TxKind,
    UnbalancedTransaction,
    adjust,
    balance_of,
    charge,
    load,
    post,
    recharge,
    refund_hold,
    refund_settle,
    refund_void,
    reverse,
)
from server.ledger.models import LedgerLeg, LedgerTransaction
from tests.factories import create_account

STAFF = "staff:1"


async def _balance(account: Account) -> int:
    await account.refresh_from_db()
    return account.balance_fen


async def test_recharge_then_charge_moves_wallet_and_books_both_sides(db: None) -> None:
    account = await create_account()
    r = await recharge(account.id, Channel.WECHAT, 10_000, key="wx:T1", actor="tenant:o1")
    assert (r.created, r.balance_after_fen) == (True, 10_000)
    c = await charge(account.id, ChargeType.RENT, 3_000, key="rent:1", actor=STAFF, memo="五月租金")
    assert c.balance_after_fen == 7_000
    assert await _balance(account) == 7_000
    assert await balance_of(f"wallet:{account.id}") == 7_000
    assert await balance_of("clearing:wechat") == -10_000
    assert await balance_of("revenue:rent") == 3_000
    stored = await load("rent:1")
    assert stored.kind is TxKind.CHARGE and stored.account_id == account.id
    assert sorted(stored.legs, key=lambda leg: leg.code) == [
        Leg("revenue:rent", 3_000),
        Leg(f"wallet:{account.id}", -3_000),
    ]


async def test_same_key_returns_first_result_and_different_amount_conflicts(db: None) -> None:
    account = await create_account()
    first = await recharge(account.id, Channel.ALIPAY, 500, key="ali:1", actor="tenant:o1")
    again = await recharge(account.id, Channel.ALIPAY, 500, key="ali:1", actor="tenant:o1")
    assert again == type(first)(first.transaction_id, "ali:1", False, 500)
    with pytest.raises(IdempotencyConflict) as info:
        await recharge(account.id, Channel.ALIPAY, 600, key="ali:1", actor="tenant:o1")
    assert info.value.status_code == 409
    with pytest.raises(IdempotencyConflict):
        await charge(account.id, ChargeType.WATER, 500, key="ali:1", actor=STAFF)
    assert await _balance(account) == 500
    assert await LedgerTransaction.all().count() == 1


async def test_debit_below_floor_is_refused_and_writes_nothing(db: None) -> None:
    account = await create_account(credit_limit_fen=200)
    await recharge(account.id, Channel.CASH, 1_000, key="cash:1", actor=STAFF)
    await charge(account.id, ChargeType.RENT, 1_200, key="rent:ok", actor=STAFF)  # floor -200
    with pytest.raises(InsufficientBalance) as info:
        await charge(account.id, ChargeType.RENT, 1, key="rent:no", actor=STAFF)
    assert info.value.message == "余额不足" and info.value.status_code == 409
    assert await _balance(account) == -200
    assert await LedgerTransaction.filter(key="rent:no").count() == 0
    assert await LedgerLeg.all().count() == 4
    # Consumption already used is never lost: it may take the wallet into arrears.
    usage = await charge(
        account.id, ChargeType.ELECTRICITY, 5_000, key="usage:1", actor="system:collector",
        allow_arrears=True,
    )  # fmt: skip
    assert usage.balance_after_fen == -5_200


async def test_closed_account_takes_no_recharge_or_charge(db: None) -> None:
    account = await create_account(status=AccountStatus.CLOSED)
    with pytest.raises(AccountClosed):
        await recharge(account.id, Channel.WECHAT, 100, key="wx:closed", actor="tenant:o")
    with pytest.raises(AccountClosed):
        await charge(
            account.id, ChargeType.RENT, 1, key="c:closed", actor=STAFF, allow_arrears=True
        )
    assert await LedgerTransaction.all().count() == 0


async def test_invalid_legs_are_refused(db: None) -> None:
    account = await create_account()
    wallet = f"wallet:{account.id}"
    for legs in (
        [Leg(wallet, 100), Leg("clearing:cash", -99)],
        [Leg(wallet, 0), Leg("clearing:cash", 0)],
        [Leg(wallet, 100)],
        [Leg(wallet, 100), Leg("nowhere", -100)],
        [Leg(wallet, 50), Leg(wallet, 50), Leg("clearing:cash", -100)],
    ):
        with pytest.raises(UnbalancedTransaction):
            await post("bad", TxKind.ADJUSTMENT, legs, memo="x", actor=STAFF)
    with pytest.raises(UnbalancedTransaction):
        await recharge(account.id, Channel.CASH, -5, key="neg", actor=STAFF)
    assert await LedgerTransaction.all().count() == 0


async def test_adjust_needs_a_reason_and_moves_both_ways(db: None) -> None:
    account = await create_account()
    await adjust(account.id, 300, key="adj:1", actor=STAFF, reason="抄表错误补偿")
    await adjust(account.id, -100, key="adj:2", actor=STAFF, reason="重复补偿收回")
    assert await _balance(account) == 200
    assert await balance_of("adjustments") == -200
    with pytest.raises(UnbalancedTransaction):
        await adjust(account.id, 1, key="adj:3", actor=STAFF, reason=" ")


async def test_reversal_restores_balances_once(db: None) -> None:
    account = await create_account()
    await recharge(account.id, Channel.WECHAT, 1_000, key="wx:9", actor="tenant:o")
    await charge(account.id, ChargeType.PROPERTY_FEE, 400, key="pf:1", actor=STAFF)
    rev = await reverse("pf:1", key="rev:pf:1", actor=STAFF, reason="物业费重复收取")
    assert rev.balance_after_fen == 1_000
    assert await balance_of("revenue:property_fee") == 0
    assert (await reverse("pf:1", key="rev:pf:1", actor=STAFF, reason="x")).created is False
    with pytest.raises(AlreadyReversed):
        await reverse("pf:1", key="rev:pf:1:again", actor=STAFF, reason="再次")
    with pytest.raises(NotReversible):
        await reverse("rev:pf:1", key="rev:rev", actor=STAFF, reason="x")
    assert await _balance(account) == 1_000


async def test_reversing_a_spent_recharge_respects_the_floor(db: None) -> None:
    account = await create_account()
    await recharge(account.id, Channel.WECHAT, 1_000, key="wx:10", actor="tenant:o")
    await charge(account.id, ChargeType.RENT, 800, key="rent:10", actor=STAFF)
    with pytest.raises(InsufficientBalance):
        await reverse("wx:10", key="rev:wx:10", actor=STAFF, reason="误充")
    assert await _balance(account) == 200


async def test_two_phase_refund_settles_or_voids_once(db: None) -> None:
    account = await create_account()
    await recharge(account.id, Channel.WECHAT, 1_000, key="wx:20", actor="tenant:o")
    with pytest.raises(InsufficientBalance):
        await refund_hold(account.id, Channel.WECHAT, 1_001, key="rf:too-much", actor=STAFF)
    hold = await refund_hold(account.id, Channel.WECHAT, 600, key="rf:1", actor=STAFF)
    assert hold.balance_after_fen == 400
    assert await balance_of("refunds_payable") == 600
    settled = await refund_settle("rf:1", key="rf:1:settle", actor="system:wechat")
    assert settled.balance_after_fen is None
    assert await balance_of("refunds_payable") == 0
    assert await balance_of("clearing:wechat") == -400  # 1000 in, 600 back out
    assert (await refund_settle("rf:1", key="rf:1:settle", actor="system:wechat")).created is False
    with pytest.raises(RefundAlreadyResolved):
        await refund_void("rf:1", key="rf:1:void", actor="system:wechat")

    await refund_hold(account.id, Channel.WECHAT, 300, key="rf:2", actor=STAFF)
    voided = await refund_void("rf:2", key="rf:2:void", actor="system:wechat")
    assert voided.balance_after_fen == 400
    with pytest.raises(RefundAlreadyResolved):
        await refund_settle("rf:2", key="rf:2:settle", actor="system:wechat")
    assert await _balance(account) == 400
    assert await balance_of("refunds_payable") == 0


async def test_ledger_rows_cannot_be_updated(db: None) -> None:
    account = await create_account()
    await recharge(account.id, Channel.CASH, 100, key="cash:imm", actor=STAFF)
    conn = connections.get("default")
    with pytest.raises(OperationalError):
        await conn.execute_query("UPDATE ledger_leg SET amount_fen = amount_fen * 2")


@pytest.mark.postgres
async def test_deferred_trigger_refuses_an_unbalanced_commit(db: None) -> None:
    account = await create_account()
    posted = await recharge(account.id, Channel.CASH, 100, key="cash:t", actor=STAFF)
    leg = await LedgerLeg.filter(transaction_id=posted.transaction_id).first()
    assert leg is not None
    # The INSERT itself succeeds: the deferred trigger only speaks at COMMIT.
    with pytest.raises((CheckViolationError, IntegrityError), match="unbalanced"):
        async with in_transaction() as conn:
            await conn.execute_query(
                "INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
                " VALUES ($1, $2, 1)",
                [posted.transaction_id, leg.ledger_account_id],
            )
    assert await LedgerLeg.filter(transaction_id=posted.transaction_id).count() == 2


@pytest.mark.postgres
async def test_fifteen_concurrent_posts_of_one_key_make_one_transaction(db: None) -> None:
    account = await create_account()
    results = await asyncio.gather(
        *(recharge(account.id, Channel.WECHAT, 2_500, key="wx:storm", actor="tenant:o")
          for _ in range(15))
    )  # fmt: skip
    assert sum(r.created for r in results) == 1
    assert {r.transaction_id for r in results} == {results[0].transaction_id}
    assert {r.balance_after_fen for r in results} == {2_500}
    assert await _balance(account) == 2_500
    assert await LedgerTransaction.all().count() == 1


@pytest.mark.postgres
async def test_concurrent_debits_never_cross_the_floor(db: None) -> None:
    account = await create_account()
    await recharge(account.id, Channel.WECHAT, 1_000, key="wx:c", actor="tenant:o")
    outcomes = await asyncio.gather(
        *(charge(account.id, ChargeType.SERVICE_FEE, 300, key=f"sf:{i}", actor=STAFF)
          for i in range(8)),
        return_exceptions=True,
    )  # fmt: skip
    assert sum(not isinstance(o, Exception) for o in outcomes) == 3
    assert all(isinstance(o, InsufficientBalance) for o in outcomes if isinstance(o, Exception))
    assert await _balance(account) == 100
