"""The notification hot path in one transaction, and follow-ups run in batches per account:
what the shortcuts must not change (a failed handling keeps the raw event and writes nothing
else; follow-ups stay durable and run once per account)."""

from __future__ import annotations

from datetime import UTC, datetime

from server.accounts.models import Account
from server.payments.models import (
    CreditFollowUp,
    EventOutcome,
    OrderStatus,
    PaymentEvent,
    RechargeOrder,
)
from server.payments.providers.base import Channel
from server.payments.service import credit_key, credit_order, run_followup, run_followups
from server.payments.service.followups import FollowUpDrainer
from tests.factories import create_account
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    assert_ledger_sound,
    balance,
    credits_of,
    drain,
    new_order,
    pay_app_fixture,
)


class Recorder:
    """A follow-up handler that records its calls; fails for the accounts in `failing`."""

    def __init__(self, failing: set[int] | None = None) -> None:
        self.calls: list[tuple[int, str, str]] = []
        self.failing = failing or set()

    async def __call__(self, account_id: int, reason: str, credit_key: str) -> None:
        self.calls.append((account_id, reason, credit_key))
        if account_id in self.failing:
            raise ConnectionError("metering unavailable")


async def _credit(pay: PayApp, account: Account, amount_fen: int) -> str:
    order = await new_order(pay, Channel.WECHAT, amount_fen, account)
    result = await credit_order(
        Channel.WECHAT, order.out_trade_no, amount_fen=amount_fen, transaction_id="42t",
        paid_at=None, source="notify",
    )  # fmt: skip
    assert result.outcome is EventOutcome.CREDITED and result.account_id == account.id
    return result.followup_key


async def test_a_notification_is_stored_credited_and_followed_up_in_one_go(
    pay_app: PayApp,
) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 6_600)
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    event = await PaymentEvent.get(external_id=order.out_trade_no)
    assert (event.outcome, event.kind) == (EventOutcome.CREDITED, "payment")
    assert event.handled_at is not None and event.headers["wechatpay-serial"]
    stored = await RechargeOrder.get(id=order.id)
    assert (stored.status, stored.credited_by) == (OrderStatus.PAID, "notify")
    await pay_app.app.ctx.followups.stop()  # runs what the route submitted
    item = await CreditFollowUp.get(account_id=order.account_id)
    assert item.done_at is not None and item.attempts == 1
    assert await credits_of(order) == 1 and await balance(order.account_id) == 6_600
    await assert_ledger_sound()


async def test_a_failed_handling_keeps_the_raw_event_and_writes_nothing_else(
    pay_app: PayApp,
) -> None:
    """The credit's own statement fails (a follow-up marker under its key is already there,
    violating UNIQUE): the one transaction rolls back, the raw event is stored unhandled as
    before, and a resend once the obstacle is gone credits once."""
    order = await new_order(pay_app, Channel.WECHAT, 1_500)
    key = credit_key(order.channel, order.out_trade_no)
    await CreditFollowUp.create(credit_key=key, account_id=order.account_id, reason="recharge")
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    assert {a.status for a in pay_app.sandbox.wechat.notifier.attempts} == {500}
    event = await PaymentEvent.get(external_id=order.out_trade_no)
    assert (event.handled_at, event.outcome) == (None, "")
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.CREATED
    assert await CreditFollowUp.all().count() == 1
    assert await credits_of(order) == 0 and await balance(order.account_id) == 0
    await CreditFollowUp.filter(credit_key=key).delete()
    pay_app.sandbox.wechat.notify_payment(order.out_trade_no, copies=2)
    await drain(pay_app)
    event = await PaymentEvent.get(id=event.id)
    assert event.outcome == EventOutcome.CREDITED and event.handled_at is not None
    assert await PaymentEvent.all().count() == 1
    assert await credits_of(order) == 1 and await balance(order.account_id) == 1_500
    await assert_ledger_sound()


async def test_follow_ups_run_once_per_account_with_its_latest_credit(pay_app: PayApp) -> None:
    first, second = await create_account(), await create_account()
    keys = [
        await _credit(pay_app, first, 100),
        await _credit(pay_app, second, 200),
        await _credit(pay_app, first, 300),
    ]
    handler = Recorder()
    assert await run_followups([*keys, "pay:wechat:no-such-order"], handler) == 3
    assert sorted(handler.calls) == [
        (first.id, "recharge", keys[2]),
        (second.id, "recharge", keys[1]),
    ]
    rows = await CreditFollowUp.filter(credit_key__in=keys)
    assert all(r.done_at is not None and r.attempts == 1 for r in rows)
    # Done before counts as done; nothing runs again.
    assert await run_followups(keys, handler) == 3 and len(handler.calls) == 2
    assert await run_followup(keys[0], handler) is True
    assert await run_followup("pay:wechat:no-such-order", handler) is False


