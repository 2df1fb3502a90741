"""Fixtures for the payment service tests: our real Sanic app (create_app) serving the
payment routes on an ephemeral port, the sandbox platforms posting to it over real HTTP, a
real database. Import the fixtures you use into the test module."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sanic import Sanic
from tortoise import connections

from server.accounts.models import Account
from server.core.app import create_app
from server.core.settings import Settings
from server.ledger.check import check_ledger
from server.payments.config import PaymentSettings
from server.payments.models import RechargeOrder
from server.payments.providers.alipay import AlipayProvider
from server.payments.providers.base import Channel
from server.payments.providers.wechat import WechatPayProvider
from server.payments.sandbox import PaymentSandbox
from server.payments.service import Payments, create_recharge_order, credit_key
from tests.factories import create_account
from tests.listening import listening

_names = itertools.count(1)


@dataclass
class PayApp:
    app: Sanic
    url: str
    payments: Payments
    sandbox: PaymentSandbox


def pay_settings(url: str = "http://127.0.0.1:9", **kw: object) -> PaymentSettings:
    values: dict[str, object] = {
        "notify_base_url": url,
        "poll_after_s": 0,
        "refund_approval_above_fen": 50_000,
        "adjustment_approval_above_fen": 10_000,
    }
    values.update(kw)
    return PaymentSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def serving(
    settings: Settings, sandbox: PaymentSandbox, wechat: WechatPayProvider, alipay: AlipayProvider
) -> AsyncIterator[PayApp]:
    """create_app() with the payment blueprint on 127.0.0.1:<ephemeral>, wired to the sandbox."""
    Sanic.test_mode = True
    app = create_app(settings, name=f"paytest{next(_names)}", manage_db=False)
    payments = Payments(pay_settings(), {Channel.WECHAT: wechat, Channel.ALIPAY: alipay})
    app.ctx.payments = payments
    try:
        async with listening(app) as url:
            payments.settings = pay_settings(url)
            try:
                yield PayApp(app, url, payments, sandbox)
            finally:
                await sandbox.wechat.notifier.drain()
                await sandbox.alipay.notifier.drain()
    finally:
        app.ctx.payments = None  # the providers belong to the sandbox fixtures


@pytest.fixture(name="pay_app")
async def pay_app_fixture(
    db: None,
    settings: Settings,
    sandbox: PaymentSandbox,
    wechat: WechatPayProvider,
    alipay: AlipayProvider,
) -> AsyncIterator[PayApp]:
    async with serving(settings, sandbox, wechat, alipay) as pay:
        yield pay


async def new_order(
    pay: PayApp, channel: Channel = Channel.WECHAT, amount_fen: int = 10_000,
    account: Account | None = None,
) -> RechargeOrder:  # fmt: skip
    account = account or await create_account()
    order, _created = await create_recharge_order(
        pay.payments, account.id, channel, amount_fen, actor="tenant:o-test",
        payer_openid="o-" + secrets.token_hex(6),
    )  # fmt: skip
    return order


def pay_silently(pay: PayApp, order: RechargeOrder) -> None:
    """The payer pays but no notification goes out (lost): only a query will tell."""
    now = datetime.now(UTC).replace(microsecond=0)
    if order.channel is Channel.WECHAT:
        fake = pay.sandbox.wechat.orders[order.out_trade_no]
        fake.state, fake.transaction_id, fake.success_time = "SUCCESS", "42" + "7" * 26, now
    else:
        trade = pay.sandbox.alipay.trades[order.out_trade_no]
        trade.scanned, trade.status, trade.paid_at = True, "TRADE_SUCCESS", now
        trade.trade_no = now.strftime("%Y%m%d") + "22001" + secrets.token_hex(6)


async def drain(pay: PayApp) -> None:
    await pay.sandbox.wechat.notifier.drain()
    await pay.sandbox.alipay.notifier.drain()


async def credits_of(order: RechargeOrder) -> int:
    rows = await connections.get("default").execute_query_dict(
        'SELECT COUNT(*) AS n FROM ledger_transaction WHERE "key" = $1'
        if connections.get("default").capabilities.dialect == "postgres"
        else 'SELECT COUNT(*) AS n FROM ledger_transaction WHERE "key" = ?',
        [credit_key(order.channel, order.out_trade_no)],
    )
    return int(rows[0]["n"])


async def assert_ledger_sound() -> None:
    assert [str(d) for d in await check_ledger()] == []


async def balance(account_id: int) -> int:
    return (await Account.get(id=account_id)).balance_fen
