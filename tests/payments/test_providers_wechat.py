"""WeChat Pay v3 provider against the sandbox over real HTTP."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from server.payments.providers.base import (
    NotificationKind,
    NotificationRejected,
    OrderNotFound,
    ProviderError,
    RefundStatus,
    RejectReason,
    TradeStatus,
)
from server.payments.providers.crypto import load_public_key
from server.payments.providers.wechat import WechatNotificationVerifier, WechatPayProvider
from server.payments.sandbox import WechatFault

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _expires() -> datetime:
    return datetime.now(SHANGHAI) + timedelta(minutes=30)


async def _order(wechat, endpoint, no="W202403010001", fen=1234):
    return await wechat.create_order(no, fen, "电费充值", "oTenant01", _expires(), endpoint.url)


async def test_pay_sign_verifies_with_merchant_public_key(wechat, wechat_endpoint, sandbox_keys):
    order = await _order(wechat, wechat_endpoint)
    p = order.pay_params
    assert p.package == f"prepay_id={order.prepay_id}" and p.signType == "RSA"
    message = f"{p.appId}\n{p.timeStamp}\n{p.nonceStr}\n{p.package}\n".encode()
    key = load_public_key(sandbox_keys.merchant_public_key)
    key.verify(base64.b64decode(p.paySign), message, padding.PKCS1v15(), hashes.SHA256())
    assert p.appId == sandbox_keys.wechat_appid


async def test_create_pay_notify_query(wechat, wechat_endpoint, sandbox):
    await _order(wechat, wechat_endpoint)
    assert (await wechat.query_order("W202403010001")).status is TradeStatus.NOTPAY
    sandbox.wechat.pay("W202403010001")
    await sandbox.wechat.notifier.drain()
    [note] = wechat_endpoint.accepted
    assert note.kind is NotificationKind.PAYMENT
    assert (note.external_id, note.out_trade_no, note.amount_fen) == (
        "W202403010001",
        "W202403010001",
        1234,
    )
    assert note.status == "SUCCESS" and note.transaction_id.startswith("42")
    state = await wechat.query_order("W202403010001")
    assert state.status is TradeStatus.SUCCESS
    assert (state.amount_fen, state.transaction_id) == (1234, note.transaction_id)
    assert state.paid_at is not None


async def test_same_params_again_gives_latest_prepay_id_other_params_refused(
    wechat, wechat_endpoint
):
    first = await _order(wechat, wechat_endpoint)
    again = await _order(wechat, wechat_endpoint)
    assert again.prepay_id != first.prepay_id
    with pytest.raises(ProviderError) as err:
        await _order(wechat, wechat_endpoint, fen=999)
    assert err.value.code == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (WechatFault.SIGNTEST, RejectReason.SIGNTEST_PROBE),
        (WechatFault.STALE_TIMESTAMP, RejectReason.STALE_TIMESTAMP),
        (WechatFault.BAD_SIGNATURE, RejectReason.BAD_SIGNATURE),
        (WechatFault.UNKNOWN_SERIAL, RejectReason.UNKNOWN_SERIAL),
        (WechatFault.WRONG_MCHID, RejectReason.WRONG_MERCHANT),
    ],
)
async def test_forged_notifications_are_rejected(wechat, wechat_endpoint, sandbox, fault, reason):
    await _order(wechat, wechat_endpoint)
    sandbox.wechat.pay("W202403010001", fault=fault)
    await sandbox.wechat.notifier.drain()
    assert wechat_endpoint.accepted == []
    assert wechat_endpoint.rejected == [reason]
    [attempt] = sandbox.wechat.notifier.attempts
    assert attempt.status == 401 and not attempt.accepted


async def test_amount_mismatch_is_delivered_exact_for_the_service(wechat, wechat_endpoint, sandbox):
    await _order(wechat, wechat_endpoint, fen=5000)
    sandbox.wechat.pay("W202403010001", fault=WechatFault.AMOUNT_MISMATCH)
    await sandbox.wechat.notifier.drain()
    [note] = wechat_endpoint.accepted
    assert note.amount_fen == 5001  # exact fen; comparing with the order is the service's job


async def test_tampered_body_and_wrong_apiv3_key(wechat, wechat_endpoint, sandbox):
    await _order(wechat, wechat_endpoint)
    sandbox.wechat.pay("W202403010001")
    await sandbox.wechat.notifier.drain()
    body = json.dumps(wechat_endpoint.accepted[0].raw["envelope"]).encode()
    headers = sandbox.wechat.signer.builder(body)()[0]
    now = datetime.now(SHANGHAI)
    assert wechat.verify_notification(headers, body, now).amount_fen == 1234
    with pytest.raises(NotificationRejected) as err:
        wechat.verify_notification(headers, body.replace(b"TRANSACTION", b"TRANSACTIOM"), now)
    assert err.value.reason is RejectReason.BAD_SIGNATURE
    other = WechatNotificationVerifier(replace(sandbox.wechat_config(), apiv3_key="x" * 32))
    with pytest.raises(NotificationRejected) as err:
        other.verify(headers, body, now)
    assert err.value.reason is RejectReason.DECRYPT_FAILED
    with pytest.raises(NotificationRejected) as err:
        wechat.verify_notification(headers, body, now + timedelta(minutes=6))
    assert err.value.reason is RejectReason.STALE_TIMESTAMP
    lower = {k.lower(): v for k, v in headers.items()}
    assert wechat.verify_notification(lower, body, now).external_id == "W202403010001"
    del lower["wechatpay-nonce"]
    with pytest.raises(NotificationRejected) as err:
        wechat.verify_notification(lower, body, now)
    assert err.value.reason is RejectReason.MISSING_HEADERS


async def test_no_key_configured_fails_closed(sandbox):
    cfg = replace(sandbox.wechat_config(), platform_public_key="", platform_public_key_id="")
    provider = WechatPayProvider(cfg)
    with pytest.raises(NotificationRejected) as err:
        provider.verify_notification({}, b"{}", datetime.now(SHANGHAI))
    assert err.value.reason is RejectReason.NOT_CONFIGURED
    with pytest.raises(ProviderError) as perr:
        await provider.query_order("W202403010001")
    assert perr.value.code == "NOT_CONFIGURED"


async def test_refund_accepted_then_notified_and_retried_once(wechat, wechat_endpoint, sandbox):
    await _order(wechat, wechat_endpoint)
    sandbox.wechat.pay("W202403010001")
    await sandbox.wechat.notifier.drain()
    async with WechatPayProvider(sandbox.wechat_config(wechat_endpoint.url)) as refunding:
        sandbox.wechat.auto_complete_refunds = False
        first = await refunding.refund("W202403010001", "RF202403010001", 234, 1234, "退租")
        assert first.status is RefundStatus.PROCESSING and first.refund_fen == 234
        again = await refunding.refund("W202403010001", "RF202403010001", 234, 1234, "退租")
        assert again.refund_id == first.refund_id
        assert sandbox.wechat.orders["W202403010001"].refunded_fen == 234
        sandbox.wechat.complete_refund("RF202403010001")
        await sandbox.wechat.notifier.drain()
        note = wechat_endpoint.accepted[-1]
        assert note.kind is NotificationKind.REFUND
        assert (note.external_id, note.out_trade_no, note.amount_fen, note.status) == (
            "RF202403010001",
            "W202403010001",
            234,
            "SUCCESS",
        )
        done = await refunding.query_refund("W202403010001", "RF202403010001")
        assert done.status is RefundStatus.SUCCESS
        with pytest.raises(ProviderError) as err:
            await refunding.refund("W202403010001", "RF202403010002", 1001, 1234, "超额")
        assert err.value.code == "NOT_ENOUGH"
    assert (await wechat.query_order("W202403010001")).status is TradeStatus.REFUND


async def test_close_and_unknown_order(wechat, wechat_endpoint):
    await _order(wechat, wechat_endpoint)
    await wechat.close_order("W202403010001")
    assert (await wechat.query_order("W202403010001")).status is TradeStatus.CLOSED
    with pytest.raises(OrderNotFound):
        await wechat.query_order("W209901010001")


async def test_both_providers_implement_the_protocol(wechat, alipay):
    from server.payments.providers.base import PaymentProvider

    assert isinstance(wechat, PaymentProvider) and isinstance(alipay, PaymentProvider)
    assert {wechat.channel.value, alipay.channel.value} == {"wechat", "alipay"}
