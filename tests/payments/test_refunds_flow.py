"""Refunds end to end against the sandbox: two-phase ledger, two-person approval, refunded ≤
paid, balance permitting, retries with the same number, notices in any order."""

from __future__ import annotations

import pytest

from server.ledger import service as ledger
from server.ledger.errors import InsufficientBalance
from server.ledger.posting import ChargeType
from server.payments.errors import RefundExceedsPaid, SamePersonApproval, WrongStatus
from server.payments.models import RechargeOrder, Refund, RefundStatus
from server.payments.poller import poll_once
from server.payments.providers.base import Channel
from server.payments.service import (
    approve_refund,
    hold_key,
    reject_refund,
    request_refund,
)
from server.payments.service.refunds import refund_key
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    assert_ledger_sound,
    balance,
    credits_of,
    drain,
    new_order,
    pay_app_fixture,
    pay_silently,
)


async def paid_order(pay: PayApp, channel: Channel, amount: int) -> RechargeOrder:
    order = await new_order(pay, channel, amount)
    if channel is Channel.WECHAT:
        pay.sandbox.wechat.pay(order.out_trade_no)
    else:
        pay.sandbox.alipay.pay(order.out_trade_no)
    await drain(pay)
    assert await credits_of(order) == 1
    return order


async def settled(refund: Refund) -> bool:
    keys = [hold_key(refund.out_refund_no), refund_key(refund.out_refund_no, "settle")]
    return all([await ledger.load(k) for k in keys])


@pytest.mark.parametrize("channel", [Channel.WECHAT, Channel.ALIPAY])
async def test_small_refund_goes_through_and_settles_once(
    pay_app: PayApp, channel: Channel
) -> None:
    order = await paid_order(pay_app, channel, 10_000)
    refund = await request_refund(
        pay_app.payments, order.out_trade_no, 3_000, reason="退租", actor="staff:1"
    )
    await drain(pay_app)  # WeChat answers PROCESSING; its REFUND.SUCCESS notice settles
    refund = await Refund.get(id=refund.id)
    assert refund.status == RefundStatus.SUCCEEDED and refund.attempts == 1
    assert await settled(refund)
    assert await balance(order.account_id) == 7_000
    assert (await RechargeOrder.get(id=order.id)).refunded_fen == 3_000
    # A replayed refund notice changes nothing.
    if channel is Channel.WECHAT:
        pay_app.sandbox.wechat.notify_refund(refund.out_refund_no, copies=3)
    else:
        pay_app.sandbox.alipay.notify_refund(order.out_trade_no, refund.out_refund_no, copies=3)
    await drain(pay_app)
    assert await balance(order.account_id) == 7_000
    await assert_ledger_sound()


async def test_large_refund_needs_a_second_person(pay_app: PayApp) -> None:
    order = await paid_order(pay_app, Channel.WECHAT, 100_000)
    refund = await request_refund(
        pay_app.payments, order.out_trade_no, 60_000, reason="多缴退回", actor="staff:1"
    )
    assert refund.status == RefundStatus.PENDING
    assert await balance(order.account_id) == 40_000  # held meanwhile
    with pytest.raises(SamePersonApproval):
        await approve_refund(pay_app.payments, refund.id, actor="staff:1")
    refund = await approve_refund(pay_app.payments, refund.id, actor="staff:2")
    await drain(pay_app)
    refund = await Refund.get(id=refund.id)
    assert (refund.status, refund.approved_by) == (RefundStatus.SUCCEEDED, "staff:2")
    assert await balance(order.account_id) == 40_000
    await assert_ledger_sound()


async def test_rejected_refund_gives_the_money_back(pay_app: PayApp) -> None:
    order = await paid_order(pay_app, Channel.WECHAT, 100_000)
    refund = await request_refund(
        pay_app.payments, order.out_trade_no, 80_000, reason="退租", actor="staff:1"
    )
    await reject_refund(refund.id, actor="staff:2", reason="核实后不退")
    assert (await Refund.get(id=refund.id)).status == RefundStatus.REJECTED
    assert await balance(order.account_id) == 100_000
    assert (await RechargeOrder.get(id=order.id)).refunded_fen == 0
    with pytest.raises(WrongStatus):
        await approve_refund(pay_app.payments, refund.id, actor="staff:3")
    await assert_ledger_sound()


