"""The order-query poller, its race with notifications, expiry, and durable follow-ups."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from server.payments.models import CreditFollowUp, EventOutcome, OrderStatus, RechargeOrder
from server.payments.poller import poll_once
from server.payments.providers.base import Channel
from server.payments.service import (
    credit_order,
    run_pending_followups,
)
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


@pytest.mark.parametrize("channel", [Channel.WECHAT, Channel.ALIPAY])
async def test_poller_credits_a_paid_order_whose_notification_never_came(
    pay_app: PayApp, channel: Channel
) -> None:
    order = await new_order(pay_app, channel, 4_200)
    pay_silently(pay_app, order)
    report = await poll_once(pay_app.payments)
    assert report.credited == 1 and report.errors == []
    stored = await RechargeOrder.get(id=order.id)
    assert (stored.status, stored.credited_by) == (OrderStatus.PAID, "poller")
    assert stored.paid_at is not None
    # The late notification afterwards is a no-op.
    if channel is Channel.WECHAT:
        pay_app.sandbox.wechat.notify_payment(order.out_trade_no, copies=2)
    else:
        pay_app.sandbox.alipay.notify_payment(order.out_trade_no, copies=2)
    await drain(pay_app)
    assert await credits_of(order) == 1
    assert await balance(order.account_id) == 4_200
    assert (await poll_once(pay_app.payments)).credited == 0
    await assert_ledger_sound()


async def test_poller_racing_the_notification_credits_once(pay_app: PayApp) -> None:
    orders = [await new_order(pay_app, Channel.WECHAT, 1_000 + i) for i in range(5)]
    for order in orders:
        pay_silently(pay_app, order)
    for order in orders:  # notifications and two poller rounds all at once
        pay_app.sandbox.wechat.notify_payment(order.out_trade_no, copies=3)
    await asyncio.gather(poll_once(pay_app.payments), poll_once(pay_app.payments))
    await drain(pay_app)
    for i, order in enumerate(orders):
        assert await credits_of(order) == 1
        assert await balance(order.account_id) == 1_000 + i
    await assert_ledger_sound()


async def test_unpaid_orders_expire_and_are_closed_at_the_platform(pay_app: PayApp) -> None:
    wechat = await new_order(pay_app, Channel.WECHAT, 500)
    alipay = await new_order(pay_app, Channel.ALIPAY, 500)  # never scanned: unknown there
    early = await poll_once(pay_app.payments)
    assert (early.expired, early.credited) == (0, 0)
    later = datetime.now(UTC) + timedelta(hours=1)
    report = await poll_once(pay_app.payments, now=later)
    assert report.expired == 2, report.errors
    assert (await RechargeOrder.get(id=wechat.id)).status == OrderStatus.EXPIRED
    assert (await RechargeOrder.get(id=alipay.id)).status == OrderStatus.EXPIRED
    assert pay_app.sandbox.wechat.orders[wechat.out_trade_no].state == "CLOSED"


async def test_killed_between_ledger_commit_and_follow_up(pay_app: PayApp) -> None:
    """The credit and its follow-up marker commit together; the follow-up itself never ran
    (the process died). The next poller round finishes it, through the metering service."""
    order = await new_order(pay_app, Channel.WECHAT, 2_500)
    pay_silently(pay_app, order)
    result = await credit_order(
        Channel.WECHAT, order.out_trade_no, amount_fen=2_500, transaction_id="42x",
        paid_at=None, source="notify",
    )  # fmt: skip
    assert result.outcome is EventOutcome.CREDITED
    # ... killed here: run_followups(result.followup_key) never happens.
    pending = await CreditFollowUp.get(credit_key=result.followup_key)
    assert pending.done_at is None
    report = await poll_once(pay_app.payments, now=datetime.now(UTC) + timedelta(minutes=5))
    assert report.followups_done == 1
    assert (await CreditFollowUp.get(id=pending.id)).done_at is not None
    assert await credits_of(order) == 1
    await assert_ledger_sound()


async def test_a_failing_follow_up_stays_pending_and_is_retried(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 900)
    pay_silently(pay_app, order)
    calls: list[str] = []

    async def down(account_id: int, reason: str, credit_key: str) -> None:
        calls.append(credit_key)
        raise ConnectionError("metering unavailable")

    report = await poll_once(pay_app.payments, handler=down)
    assert report.credited == 1 and report.followups_done == 0 and len(calls) == 1
    item = await CreditFollowUp.get(account_id=order.account_id)
    assert (item.done_at, item.attempts) == (None, 1)
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await run_pending_followups(now=later) == 1  # the real seam this time
    assert (await CreditFollowUp.get(id=item.id)).done_at is not None
    assert await credits_of(order) == 1
    await assert_ledger_sound()


async def test_killed_mid_request_the_resend_completes_the_event(pay_app: PayApp) -> None:
    """The inbox row was stored but the process died before handling: the platform's resend
    finds it unhandled and handles it once."""
    from server.payments.models import PaymentEvent

    order = await new_order(pay_app, Channel.WECHAT, 700)
    await PaymentEvent.create(
        channel=Channel.WECHAT, external_id=order.out_trade_no, kind="payment", body="{}"
    )
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    event = await PaymentEvent.get(external_id=order.out_trade_no)
    assert event.outcome == EventOutcome.CREDITED
    assert await credits_of(order) == 1
    await assert_ledger_sound()
