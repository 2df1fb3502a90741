"""Payment notifications over real HTTP from the sandbox to our app: storms, forgeries,
quarantine, fail-closed. After each: the ledger check passes, each order credited once."""

from __future__ import annotations

import pytest

from server.payments.models import (
    EventOutcome,
    OrderStatus,
    PaymentEvent,
    Quarantine,
    QuarantineReason,
    RechargeOrder,
)
from server.payments.providers.base import Channel, RejectReason
from server.payments.sandbox import AlipayFault, WechatFault
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    assert_ledger_sound,
    balance,
    credits_of,
    drain,
    new_order,
    pay_app_fixture,
)


async def test_wechat_storm_of_15_concurrent_copies_credits_once(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 12_345)
    deliveries = pay_app.sandbox.wechat.pay(order.out_trade_no, copies=15)
    await drain(pay_app)
    attempts = pay_app.sandbox.wechat.notifier.attempts
    assert {a.delivery for a in attempts if a.accepted} == set(deliveries)
    assert all(a.status == 204 for a in attempts)
    assert await credits_of(order) == 1
    assert await balance(order.account_id) == 12_345
    stored = await RechargeOrder.get(id=order.id)
    assert (stored.status, stored.credited_by) == (OrderStatus.PAID, "notify")
    assert stored.transaction_id.startswith("42")
    event = await PaymentEvent.get(channel=Channel.WECHAT, external_id=order.out_trade_no)
    assert event.outcome == EventOutcome.CREDITED and event.handled_at is not None
    assert await PaymentEvent.all().count() == 1
    await assert_ledger_sound()


async def test_alipay_storm_of_15_concurrent_copies_credits_once(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.ALIPAY, 5_000)
    pay_app.sandbox.alipay.pay(order.out_trade_no, copies=15)
    await drain(pay_app)
    attempts = pay_app.sandbox.alipay.notifier.attempts
    assert len(attempts) == 15 and all(a.answer == b"success" for a in attempts)
    assert await credits_of(order) == 1
    assert await balance(order.account_id) == 5_000
    await assert_ledger_sound()


async def test_replay_after_handling_is_a_no_op(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 800)
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    pay_app.sandbox.wechat.notify_payment(order.out_trade_no, copies=3)
    await drain(pay_app)
    assert await credits_of(order) == 1
    assert await balance(order.account_id) == 800
    await assert_ledger_sound()


@pytest.mark.parametrize(
    "fault",
    [
        WechatFault.SIGNTEST,
        WechatFault.STALE_TIMESTAMP,
        WechatFault.BAD_SIGNATURE,
        WechatFault.UNKNOWN_SERIAL,
    ],
)
async def test_forged_wechat_notifications_are_refused(pay_app: PayApp, fault: WechatFault) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    pay_app.sandbox.wechat.pay(order.out_trade_no, fault=fault)
    await drain(pay_app)
    (attempt,) = pay_app.sandbox.wechat.notifier.attempts
    assert attempt.status == 401 and b'"code":"FAIL"' in attempt.answer
    assert await credits_of(order) == 0
    assert await balance(order.account_id) == 0
    assert await PaymentEvent.all().count() == 0  # nothing believed, nothing stored
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.CREATED
    await assert_ledger_sound()