async def test_refunded_never_exceeds_paid_nor_the_balance(pay_app: PayApp) -> None:
    order = await paid_order(pay_app, Channel.WECHAT, 10_000)
    await request_refund(pay_app.payments, order.out_trade_no, 6_000, reason="a", actor="staff:1")
    with pytest.raises(RefundExceedsPaid):
        await request_refund(
            pay_app.payments, order.out_trade_no, 4_001, reason="b", actor="staff:1"
        )
    # The tenant used electricity meanwhile: the refund must wait for the balance.
    await ledger.charge(order.account_id, ChargeType.ELECTRICITY, 3_000, key="use:1", actor="t")
    with pytest.raises(InsufficientBalance):
        await request_refund(
            pay_app.payments, order.out_trade_no, 4_000, reason="c", actor="staff:1"
        )
    assert await Refund.all().count() == 1  # the refused requests left nothing behind
    await drain(pay_app)
    assert await balance(order.account_id) == 1_000
    await assert_ledger_sound()


async def test_refund_retried_with_the_same_number_after_a_network_error(
    pay_app: PayApp,
) -> None:
    order = await paid_order(pay_app, Channel.WECHAT, 10_000)
    real_base = pay_app.sandbox.wechat.base_url
    provider = pay_app.payments.providers[Channel.WECHAT]
    sdk = await provider._sdk()  # type: ignore[attr-defined]
    sdk._core._gate_way = "http://127.0.0.1:9"  # the platform is unreachable
    refund = await request_refund(
        pay_app.payments, order.out_trade_no, 2_000, reason="退租", actor="staff:1"
    )
    refund = await Refund.get(id=refund.id)
    assert refund.status == RefundStatus.PROCESSING and refund.last_error
    sdk._core._gate_way = real_base
    await poll_once(pay_app.payments)  # sends again, same out_refund_no
    await drain(pay_app)
    refund = await Refund.get(id=refund.id)
    assert (refund.status, refund.attempts) == (RefundStatus.SUCCEEDED, 2)
    assert list(pay_app.sandbox.wechat.refunds) == [refund.out_refund_no]
    assert await balance(order.account_id) == 8_000
    await assert_ledger_sound()


async def test_closed_refund_is_voided(pay_app: PayApp) -> None:
    order = await paid_order(pay_app, Channel.WECHAT, 10_000)
    pay_app.sandbox.wechat.auto_complete_refunds = False
    refund = await request_refund(
        pay_app.payments, order.out_trade_no, 2_500, reason="退租", actor="staff:1"
    )
    assert (await Refund.get(id=refund.id)).status == RefundStatus.PROCESSING
    pay_app.sandbox.wechat.complete_refund(refund.out_refund_no, status="CLOSED")
    await drain(pay_app)
    assert (await Refund.get(id=refund.id)).status == RefundStatus.FAILED
    assert await balance(order.account_id) == 10_000
    assert (await RechargeOrder.get(id=order.id)).refunded_fen == 0
    await assert_ledger_sound()


async def test_refund_notice_before_the_payment_notice(pay_app: PayApp) -> None:
    """The payment notice is late: the poller credits, a refund is made and its notice
    arrives, and only then the payment notice comes. Nothing is credited twice."""
    order = await new_order(pay_app, Channel.WECHAT, 10_000)
    pay_silently(pay_app, order)
    await poll_once(pay_app.payments)
    refund = await request_refund(
        pay_app.payments, order.out_trade_no, 1_000, reason="退租", actor="staff:1"
    )
    await drain(pay_app)
    assert (await Refund.get(id=refund.id)).status == RefundStatus.SUCCEEDED
    pay_app.sandbox.wechat.notify_payment(order.out_trade_no, copies=3)
    await drain(pay_app)
    assert await credits_of(order) == 1
    assert await balance(order.account_id) == 9_000
    await assert_ledger_sound()


async def test_refund_notice_for_an_unknown_refund_is_quarantined(pay_app: PayApp) -> None:
    from server.payments.models import Quarantine, QuarantineReason

    order = await paid_order(pay_app, Channel.WECHAT, 10_000)
    pay_app.sandbox.wechat.auto_complete_refunds = False
    refund = await request_refund(
        pay_app.payments, order.out_trade_no, 1_000, reason="退租", actor="staff:1"
    )
    await Refund.filter(id=refund.id).update(out_refund_no="F-not-ours")
    pay_app.sandbox.wechat.complete_refund(refund.out_refund_no)
    await drain(pay_app)
    q = await Quarantine.get(out_refund_no=refund.out_refund_no)
    assert q.reason == QuarantineReason.UNKNOWN_REFUND
    assert await balance(order.account_id) == 9_000  # still held, nothing settled
    await assert_ledger_sound()
