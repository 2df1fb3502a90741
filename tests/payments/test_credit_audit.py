"""Every credit leaves an operation-log row (issue #11): notifications handled alone or in a
batch, the poller, counter payments. A batch writes its rows with one `record_many` call on
the batch's own connection (a constant number of statements, none per notification)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest

import server.payments.service.inbox_batch as inbox_batch
from server.audit.models import OperationLog
from server.audit.service import verify_chain
from server.payments.models import RechargeOrder
from server.payments.providers.base import (
    Channel,
    NotificationKind,
    TradeStatus,
    VerifiedNotification,
)
from server.payments.service import credit_order, record_counter_payment
from server.payments.service.inbox_batch import InboxBatcher
from tests.factories import create_account
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    drain,
    new_order,
    pay_app_fixture,
)

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


async def _credit_rows() -> list[OperationLog]:
    return await OperationLog.filter(action="payment.credit").order_by("id")


async def test_notified_credits_are_logged_once_each(pay_app: PayApp) -> None:
    wechat = await new_order(pay_app, Channel.WECHAT, 1_200)
    alipay = await new_order(pay_app, Channel.ALIPAY, 3_400)
    pay_app.sandbox.wechat.pay(wechat.out_trade_no, copies=3)
    pay_app.sandbox.alipay.pay(alipay.out_trade_no, copies=3)
    await drain(pay_app)
    rows = await _credit_rows()
    got = sorted((r.detail["out_trade_no"], r.detail["amount_fen"], r.actor) for r in rows)
    assert got == sorted([
        (wechat.out_trade_no, 1_200, "system:pay-notify"),
        (alipay.out_trade_no, 3_400, "system:pay-notify"),
    ])  # fmt: skip
    assert {r.target_id for r in rows} == {str(wechat.account_id), str(alipay.account_id)}
    assert all("充值到账" in r.reason for r in rows)
    assert await verify_chain() == []


async def test_poller_and_counter_credits_are_logged(db: None) -> None:
    account = await create_account()
    order = await RechargeOrder.create(
        out_trade_no="R20261121" + secrets.token_hex(10), account=account,
        channel=Channel.WECHAT, amount_fen=700, expires_at=NOW + timedelta(hours=2),
        created_by="tenant:o-test",
    )  # fmt: skip
    await credit_order(Channel.WECHAT, order.out_trade_no, amount_fen=700,
                       transaction_id="42poller", paid_at=None, source="poller")  # fmt: skip
    await credit_order(Channel.WECHAT, order.out_trade_no, amount_fen=700,
                       transaction_id="42poller", paid_at=None, source="poller")  # fmt: skip
    (row,) = await _credit_rows()
    assert (row.actor, row.detail["amount_fen"]) == ("system:pay-poller", 700)
    await record_counter_payment(account.id, "cash", 5_000, "SJ-0001", actor="staff:3")
    (counter,) = await OperationLog.filter(action="payment.counter")
    assert (counter.actor, counter.detail["amount_fen"]) == ("staff:3", 5_000)
    assert await verify_chain() == []


def _paid(order: RechargeOrder) -> VerifiedNotification:
    return VerifiedNotification(
        channel=order.channel, kind=NotificationKind.PAYMENT, external_id=order.out_trade_no,
        out_trade_no=order.out_trade_no, out_refund_no="", status=TradeStatus.SUCCESS,
        amount_fen=order.amount_fen, transaction_id="42" + secrets.token_hex(13),
        raw={"resource": {"success_time": "2026-11-21T18:00:00+08:00"}},
    )  # fmt: skip


@pytest.mark.postgres
async def test_a_batch_logs_its_credits_with_one_call_on_its_connection(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, bool]] = []
    real = inbox_batch.record_many

    async def spy(entries, *, conn=None):  # type: ignore[no-untyped-def]
        calls.append((len(entries), conn is not None))
        return await real(entries, conn=conn)

    monkeypatch.setattr(inbox_batch, "record_many", spy)
    accounts = [await create_account() for _ in range(4)]
    orders = [
        await RechargeOrder.create(
            out_trade_no="R20261121" + secrets.token_hex(10), account=accounts[i % 4],
            channel=Channel.WECHAT, amount_fen=100 + i, expires_at=NOW + timedelta(hours=2),
            created_by="tenant:o-test",
        )
        for i in range(12)
    ]  # fmt: skip
    batcher = InboxBatcher(lanes=1)
    await asyncio.gather(*(batcher.handle(_paid(o), {}, b"{}", NOW) for o in orders))
    assert sum(n for n, _ in calls) == 12 and all(on_conn for _, on_conn in calls)
    assert len(calls) <= 2  # the first notification goes alone, the rest queue behind it
    rows = await _credit_rows()
    assert sorted(r.detail["out_trade_no"] for r in rows) == sorted(o.out_trade_no for o in orders)
    assert await verify_chain() == []
