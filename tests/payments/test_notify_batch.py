"""Group commit of payment notifications (inbox_batch): a batch answers every notification as
handling it alone would, credits each order once, and falls back to one at a time when it
cannot commit whole. Notifications here are already verified (verification has its own
tests); the database is the real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.ledger.models import LedgerTransaction
from server.payments.models import (
    CreditFollowUp,
    EventOutcome,
    OrderStatus,
    PaymentEvent,
    Quarantine,
    QuarantineReason,
    RechargeOrder,
)
from server.payments.providers.base import (
    Channel,
    NotificationKind,
    TradeStatus,
    VerifiedNotification,
)
from server.payments.service import credit_key, credit_order
from server.payments.service.inbox_batch import InboxBatcher
from server.payments.service.inbox_store import store_event
from tests.factories import create_account
from tests.payments.service_fixtures import assert_ledger_sound, balance

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
HEADERS = {"Wechatpay-Serial": "SANDBOX", "Content-Type": "application/json"}


async def _order(account: Account, fen: int, channel: Channel = Channel.WECHAT) -> RechargeOrder:
    return await RechargeOrder.create(
        out_trade_no="R20261121" + secrets.token_hex(10), account=account, channel=channel,
        amount_fen=fen, expires_at=NOW + timedelta(hours=2), created_by="tenant:o-test",
    )  # fmt: skip


def _paid(
    order: RechargeOrder, fen: int | None = None, channel: Channel | None = None
) -> VerifiedNotification:
    channel = channel or order.channel
    return VerifiedNotification(
        channel=channel, kind=NotificationKind.PAYMENT, external_id=order.out_trade_no,
        out_trade_no=order.out_trade_no, out_refund_no="", status=TradeStatus.SUCCESS,
        amount_fen=order.amount_fen if fen is None else fen,
        transaction_id="42" + secrets.token_hex(13),
        raw={"resource": {"success_time": "2026-11-21T18:00:00+08:00"}} if channel is Channel.WECHAT
        else {"gmt_payment": "2026-11-21 18:00:00"},
    )  # fmt: skip


async def _all_at_once(batcher: InboxBatcher, notes: list[VerifiedNotification]) -> list:
    return await asyncio.gather(*(batcher.handle(v, HEADERS, b'{"id": "n"}', NOW) for v in notes))


async def _credits(order: RechargeOrder) -> int:
    return await LedgerTransaction.filter(key=credit_key(order.channel, order.out_trade_no)).count()


async def test_one_batch_answers_each_notification_as_handling_it_alone_would(db: None) -> None:
    tenants = [await create_account() for _ in range(6)]
    plain = [await _order(tenants[i % 6], 1_000 + i, random.choice(list(Channel)))
             for i in range(16)]  # fmt: skip
    twice = await _order(tenants[0], 555)  # a second order of the same tenant, same batch
    wrong_amount = await _order(tenants[1], 2_000)
    paid_before = await _order(tenants[2], 300)
    await credit_order(paid_before.channel, paid_before.out_trade_no, amount_fen=300,
                       transaction_id="42poller", paid_at=None, source="poller")  # fmt: skip
    stored_before = await _order(tenants[3], 900)  # an earlier attempt stored it, unhandled
    async with in_transaction() as conn:
        await store_event(conn, _paid(stored_before), HEADERS, b"{}", NOW)
    ghost = await _order(tenants[4], 100)
    ghost_note = _paid(ghost)
    await ghost.delete()  # a notification for an order we do not have

    notes = [_paid(o) for o in plain] + [
        _paid(twice), _paid(plain[0]), _paid(plain[1]), _paid(wrong_amount, 2_001),
        _paid(paid_before), _paid(stored_before), ghost_note, _paid(plain[0]),
    ]  # fmt: skip
    before = {t.id: await balance(t.id) for t in tenants}
    results = await _all_at_once(InboxBatcher(), notes)

    outcomes = [r.outcome for r in results]
    assert outcomes[:17] == [EventOutcome.CREDITED] * 17
    assert outcomes[17:] == [
        EventOutcome.ALREADY_DONE, EventOutcome.ALREADY_DONE, EventOutcome.QUARANTINED,
        EventOutcome.ALREADY_DONE, EventOutcome.CREDITED, EventOutcome.QUARANTINED,
        EventOutcome.ALREADY_DONE,
    ]  # fmt: skip
    credited = [*plain, twice, stored_before]
    assert all(r.followup_keys for r, o in zip(results, outcomes, strict=True)
               if o is EventOutcome.CREDITED)  # fmt: skip
    for order in [*credited, paid_before]:
        assert await _credits(order) == 1
        stored = await RechargeOrder.get(id=order.id)
        assert stored.status is OrderStatus.PAID
    assert await _credits(wrong_amount) == 0
    assert (await RechargeOrder.get(id=wrong_amount.id)).status is OrderStatus.HELD
    reasons = {q.reason for q in await Quarantine.all()}
    assert reasons == {QuarantineReason.AMOUNT_MISMATCH, QuarantineReason.UNKNOWN_ORDER}
    for t in tenants:
        want = sum(o.amount_fen for o in credited if o.account_id == t.id)
        assert await balance(t.id) - before[t.id] == want
    assert await PaymentEvent.filter(handled_at=None).count() == 0
    assert await CreditFollowUp.all().count() == len(credited) + 1  # + the poller's
    # The common case went in as one batch: one ledger time for its 17 credits.
    times = {t.created_at for t in await LedgerTransaction.filter(actor="system:pay-notify")}
    assert len(times) <= 2  # the batch, and the stored-before event handled on its own path
    # One tenant's four credits in one batch: each transaction's balance after is the
    # wallet's balance at its place in the batch, the last one the wallet's balance now.
    mine = [o for o in credited if o.account_id == tenants[0].id]
    txs = [await LedgerTransaction.get(key=credit_key(o.channel, o.out_trade_no)) for o in mine]
    steps = sorted((t.balance_after_fen, o.amount_fen) for t, o in zip(txs, mine, strict=True))
    running = before[tenants[0].id]
    for after, fen in steps:
        running += fen
        assert after == running
    assert running == await balance(tenants[0].id)
    await assert_ledger_sound()


async def test_a_closed_account_sends_the_batch_back_to_one_at_a_time(db: None) -> None:
    tenants = [await create_account() for _ in range(5)]
    orders = [await _order(t, 1_200) for t in tenants]
    await Account.filter(id=tenants[2].id).update(status=AccountStatus.CLOSED)
    results = await _all_at_once(InboxBatcher(), [_paid(o) for o in orders])
    assert [r.outcome for r in results] == [
        EventOutcome.CREDITED, EventOutcome.CREDITED, EventOutcome.QUARANTINED,
        EventOutcome.CREDITED, EventOutcome.CREDITED,
    ]  # fmt: skip
    assert [await balance(t.id) for t in tenants] == [1_200, 1_200, 0, 1_200, 1_200]
    assert (await RechargeOrder.get(id=orders[2].id)).status is OrderStatus.HELD
    assert (await Quarantine.get()).reason is QuarantineReason.ACCOUNT_CLOSED
    assert await PaymentEvent.filter(handled_at=None).count() == 0
    await assert_ledger_sound()


async def test_two_workers_and_the_poller_racing_credit_each_order_once(db: None) -> None:
    tenants = [await create_account() for _ in range(8)]
    orders = [await _order(tenants[i % 8], 700 + i) for i in range(40)]
    notes = [_paid(o) for o in orders]
    shuffled = random.sample(notes, len(notes))

    async def poller() -> None:
        for o in orders[::5]:
            await credit_order(
                o.channel, o.out_trade_no, amount_fen=o.amount_fen, transaction_id="42poller",
                paid_at=None, source="poller",
            )  # fmt: skip

    first, second = InboxBatcher(max_batch=16), InboxBatcher(max_batch=16, lanes=2)
    a, b, _ = await asyncio.gather(
        _all_at_once(first, notes), _all_at_once(second, shuffled), poller()
    )
    for results in (a, b):
        assert {r.outcome for r in results} <= {EventOutcome.CREDITED, EventOutcome.ALREADY_DONE}
    for o in orders:
        assert await _credits(o) == 1
    for t in tenants:
        want = sum(o.amount_fen for o in orders if o.account_id == t.id)
        assert await balance(t.id) == want
    assert await RechargeOrder.filter(status=OrderStatus.PAID).count() == 40
    assert await CreditFollowUp.all().count() == 40
    await assert_ledger_sound()


async def test_a_request_given_up_on_does_not_stop_its_batch(db: None) -> None:
    tenant = await create_account()
    orders = [await _order(tenant, 100) for _ in range(3)]
    batcher = InboxBatcher()
    tasks = [asyncio.create_task(batcher.handle(_paid(o), HEADERS, b"{}", NOW)) for o in orders]
    await asyncio.sleep(0)
    tasks[1].cancel()  # the platform hung up
    await asyncio.gather(*tasks, return_exceptions=True)
    await batcher.stop()
    assert await balance(tenant.id) == 300
    assert all([await _credits(o) == 1 for o in orders])
    await assert_ledger_sound()
