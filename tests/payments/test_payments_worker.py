"""The payments worker runs the poller on its own: an order paid without a notification is
credited by the worker's first round; reconciliation runs once a day after the bills."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from server.core.settings import Settings
from server.payments.config import PaymentSettings
from server.payments.models import OrderStatus, RechargeOrder
from server.payments.providers.base import Channel
from server.payments.service.runtime import build_payments
from tests.payments.service_fixtures import (  # noqa: F401  (fixture)
    PayApp,
    balance,
    credits_of,
    new_order,
    pay_app_fixture,
    pay_silently,
)
from workers.payments import reconcile_due
from workers.payments import run as run_payments_worker

SH = ZoneInfo("Asia/Shanghai")


async def test_the_worker_credits_a_paid_order_whose_notification_never_came(
    pay_app: PayApp, settings: Settings
) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 3_300)
    pay_silently(pay_app, order)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_payments_worker(settings, stop, payments=pay_app.payments, period=0.2)
    )
    for _ in range(100):
        if (await RechargeOrder.get(id=order.id)).status == OrderStatus.PAID:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await worker
    assert await credits_of(order) == 1
    assert await balance(order.account_id) == 3_300


def test_reconciliation_is_due_once_a_day_after_the_bills() -> None:
    morning = datetime(2026, 11, 21, 9, 59, tzinfo=SH)
    later = datetime(2026, 11, 21, 10, 31, tzinfo=SH)
    assert not reconcile_due(morning, None)
    assert reconcile_due(later, None)
    assert not reconcile_due(later, later.date())
    assert reconcile_due(datetime(2026, 11, 22, 11, 0, tzinfo=SH), later.date())


async def test_without_payment_keys_the_worker_warns_once_then_stays_quiet(
    db: None, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers.payments")
    stop, rounds = asyncio.Event(), []

    def clock() -> datetime:  # called once per round; 11:00 Beijing: reconciliation is due
        rounds.append(1)
        if len(rounds) == 3:
            stop.set()
        return datetime(2026, 11, 21, 11, 0, tzinfo=SH)

    payments = build_payments(PaymentSettings(_env_file=None))
    try:
        await run_payments_worker(settings, stop, payments=payments, period=0, clock=clock)
    finally:
        await payments.aclose()
    assert len(rounds) == 3
    records = [(r.levelname, getattr(r, "event", None)) for r in caplog.records]
    assert records == [("WARNING", "payments_unconfigured")]
    assert caplog.records[0].fields == {"channels": ["wechat", "alipay"]}  # type: ignore[attr-defined]
