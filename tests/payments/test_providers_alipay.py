"""Alipay provider against the sandbox over real HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from server.payments.providers.alipay import AlipayProvider
from server.payments.providers.alipay_notify import signed_content
from server.payments.providers.base import (
    NotificationKind,
    NotificationRejected,
    OrderNotFound,
    ProviderError,
    RefundStatus,
    RejectReason,
    TradeStatus,
)
from server.payments.providers.crypto import load_private_key, private_pem, sign_sha256_rsa
from server.payments.sandbox import AlipayFault

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _order(alipay, endpoint, no="A202403010001", fen=8888):
    expires = datetime.now(SHANGHAI) + timedelta(minutes=30)
    return await alipay.create_order(no, fen, "水费充值", None, expires, endpoint.url)


async def test_precreate_gives_qr_and_signed_wap_url(alipay, alipay_endpoint, sandbox):
    order = await _order(alipay, alipay_endpoint)
    assert order.qr_code.endswith("/sandbox/pay/A202403010001")
    query = dict(parse_qsl(urlsplit(order.wap_url).query))
    assert query["method"] == "alipay.trade.wap.pay" and query["sign_type"] == "RSA2"
    async with httpx.AsyncClient() as client:  # the wap page is served by the gateway
        page = await client.get(order.wap_url)
        tampered = await client.get(order.wap_url.replace("88.88", "0.01"))
    assert page.status_code == 200 and "¥88.88" in page.text
    assert "验签出错" in tampered.text and sandbox.alipay.trades["A202403010001"].amount_fen == 8888


async def test_scan_pay_notify_query(alipay, alipay_endpoint, sandbox):
    await _order(alipay, alipay_endpoint)
    with pytest.raises(OrderNotFound):  # a precreated trade exists once scanned
        await alipay.query_order("A202403010001")
    sandbox.alipay.scan("A202403010001")
    assert (await alipay.query_order("A202403010001")).status is TradeStatus.NOTPAY
    sandbox.alipay.pay("A202403010001")
    await sandbox.alipay.notifier.drain()
    [note] = alipay_endpoint.accepted
    assert note.kind is NotificationKind.PAYMENT
    assert (note.external_id, note.amount_fen, note.status) == ("A202403010001", 8888, "SUCCESS")
    [attempt] = sandbox.alipay.notifier.attempts
    assert attempt.answer == b"success" and attempt.accepted
    state = await alipay.query_order("A202403010001")
    assert (state.status, state.amount_fen, state.transaction_id) == (
        TradeStatus.SUCCESS,
        8888,
        note.transaction_id,
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (AlipayFault.BAD_SIGNATURE, RejectReason.BAD_SIGNATURE),
        (AlipayFault.WRONG_APP, RejectReason.WRONG_MERCHANT),
    ],
)
async def test_forged_notifications_rejected(alipay, alipay_endpoint, sandbox, fault, reason):
    await _order(alipay, alipay_endpoint)
    sandbox.alipay.pay("A202403010001", fault=fault)
    await sandbox.alipay.notifier.drain()
    assert alipay_endpoint.accepted == [] and alipay_endpoint.rejected == [reason]


async def test_amount_mismatch_is_delivered_exact(alipay, alipay_endpoint, sandbox):
    await _order(alipay, alipay_endpoint, fen=100)
    sandbox.alipay.pay("A202403010001", fault=AlipayFault.AMOUNT_MISMATCH)
    await sandbox.alipay.notifier.drain()
    assert [n.amount_fen for n in alipay_endpoint.accepted] == [101]


def test_notification_sign_content_and_checks(sandbox, alipay, sandbox_keys):
    key = load_private_key(sandbox_keys.alipay_private_key)
    params = {
        "app_id": sandbox_keys.alipay_app_id,
        "seller_id": sandbox_keys.alipay_seller_id,
        "out_trade_no": "A202403010009",
        "trade_no": "2024030122001",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.30",
        "subject": "电费 充值&预付",
        "charset": "utf-8",
    }
    content = signed_content(params)
    assert content.startswith("app_id=") and "sign" not in content
    body = urlencode(
        {**params, "sign_type": "RSA2", "sign": sign_sha256_rsa(key, content.encode())}
    )
    now = datetime.now(SHANGHAI)
    note = alipay.verify_notification({}, body.encode(), now)
    assert (note.amount_fen, note.out_trade_no) == (1230, "A202403010009")
    with pytest.raises(NotificationRejected) as err:
        alipay.verify_notification({}, body.replace("12.30", "12.31").encode(), now)
    assert err.value.reason is RejectReason.BAD_SIGNATURE
    with pytest.raises(NotificationRejected) as err:
        alipay.verify_notification({}, (body + "&out_trade_no=X").encode(), now)
    assert err.value.reason is RejectReason.MALFORMED
    unconfigured = AlipayProvider(replace(sandbox.alipay_config(), alipay_public_key=""))
    with pytest.raises(NotificationRejected) as err:
        unconfigured.verify_notification({}, body.encode(), now)
    assert err.value.reason is RejectReason.NOT_CONFIGURED


async def test_refund_once_per_request_no_and_notified(alipay, alipay_endpoint, sandbox):
    await _order(alipay, alipay_endpoint)
    sandbox.alipay.pay("A202403010001")
    first = await alipay.refund("A202403010001", "AR202403010001", 888, 8888, "退租")
    assert first.status is RefundStatus.SUCCESS
    again = await alipay.refund("A202403010001", "AR202403010001", 888, 8888, "退租")
    assert again.status is RefundStatus.PROCESSING  # fund_change=N: ask the query
    assert sandbox.alipay.trades["A202403010001"].refunded_fen == 888
    queried = await alipay.query_refund("A202403010001", "AR202403010001")
    assert (queried.status, queried.refund_fen) == (RefundStatus.SUCCESS, 888)
    with pytest.raises(OrderNotFound):
        await alipay.query_refund("A202403010001", "AR-unknown")
    await sandbox.alipay.notifier.drain()
    refund_note = [n for n in alipay_endpoint.accepted if n.kind is NotificationKind.REFUND]
    assert [(n.external_id, n.amount_fen) for n in refund_note] == [("AR202403010001", 888)]


async def test_close_unpaid_and_bad_app_key(alipay, alipay_endpoint, sandbox, sandbox_keys):
    await _order(alipay, alipay_endpoint)
    sandbox.alipay.scan("A202403010001")
    await alipay.close_order("A202403010001")
    assert (await alipay.query_order("A202403010001")).status is TradeStatus.CLOSED
    other = private_pem(load_private_key(sandbox_keys.merchant_private_key), pkcs1=True)
    async with AlipayProvider(replace(sandbox.alipay_config(), app_private_key=other)) as bad:
        with pytest.raises(ProviderError) as err:
            await bad.query_order("A202403010001")
    assert err.value.code == "isv.invalid-signature"
