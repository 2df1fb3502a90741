"""Notifications that do not simply say "paid": a closed / not-paid status before (or after)
the success of the same order, and a payment for an account closed since its order was made.
After each: the ledger check passes, each order is credited at most once."""

from __future__ import annotations

import pytest

from server.accounts.models import Account, AccountStatus
from server.payments.models import (
    CreditFollowUp,
    EventOutcome,
    OrderStatus,
    PaymentEvent,
    Quarantine,
    QuarantineReason,
    RechargeOrder,
)
from server.payments.poller import poll_once
from server.payments.providers.base import Channel
from server.payments.service import list_quarantine, reason_text
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


@pytest.mark.parametrize("first", ["TRADE_CLOSED", "WAIT_BUYER_PAY"])
async def test_a_status_that_asks_nothing_does_not_block_the_later_success(
    pay_app: PayApp, first: str
) -> None:
    order = await new_order(pay_app, Channel.ALIPAY, 2_500)
    pay_app.sandbox.alipay.notify_trade_status(order.out_trade_no, first)
    await drain(pay_app)
    pay_app.sandbox.alipay.pay(order.out_trade_no, copies=3)
    await drain(pay_app)
    assert all(a.answer == b"success" for a in pay_app.sandbox.alipay.notifier.attempts)
    stored = await RechargeOrder.get(id=order.id)
    assert (stored.status, stored.credited_by) == (OrderStatus.PAID, "notify")
    assert await credits_of(order) == 1 and await balance(order.account_id) == 2_500
    events = {e.external_id: e.outcome for e in await PaymentEvent.all()}
    status = "CLOSED" if first == "TRADE_CLOSED" else "NOTPAY"
    assert events == {
        f"{status}:{order.out_trade_no}": EventOutcome.IGNORED,
        order.out_trade_no: EventOutcome.CREDITED,
    }
    assert await CreditFollowUp.filter(account_id=order.account_id).count() == 1
    assert (await poll_once(pay_app.payments)).credited == 0
    assert await credits_of(order) == 1
    await assert_ledger_sound()


async def test_closed_after_success_changes_nothing(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.ALIPAY, 700)
    pay_app.sandbox.alipay.pay(order.out_trade_no)
    await drain(pay_app)
    pay_app.sandbox.alipay.notify_trade_status(order.out_trade_no, "TRADE_CLOSED")
    pay_app.sandbox.alipay.notify_payment(order.out_trade_no)
    await drain(pay_app)
    assert await credits_of(order) == 1 and await balance(order.account_id) == 700
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.PAID
    assert await PaymentEvent.all().count() == 2
    await assert_ledger_sound()


async def test_closed_then_poller_then_success_credits_once(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.ALIPAY, 900)
    pay_app.sandbox.alipay.notify_trade_status(order.out_trade_no, "TRADE_CLOSED")
    await drain(pay_app)
    pay_silently(pay_app, order)
    assert (await poll_once(pay_app.payments)).credited == 1
    pay_app.sandbox.alipay.notify_payment(order.out_trade_no, copies=2)
    await drain(pay_app)
    event = await PaymentEvent.get(external_id=order.out_trade_no)
    assert event.outcome == EventOutcome.ALREADY_DONE and event.handled_at is not None
    stored = await RechargeOrder.get(id=order.id)
    assert (stored.status, stored.credited_by) == (OrderStatus.PAID, "poller")
    assert await credits_of(order) == 1 and await balance(order.account_id) == 900
    await assert_ledger_sound()


@pytest.mark.parametrize("channel", [Channel.WECHAT, Channel.ALIPAY])
async def test_a_payment_for_a_closed_account_is_quarantined_and_answered(
    pay_app: PayApp, channel: Channel
) -> None:
    """Stored, quarantined with a reason a person can read, answered so the platform stops
    resending, never credited (not by a resend, not by the poller), and listed."""
    order = await new_order(pay_app, channel, 1_800)
    await Account.filter(id=order.account_id).update(status=AccountStatus.CLOSED)
    platform = pay_app.sandbox.wechat if channel is Channel.WECHAT else pay_app.sandbox.alipay
    platform.pay(order.out_trade_no)
    await drain(pay_app)
    (attempt,) = platform.notifier.attempts  # answered at once: no resend
    assert attempt.accepted
    event = await PaymentEvent.get(external_id=order.out_trade_no)
    assert event.outcome == EventOutcome.QUARANTINED and event.handled_at is not None
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.HELD
    q = await Quarantine.get(out_trade_no=order.out_trade_no)
    assert (q.reason, q.expected_fen, q.notified_fen) == (
        QuarantineReason.ACCOUNT_CLOSED,
        1_800,
        1_800,
    )
    assert q.detail["account_id"] == order.account_id and q.resolved_at is None
    assert reason_text(q.reason) == "账户已销户，付款未入账，需人工退款给付款人"
    site_id = (await Account.get(id=order.account_id)).site_id
    assert [row.id for row in await list_quarantine([site_id])] == [q.id]
    assert await list_quarantine([site_id + 1000]) == []  # another site's staff see nothing
    # Neither a resend nor the poller credits it.
    platform.notify_payment(order.out_trade_no, copies=2)
    await drain(pay_app)
    assert (await poll_once(pay_app.payments)).credited == 0
    assert await credits_of(order) == 0 and await balance(order.account_id) == 0
    assert await CreditFollowUp.all().count() == 0
    assert await Quarantine.all().count() == 1
    await assert_ledger_sound()


async def test_the_poller_quarantines_a_paid_order_of_a_closed_account(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 600)
    await Account.filter(id=order.account_id).update(status=AccountStatus.CLOSED)
    pay_silently(pay_app, order)
    report = await poll_once(pay_app.payments)
    assert (report.credited, report.errors) == (0, [])
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.HELD
    q = await Quarantine.get(out_trade_no=order.out_trade_no)
    assert q.reason == QuarantineReason.ACCOUNT_CLOSED
    assert (await poll_once(pay_app.payments)).credited == 0  # held: not polled again
    assert await credits_of(order) == 0 and await balance(order.account_id) == 0
    await assert_ledger_sound()


async def test_the_quarantine_list_is_scoped_to_the_staff_sites(pay_app: PayApp) -> None:
    """An item naming an order of ours shows to that site's staff only; one naming no order
    of ours (unknown order number) only when the merchant-level list asks for them."""
    order = await new_order(pay_app, Channel.WECHAT)
    site_id = (await Account.get(id=order.account_id)).site_id
    known = await Quarantine.create(
        dedupe_key="t:known", channel=Channel.WECHAT, reason=QuarantineReason.AMOUNT_MISMATCH,
        out_trade_no=order.out_trade_no,
    )  # fmt: skip
    unknown = await Quarantine.create(
        dedupe_key="t:unknown", channel=Channel.WECHAT, reason=QuarantineReason.UNKNOWN_ORDER,
        out_trade_no="R-NOT-OURS",
    )  # fmt: skip
    assert [r.id for r in await list_quarantine([site_id])] == [known.id]
    assert await list_quarantine([site_id + 1000]) == []
    both = await list_quarantine([site_id], unattributed=True)
    assert [r.id for r in both] == [unknown.id, known.id]
    assert [r.id for r in await list_quarantine([], unattributed=True)] == [unknown.id]