async def test_a_failing_account_stays_pending_and_the_others_are_done(pay_app: PayApp) -> None:
    ok, down = await create_account(), await create_account()
    done_key = await _credit(pay_app, ok, 100)
    pending_keys = [await _credit(pay_app, down, 200), await _credit(pay_app, down, 300)]
    assert await run_followups([done_key, *pending_keys], Recorder({down.id})) == 1
    assert (await CreditFollowUp.get(credit_key=done_key)).done_at is not None
    for key in pending_keys:
        item = await CreditFollowUp.get(credit_key=key)
        assert (item.done_at, item.attempts) == (None, 1)
        assert "metering unavailable" in item.last_error
    assert await run_followups(pending_keys, Recorder()) == 2


async def test_the_drainer_runs_submitted_keys_in_batches_and_drains_on_stop(
    pay_app: PayApp,
) -> None:
    accounts = [await create_account() for _ in range(3)]
    keys = [await _credit(pay_app, a, 100 + i) for i, a in enumerate(accounts)]
    handler = Recorder()
    drainer = FollowUpDrainer(handler, interval_s=0.01, batch=2)
    drainer.start()
    drainer.submit(keys[:1])
    drainer.submit(keys[1:])
    await drainer.stop()
    assert drainer.done == 3 and drainer.backlog == 0
    assert sorted(c[0] for c in handler.calls) == sorted(a.id for a in accounts)
    assert await CreditFollowUp.filter(done_at=None).count() == 0
    drainer.submit(keys)  # after stop: ignored, the rows would wait for the poller
    assert drainer.backlog == 0


async def test_a_key_the_drainer_lost_is_finished_by_the_pending_sweep(pay_app: PayApp) -> None:
    """Memory only speeds things up: a key never submitted (process killed after the
    commit) is still a pending row, and the poller's sweep finishes it."""
    from server.payments.service import run_pending_followups

    account = await create_account()
    key = await _credit(pay_app, account, 700)
    handler = Recorder()
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    assert await run_pending_followups(now=later, handler=handler) == 1
    assert handler.calls == [(account.id, "recharge", key)]


async def test_a_status_that_asks_nothing_is_stored_and_marked_ignored(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.ALIPAY, 2_000)
    pay_app.sandbox.alipay.notify_trade_status(order.out_trade_no, "TRADE_CLOSED")
    await drain(pay_app)
    assert [a.answer for a in pay_app.sandbox.alipay.notifier.attempts] == [b"success"]
    event = await PaymentEvent.get(external_id=f"CLOSED:{order.out_trade_no}")
    assert event.outcome == EventOutcome.IGNORED and event.handled_at is not None
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.CREATED
    assert await credits_of(order) == 0 and await CreditFollowUp.all().count() == 0


async def test_a_stop_that_times_out_leaves_the_rest_pending(pay_app: PayApp) -> None:
    import asyncio

    account = await create_account()
    key = await _credit(pay_app, account, 400)
    never = asyncio.Event()

    async def stuck(account_id: int, reason: str, credit_key: str) -> None:
        await never.wait()

    drainer = FollowUpDrainer(stuck, interval_s=0)
    drainer.start()
    drainer.submit([key])
    await drainer.stop(timeout_s=0.05)
    item = await CreditFollowUp.get(credit_key=key)
    assert (item.done_at, item.attempts) == (None, 0)  # the poller's sweep finishes it


async def test_the_default_follow_up_is_one_metering_batch_for_every_account(
    pay_app: PayApp,
) -> None:
    """Without a handler, a batch goes to metering's `on_wallets_credited` at once: the
    meter-billed account's money is sent to its meter (once, keyed on its latest credit), the
    platform-billed account's relay tripped for arrears is closed, and an account with no
    meter is simply done."""
    from server.metering.models import (
        CommandOp,
        MeterBilling,
        MeterCommand,
        MeterStatus,
        RelayState,
    )
    from tests.factories import create_meter

    billed_by_meter, tripped, bare = [await create_account() for _ in range(3)]
    meter = await create_meter(billed_by_meter, billing=MeterBilling.METER, money_fen=0)
    relay = await create_meter(
        tripped, billing=MeterBilling.PLATFORM, relay_state=RelayState.OPEN, trip_cause="platform"
    )
    await create_meter(bare, billing=MeterBilling.METER, status=MeterStatus.REMOVED)
    keys = [
        await _credit(pay_app, billed_by_meter, 1_000),
        await _credit(pay_app, tripped, 5_000),
        await _credit(pay_app, billed_by_meter, 2_000),
        await _credit(pay_app, bare, 300),
    ]
    assert await run_followups(keys) == 4
    assert await CreditFollowUp.filter(done_at=None).count() == 0
    (recharge,) = await MeterCommand.filter(meter_id=meter.id, op=CommandOp.RECHARGE)
    assert recharge.params["amount_fen"] == 3_000
    assert recharge.key == f"meter-recharge:{keys[2]}"
    assert await MeterCommand.filter(meter_id=relay.id, op=CommandOp.CLOSE).count() == 1
    assert await run_followups(keys) == 4  # done before: nothing runs again
    assert await MeterCommand.all().count() == 2