async def test_wechat_amount_mismatch_is_quarantined_never_credited(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    pay_app.sandbox.wechat.pay(order.out_trade_no, fault=WechatFault.AMOUNT_MISMATCH)
    await drain(pay_app)
    assert pay_app.sandbox.wechat.notifier.attempts[-1].status == 204  # stop the resends
    assert await credits_of(order) == 0
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.HELD
    q = await Quarantine.get(out_trade_no=order.out_trade_no)
    assert (q.reason, q.expected_fen, q.notified_fen) == (
        QuarantineReason.AMOUNT_MISMATCH,
        1_000,
        1_001,
    )
    # A correct copy later (or the poller) does not credit a held order by itself.
    pay_app.sandbox.wechat.notify_payment(order.out_trade_no)
    await drain(pay_app)
    assert await credits_of(order) == 0
    await assert_ledger_sound()


async def test_alipay_amount_mismatch_and_bad_signature(pay_app: PayApp) -> None:
    held = await new_order(pay_app, Channel.ALIPAY, 2_000)
    forged = await new_order(pay_app, Channel.ALIPAY, 3_000)
    pay_app.sandbox.alipay.pay(held.out_trade_no, fault=AlipayFault.AMOUNT_MISMATCH)
    pay_app.sandbox.alipay.pay(forged.out_trade_no, fault=AlipayFault.BAD_SIGNATURE)
    await drain(pay_app)
    assert await credits_of(held) == 0 and await credits_of(forged) == 0
    assert (await RechargeOrder.get(id=held.id)).status == OrderStatus.HELD
    assert (await RechargeOrder.get(id=forged.id)).status == OrderStatus.CREATED
    assert await Quarantine.filter(reason=QuarantineReason.AMOUNT_MISMATCH).count() == 1
    await assert_ledger_sound()


async def test_wrong_merchant_is_refused_and_quarantined(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    pay_app.sandbox.wechat.pay(order.out_trade_no, fault=WechatFault.WRONG_MCHID)
    await drain(pay_app)
    assert pay_app.sandbox.wechat.notifier.attempts[-1].status == 401
    assert await credits_of(order) == 0
    assert await Quarantine.filter(reason=QuarantineReason.WRONG_MERCHANT).count() == 1


async def test_unknown_order_is_quarantined(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    await RechargeOrder.filter(id=order.id).update(out_trade_no="R-someone-elses-1")
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    q = await Quarantine.get(out_trade_no=order.out_trade_no)
    assert q.reason == QuarantineReason.UNKNOWN_ORDER
    assert await balance(order.account_id) == 0
    await assert_ledger_sound()


async def test_no_key_configured_refuses_everything(pay_app: PayApp) -> None:
    from server.payments.providers.wechat import WechatPayConfig, WechatPayProvider
    from server.payments.service import receive_notification
    from server.payments.service.runtime import Payments

    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    unconfigured = WechatPayProvider(WechatPayConfig("", "", "", "", "", "", ""))
    pay_app.payments.providers[Channel.WECHAT] = unconfigured
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    assert {a.status for a in pay_app.sandbox.wechat.notifier.attempts} == {401}
    assert await credits_of(order) == 0
    from server.payments.providers.base import NotificationRejected

    with pytest.raises(NotificationRejected) as info:
        await receive_notification(Payments(pay_app.payments.settings), "alipay", {}, b"x=1")
    assert info.value.reason is RejectReason.NOT_CONFIGURED


async def test_redis_unavailable_changes_nothing(
    db: None,
    settings,
    sandbox,
    wechat,
    alipay,  # type: ignore[no-untyped-def]
) -> None:
    """Payments never rely on Redis: with the app's Redis pointing at a closed port, a storm
    is still credited exactly once (the database constraints decide)."""
    from tests.payments.service_fixtures import serving

    no_redis = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with serving(no_redis, sandbox, wechat, alipay) as pay:
        order = await new_order(pay, Channel.WECHAT, 3_300)
        pay.sandbox.wechat.pay(order.out_trade_no, copies=15)
        await drain(pay)
        assert await credits_of(order) == 1
        assert await balance(order.account_id) == 3_300
    await assert_ledger_sound()


async def test_demo_pay_completes_through_the_sandbox(pay_app: PayApp) -> None:
    from server.payments.demo import start_sandbox_for_demo
    from server.payments.service import create_recharge_order
    from tests.factories import create_account

    demo = await start_sandbox_for_demo(pay_app.url)
    pay_app.app.ctx.payments = demo.payments
    try:
        account = await create_account()
        order, created = await create_recharge_order(
            demo.payments, account.id, "wechat", 5_000, actor="tenant:o-demo",
            payer_openid="o-demo",
        )  # fmt: skip
        assert created.pay_params.package.startswith("prepay_id=")  # type: ignore[union-attr]
        demo.pay(order.channel, order.out_trade_no)
        await demo.sandbox.wechat.notifier.drain()
        assert await credits_of(order) == 1
        assert await balance(account.id) == 5_000
    finally:
        pay_app.app.ctx.payments = pay_app.payments
        await demo.aclose()
