"""post_batch (billing's rounds, the payment inbox's group commit): the rows written are the
rows post() would write one by one, a caller's columns are set on the same account rows, and
a batch that cannot post entirely says which posting refused and leaves nothing once the
caller rolls back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.ledger import Channel, ChargeType, Leg, TxKind, load, recharge
from server.ledger.batch import BatchNotPosted, post_batch
from server.ledger.check import check_ledger
from server.ledger.errors import AccountClosed, InsufficientBalance, UnbalancedTransaction
from server.ledger.models import LedgerTransaction
from server.ledger.posting import Posting, charge_legs, recharge_posting
from server.ledger.sql import Col
from server.ledger.write import RowColumns
from tests.factories import create_account


async def _balance(account: Account) -> int:
    await account.refresh_from_db()
    return account.balance_fen


def _charge(account_id: int, fen: int, key: str, *, arrears: bool = False) -> Posting:
    legs = charge_legs(account_id, ChargeType.SERVICE_FEE, fen)
    return Posting(key, TxKind.CHARGE, legs, "服务费", "staff:1", None, arrears, True)


async def test_a_batch_writes_what_posting_one_by_one_writes(db: None) -> None:
    a, b = await create_account(), await create_account()
    await recharge(a.id, Channel.CASH, 500, key="cash:a", actor="t")
    batch = [
        recharge_posting(a.id, Channel.WECHAT, 1_000, key="wx:1", actor="system:pay-notify"),
        recharge_posting(b.id, Channel.ALIPAY, 250, key="ali:1", actor="system:pay-notify"),
        _charge(a.id, 1_400, "sf:1"),
        recharge_posting(a.id, Channel.WECHAT, 30, key="wx:2", actor="system:pay-notify"),
    ]
    async with in_transaction():
        posted = (await post_batch(batch)).posted
    assert [p.key for p in posted] == ["wx:1", "ali:1", "sf:1", "wx:2"]
    assert all(p.created for p in posted)
    # Each transaction's balance after is the wallet's balance at its place in the batch.
    assert [p.balance_after_fen for p in posted] == [1_500, 250, 100, 130]
    assert (await _balance(a), await _balance(b)) == (130, 250)
    for p, want in zip(posted, batch, strict=True):
        stored = await load(p.key)
        assert stored.id == p.transaction_id
        assert stored.kind is want.kind
        assert stored.legs == want.legs  # in leg order
        assert stored.balance_after_fen == p.balance_after_fen
        assert stored.account_id == (a.id if p.key != "ali:1" else b.id)
    assert await check_ledger() == []


async def test_a_key_posted_before_refuses_the_batch_and_rollback_leaves_nothing(
    db: None,
) -> None:
    a, b = await create_account(), await create_account()
    await recharge(a.id, Channel.WECHAT, 1_000, key="wx:taken", actor="t")
    batch = [
        recharge_posting(b.id, Channel.WECHAT, 300, key="wx:new", actor="t"),
        recharge_posting(a.id, Channel.WECHAT, 1_000, key="wx:taken", actor="t"),
    ]
    with pytest.raises(BatchNotPosted) as caught:
        async with in_transaction():
            await post_batch(batch)
    assert caught.value.refused == {1: None}
    assert (await _balance(a), await _balance(b)) == (1_000, 0)
    assert await LedgerTransaction.all().count() == 1
    assert await check_ledger() == []


async def test_a_closed_wallet_refuses_the_batch_naming_its_posting(db: None) -> None:
    a = await create_account()
    closed = await create_account(status=AccountStatus.CLOSED)
    batch = [
        recharge_posting(a.id, Channel.WECHAT, 300, key="wx:a", actor="t"),
        recharge_posting(closed.id, Channel.WECHAT, 300, key="wx:closed", actor="t"),
    ]
    with pytest.raises(BatchNotPosted) as caught:
        async with in_transaction():
            await post_batch(batch)
    assert list(caught.value.refused) == [1]
    assert isinstance(caught.value.refused[1], AccountClosed)
    assert await _balance(a) == 0
    assert await LedgerTransaction.all().count() == 0


async def test_the_floor_is_checked_at_every_step_of_the_batch_in_order(db: None) -> None:
    a = await create_account()
    await recharge(a.id, Channel.CASH, 100, key="cash:a", actor="t")
    # +500 then −550 passes (lowest 50); −550 then +500 does not, though the total is the same.
    ok = [
        recharge_posting(a.id, Channel.WECHAT, 500, key="wx:up", actor="t"),
        _charge(a.id, 550, "sf:down"),
    ]
    async with in_transaction():
        await post_batch(ok)
    assert await _balance(a) == 50
    refused = [_charge(a.id, 550, "sf:down2"), recharge_posting(a.id, Channel.WECHAT, 600,
               key="wx:up2", actor="t")]  # fmt: skip
    with pytest.raises(BatchNotPosted) as caught:
        async with in_transaction():
            await post_batch(refused)
    assert isinstance(caught.value.refused[0], InsufficientBalance)
    # Usage already consumed may go into arrears, in a batch as one by one.
    async with in_transaction():
        posted = (await post_batch([_charge(a.id, 80, "use:1", arrears=True)])).posted
    assert posted[0].balance_after_fen == -30
    assert await check_ledger() == []


async def test_a_batch_refuses_what_post_refuses_before_writing(db: None) -> None:
    a = await create_account()
    legs = (Leg(f"wallet:{a.id}", 5), Leg("adjustments", -4))
    unbalanced = Posting("x:1", TxKind.ADJUSTMENT, legs, "调账", "staff:1")
    async with in_transaction():
        with pytest.raises(UnbalancedTransaction):
            await post_batch([unbalanced])
        twice = recharge_posting(a.id, Channel.WECHAT, 1, key="wx:same", actor="t")
        with pytest.raises(UnbalancedTransaction):
            await post_batch([twice, twice])
    with pytest.raises(RuntimeError):
        await post_batch([twice])  # outside a transaction: not all-or-nothing, refused
    assert await LedgerTransaction.all().count() == 0


async def test_batches_of_every_size(db: None) -> None:
    accounts = [await create_account() for _ in range(9)]
    n = 0
    for size in (1, 3, 4, 5, 17, 64, 65, 2_500):
        batch = [
            recharge_posting(
                accounts[i % 9].id, Channel.WECHAT, 100 + i, key=f"wx:{n + i}", actor="t"
            )
            for i in range(size)
        ]
        n += size
        async with in_transaction():
            posted = (await post_batch(batch)).posted
        assert [p.key for p in posted] == [p.key for p in batch]
    assert await LedgerTransaction.all().count() == n
    assert await check_ledger() == []


ELECTRICITY = (Col("electricity_carry_fen", "text"), Col("electricity_tier_start", "timestamptz"),
               Col("electricity_cumulative", "text"))  # fmt: skip
WATER = (Col("water_carry_fen", "text"), Col("water_tier_start", "timestamptz"),
         Col("water_cumulative", "text"))  # fmt: skip
AT = datetime(2026, 7, 1, tzinfo=UTC)


async def test_a_callers_columns_go_on_the_same_account_rows(db: None) -> None:
    charged, water_only, carry_only = [await create_account() for _ in range(3)]
    columns = RowColumns(
        (ELECTRICITY, WATER),
        (
            {charged.id: ("0.25", AT, "12.5"), carry_only.id: ("0.5", None, "3")},
            {water_only.id: ("0.75", None, "7")},
        ),
    )
    async with in_transaction():
        written = await post_batch(
            [_charge(charged.id, 40, "use:a", arrears=True)], columns=columns
        )
    # Every row named is updated (its balance returned), with a posting or without.
    assert written.balances == {charged.id: -40, water_only.id: 0, carry_only.id: 0}
    assert written.posted[0].balance_after_fen == -40
    ids = [charged.id, water_only.id, carry_only.id]
    rows = {a.id: a for a in await Account.filter(id__in=ids)}
    a, w, c = rows[charged.id], rows[water_only.id], rows[carry_only.id]
    assert (a.balance_fen, a.electricity_carry_fen, a.electricity_cumulative) == (
        -40,
        "0.25",
        "12.5",
    )
    assert a.electricity_tier_start == AT
    # A group an account is not named in keeps its values.
    assert (a.water_carry_fen, w.electricity_carry_fen) == ("0", "0")
    assert (w.water_carry_fen, w.water_cumulative, w.balance_fen) == ("0.75", "7", 0)
    assert (c.electricity_carry_fen, c.balance_fen) == ("0.5", 0)
    assert await check_ledger() == []


async def test_a_batch_sets_no_ledger_column_for_its_caller(db: None) -> None:
    with pytest.raises(ValueError):
        RowColumns(((Col("balance_fen", "bigint"),),), ({},))
    with pytest.raises(ValueError):
        RowColumns(((Col("x = 1, balance_fen", "bigint"),),), ({},))
