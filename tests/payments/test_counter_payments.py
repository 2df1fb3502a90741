"""Cash and bank-transfer payments at the counter, and balance adjustments."""

from __future__ import annotations

import asyncio

import pytest

from server.audit.models import OperationLog
from server.ledger.errors import InsufficientBalance
from server.payments.errors import ReferenceReused, SamePersonApproval, WrongStatus
from server.payments.models import (
    AdjustmentStatus,
    BalanceAdjustment,
    CounterChannel,
    CounterPayment,
    CreditFollowUp,
)
from server.payments.service import (
    approve_adjustment,
    record_counter_payment,
    reject_adjustment,
    request_adjustment,
)
from tests.factories import create_account
from tests.payments.service_fixtures import assert_ledger_sound, balance, pay_settings


async def test_cash_payment_is_credited_once_per_receipt(db: None) -> None:
    account = await create_account()
    results = await asyncio.gather(
        *[
            record_counter_payment(
                account.id, CounterChannel.CASH, 20_000, "SJ-0001", actor="staff:7"
            )
            for _ in range(5)
        ]
    )
    assert sum(created for _, created in results) == 1
    assert await balance(account.id) == 20_000
    assert await CounterPayment.all().count() == 1
    assert await CreditFollowUp.filter(credit_key="counter:cash:SJ-0001").count() == 1
    assert await OperationLog.filter(action="payment.counter").count() == 1
    await assert_ledger_sound()


async def test_same_reference_with_other_data_is_refused(db: None) -> None:
    account = await create_account()
    await record_counter_payment(account.id, "bank", 500_000, "TR20260301-88", actor="staff:7")
    with pytest.raises(ReferenceReused):
        await record_counter_payment(account.id, "bank", 50_000, "TR20260301-88", actor="staff:7")
    # The same number on the other channel is another payment.
    _, created = await record_counter_payment(
        account.id, "cash", 100, "TR20260301-88", actor="staff:7"
    )
    assert created
    assert await balance(account.id) == 500_100
    await assert_ledger_sound()


async def test_small_adjustment_is_applied_large_needs_another_person(db: None) -> None:
    settings = pay_settings()
    account = await create_account()
    small = await request_adjustment(settings, account.id, 5_000, reason="抄表错误补偿",
                                     actor="staff:1")  # fmt: skip
    assert small.status == AdjustmentStatus.APPLIED
    large = await request_adjustment(settings, account.id, 20_000, reason="合同返还",
                                     actor="staff:1")  # fmt: skip
    assert large.status == AdjustmentStatus.PENDING
    assert await balance(account.id) == 5_000
    with pytest.raises(SamePersonApproval):
        await approve_adjustment(large.id, actor="staff:1")
    await approve_adjustment(large.id, actor="staff:2")
    assert await balance(account.id) == 25_000
    with pytest.raises(WrongStatus):
        await approve_adjustment(large.id, actor="staff:3")
    await assert_ledger_sound()


async def test_negative_adjustment_respects_the_floor_and_rejection_changes_nothing(
    db: None,
) -> None:
    settings = pay_settings()
    account = await create_account()
    with pytest.raises(InsufficientBalance):
        await request_adjustment(settings, account.id, -100, reason="扣回", actor="staff:1")
    assert await BalanceAdjustment.all().count() == 0
    pending = await request_adjustment(settings, account.id, 90_000, reason="x", actor="staff:1")
    await reject_adjustment(pending.id, actor="staff:2", reason="依据不足")
    assert await balance(account.id) == 0
    with pytest.raises(WrongStatus):
        await request_adjustment(settings, account.id, 100, reason="  ", actor="staff:1")
    await assert_ledger_sound()
