"""T+1 reconciliation job against the sandbox's bills, stored for finance."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from server.payments.models import ReconciliationDifference, ReconciliationReport
from server.payments.providers.base import Channel
from server.payments.service import reconcile_day, request_refund
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    drain,
    new_order,
    pay_app_fixture,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("channel", [Channel.WECHAT, Channel.ALIPAY])
async def test_paid_and_refunded_orders_reconcile_clean(pay_app: PayApp, channel: Channel) -> None:
    fake = pay_app.sandbox.wechat if channel is Channel.WECHAT else pay_app.sandbox.alipay
    orders = [await new_order(pay_app, channel, 1_000 * (i + 1)) for i in range(3)]
    for order in orders:
        fake.pay(order.out_trade_no)
    await drain(pay_app)
    await request_refund(pay_app.payments, orders[0].out_trade_no, 300, reason="r", actor="s:1")
    await drain(pay_app)
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    stored, report = await reconcile_day(pay_app.payments, channel, today)
    assert report.clean, report
    assert (stored.matched, stored.clean) == (4, True)
    assert await ReconciliationDifference.all().count() == 0


async def test_differences_are_stored_and_a_rerun_replaces_them(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    # An order the platform settled that we never credited (its notice went elsewhere).
    stray = await new_order(pay_app, Channel.WECHAT, 2_000)
    pay_app.sandbox.wechat.orders[stray.out_trade_no].notify_url = "http://127.0.0.1:9/x"
    pay_app.sandbox.wechat.pay(stray.out_trade_no)
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    stored, _ = await reconcile_day(pay_app.payments, Channel.WECHAT, today)
    assert (stored.matched, stored.missing, stored.clean) == (1, 1, False)
    (diff,) = await ReconciliationDifference.filter(report_id=stored.id)
    assert (diff.kind, diff.number, diff.bill_fen) == ("missing", stray.out_trade_no, 2_000)
    await reconcile_day(pay_app.payments, Channel.WECHAT, today)
    assert await ReconciliationReport.all().count() == 1
    assert await ReconciliationDifference.all().count() == 1
    await drain(pay_app)
