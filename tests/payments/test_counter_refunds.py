"""Counter refunds (cash / bank transfer): two-phase in the ledger, paid at once up to the
approval threshold, a second person above it, once per request key, scoped to sites."""

from __future__ import annotations

import pytest

from server.accounts.models import Account
from server.core.errors import NotFound
from server.ledger import InsufficientBalance, load
from server.ledger import service as ledger
from server.ledger.check import check_ledger
from server.ledger.posting import Channel, TxKind, clearing
from server.payments.config import PaymentSettings
from server.payments.errors import AmountOutOfLimits, ReferenceReused, SamePersonApproval
from server.payments.models import CounterRefund, CounterRefundStatus
from server.payments.service import (
    approve_counter_refund,
    reject_counter_refund,
    request_counter_refund,
)
from server.payments.service.counter_refunds import counter_refund_key, refund_lines
from tests.factories import create_account

SETTINGS = PaymentSettings(refund_approval_above_fen=5_000)


async def _funded(fen: int) -> Account:
    account = await create_account()
    await ledger.recharge(account.id, Channel.CASH, fen, key=f"cash:{account.id}", actor="s:1")
    return account


async def test_small_refund_is_paid_at_once_and_once_per_key(db: None) -> None:
    account = await _funded(10_000)
    till = await ledger.balance_of(clearing(Channel.CASH))
    refund = await request_counter_refund(
        SETTINGS, account.id, "cash", 3_000, reason="退余额", actor="staff:1", request_key="k1"
    )
    again = await request_counter_refund(
        SETTINGS, account.id, "cash", 3_000, reason="退余额", actor="staff:1", request_key="k1"
    )
    assert again.id == refund.id and refund.status is CounterRefundStatus.PAID
    assert (await Account.get(id=account.id)).balance_fen == 7_000
    assert await ledger.balance_of(clearing(Channel.CASH)) == till + 3_000  # out of the till
    assert (await load(counter_refund_key(refund.number, "settle"))).kind is TxKind.REFUND_SETTLE
    with pytest.raises(ReferenceReused):
        await request_counter_refund(
            SETTINGS, account.id, "cash", 1_000, reason="x", actor="staff:1", request_key="k1"
        )
    assert await check_ledger() == []


async def test_large_refund_waits_for_a_second_person_or_is_rejected(db: None) -> None:
    account = await _funded(20_000)
    refund = await request_counter_refund(
        SETTINGS, account.id, "bank", 8_000, reason="退余额", actor="staff:1",
        request_key="k2", payee_account="6222 1234",
    )  # fmt: skip
    assert refund.status is CounterRefundStatus.PENDING
    assert (await Account.get(id=account.id)).balance_fen == 12_000  # held meanwhile
    with pytest.raises(NotFound):
        await approve_counter_refund([account.site_id + 99], refund.id, actor="staff:2")
    with pytest.raises(SamePersonApproval):
        await approve_counter_refund([account.site_id], refund.id, actor="staff:1")
    lines = await refund_lines([account.site_id], pending_only=True)
    assert [(line.kind, line.number) for line in lines] == [("counter", refund.number)]
    await approve_counter_refund([account.site_id], refund.id, actor="staff:2")
    paid = await CounterRefund.get(id=refund.id)
    assert (paid.status, paid.approved_by) == (CounterRefundStatus.PAID, "staff:2")

    other = await request_counter_refund(
        SETTINGS, account.id, "cash", 6_000, reason="退余额", actor="staff:1", request_key="k3"
    )
    await reject_counter_refund([account.site_id], other.id, actor="staff:2", reason="核实有误")
    assert (await CounterRefund.get(id=other.id)).status is CounterRefundStatus.REJECTED
    assert (await Account.get(id=account.id)).balance_fen == 12_000  # back in the wallet
    assert await check_ledger() == []


async def test_refused_requests_write_nothing(db: None) -> None:
    account = await _funded(1_000)
    with pytest.raises(InsufficientBalance):
        await request_counter_refund(
            SETTINGS, account.id, "cash", 1_001, reason="x", actor="staff:1", request_key="k4"
        )
    with pytest.raises(AmountOutOfLimits):  # a bank transfer needs the payee's account
        await request_counter_refund(
            SETTINGS, account.id, "bank", 500, reason="x", actor="staff:1", request_key="k5"
        )
    assert await CounterRefund.all().count() == 0
    assert (await Account.get(id=account.id)).balance_fen == 1_000
