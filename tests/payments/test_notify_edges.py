"""Edges of the notification endpoints found from outside (issue #11): absurd timestamps are
refused (401, not 500); validly signed notifications with an amount or an order number no
platform could send are quarantined and answered "handled" (no endless resends); a huge
body is refused with 413 before anything is stored."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from server.payments.models import (
    OrderStatus,
    PaymentEvent,
    Quarantine,
    QuarantineReason,
    RechargeOrder,
)
from server.payments.providers.base import Channel
from server.payments.providers.crypto import load_private_key, sign_sha256_rsa
from server.payments.sandbox.alipay import _FMT
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    assert_ledger_sound,
    balance,
    credits_of,
    new_order,
    pay_app_fixture,
)

WECHAT_PATH = "/api/v1/pay/notify/wechat"
ALIPAY_PATH = "/api/v1/pay/notify/alipay"


def wechat_signed(pay: PayApp, order: RechargeOrder, **changes: object) -> tuple[dict, bytes]:
    """A TRANSACTION.SUCCESS notification for `order`, `changes` applied to its resource,
    signed by the sandbox platform key: headers and body."""
    fake = pay.sandbox.wechat.orders[order.out_trade_no]
    fake.state, fake.transaction_id = "SUCCESS", "42" + "3" * 26
    fake.success_time = datetime.now(UTC).replace(microsecond=0)
    resource = {**pay.sandbox.wechat.order_json(fake), "attach": "", **changes}
    signer = pay.sandbox.wechat.signer
    body = signer.envelope("TRANSACTION.SUCCESS", "支付成功", "transaction", resource)
    return signer.builder(body)()


def alipay_signed(pay: PayApp, order: RechargeOrder, **changes: str) -> bytes:
    """A TRADE_SUCCESS notification for `order` with `changes`, signed with Alipay's key."""
    now = datetime.now(UTC).strftime(_FMT)
    keys = pay.sandbox.keys
    params = {
        "notify_time": now, "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(16),
        "charset": "utf-8", "version": "1.0", "sign_type": "RSA2", "app_id": keys.alipay_app_id,
        "seller_id": keys.alipay_seller_id, "trade_no": "2026" + secrets.token_hex(8),
        "out_trade_no": order.out_trade_no, "trade_status": "TRADE_SUCCESS",
        "total_amount": f"{order.amount_fen / 100:.2f}", "gmt_payment": now, **changes,
    }  # fmt: skip
    content = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign_type")
    params["sign"] = sign_sha256_rsa(load_private_key(keys.alipay_private_key), content.encode())
    return urlencode(params).encode()


async def post(pay: PayApp, path: str, body: bytes, headers: dict | None = None) -> httpx.Response:
    headers = headers or {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    async with httpx.AsyncClient(base_url=pay.url, timeout=30) as client:
        return await client.post(path, content=body, headers=headers)


async def nothing_stored() -> bool:
    return await PaymentEvent.all().count() == 0 and await Quarantine.all().count() == 0


@pytest.mark.parametrize("digits", [310, 5_000])
async def test_wechat_timestamp_of_absurd_length_is_401(pay_app: PayApp, digits: int) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    headers, body = wechat_signed(pay_app, order)
    headers["Wechatpay-Timestamp"] = "9" * digits  # 310: float overflow, 5,000: int() refuses
    response = await post(pay_app, WECHAT_PATH, body, headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "FAIL"
    assert await nothing_stored()


@pytest.mark.parametrize("timestamp", ["²³", "１７００００００００", "-1", "1e9", "0x10"])
async def test_wechat_timestamp_that_is_no_unix_time_is_401(
    pay_app: PayApp, timestamp: str
) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    headers, body = wechat_signed(pay_app, order)
    headers["Wechatpay-Timestamp"] = timestamp.encode()  # as sent, in UTF-8
    response = await post(pay_app, WECHAT_PATH, body, headers)
    assert response.status_code == 401, response.text


async def test_wechat_signed_huge_amount_is_quarantined_and_not_resent(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    headers, body = wechat_signed(pay_app, order, amount={"total": 10**30, "currency": "CNY"})
    for _ in range(2):  # the platform's resend finds the same row
        response = await post(pay_app, WECHAT_PATH, body, headers)
        assert response.status_code == 204, response.text  # handled: the resends stop
    (q,) = await Quarantine.all()
    assert q.reason == QuarantineReason.OUT_OF_RANGE
    assert q.out_trade_no == order.out_trade_no
    assert q.detail["amount"] == str(10**30)
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.HELD  # a person decides
    assert await credits_of(order) == 0 and await balance(order.account_id) == 0
    assert await PaymentEvent.all().count() == 0
    await assert_ledger_sound()


async def test_wechat_signed_200_character_order_number_is_quarantined(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    headers, body = wechat_signed(pay_app, order, out_trade_no="R" * 200)
    response = await post(pay_app, WECHAT_PATH, body, headers)
    assert response.status_code == 204, response.text
    (q,) = await Quarantine.all()
    assert (q.reason, q.out_trade_no) == (QuarantineReason.OUT_OF_RANGE, "")
    assert q.detail["number_length"] == 200 and q.detail["number"] == "R" * 64
    assert await credits_of(order) == 0


async def test_alipay_signed_huge_amount_is_quarantined_and_answered_success(
    pay_app: PayApp,
) -> None:
    order = await new_order(pay_app, Channel.ALIPAY, 1_000)
    body = alipay_signed(pay_app, order, total_amount="1" + "0" * 30 + ".00")
    response = await post(pay_app, ALIPAY_PATH, body)
    assert (response.status_code, response.text) == (200, "success")
    (q,) = await Quarantine.all()
    assert (q.reason, q.out_trade_no) == (QuarantineReason.OUT_OF_RANGE, order.out_trade_no)
    assert (await RechargeOrder.get(id=order.id)).status == OrderStatus.HELD
    assert await credits_of(order) == 0 and await PaymentEvent.all().count() == 0
    await assert_ledger_sound()


async def test_alipay_signed_200_character_order_number_is_quarantined(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.ALIPAY, 1_000)
    body = alipay_signed(pay_app, order, out_trade_no="R" * 200)
    response = await post(pay_app, ALIPAY_PATH, body)
    assert (response.status_code, response.text) == (200, "success")
    (q,) = await Quarantine.all()
    assert q.reason == QuarantineReason.OUT_OF_RANGE and q.detail["number_length"] == 200


async def test_alipay_signed_notification_still_credits(pay_app: PayApp) -> None:
    """The helpers above sign like Alipay: an ordinary notification is credited."""
    order = await new_order(pay_app, Channel.ALIPAY, 1_000)
    response = await post(pay_app, ALIPAY_PATH, alipay_signed(pay_app, order))
    assert response.text == "success"
    assert await credits_of(order) == 1


async def post_head(pay: PayApp, path: str, length: int, first: bytes) -> bytes:
    """Announce a `length`-byte body, send its `first` bytes and read the answer: the
    server must answer without waiting for (or reading) the rest."""
    host, port = pay.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n\r\n"
    writer.write(head.encode() + first)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    return answer


@pytest.mark.parametrize("path", [WECHAT_PATH, ALIPAY_PATH])
async def test_10_mb_body_is_413_and_nothing_stored(pay_app: PayApp, path: str) -> None:
    answer = await post_head(pay_app, path, 10 * 1024 * 1024, b"a=" + b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert await nothing_stored()


async def test_chunked_body_over_the_cap_is_413(pay_app: PayApp) -> None:
    """No Content-Length: the cap applies while reading. The client sends a little more than
    the cap and waits (a client still sending when the server closes loses the answer)."""
    host, port = pay_app.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {WECHAT_PATH} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    writer.write(head.encode() + chunk * 17)  # 68 KB, over the 64 KB cap, not ended
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert await nothing_stored()


async def test_body_under_the_cap_still_reaches_verification(pay_app: PayApp) -> None:
    order = await new_order(pay_app, Channel.WECHAT, 1_000)
    headers, body = wechat_signed(pay_app, order)
    response = await post(pay_app, WECHAT_PATH, body, headers)
    assert response.status_code == 204
    assert await credits_of(order) == 1


@pytest.mark.parametrize(
    ("text", "outcome"),
    [("1e999999999", "out_of_range"), ("9" * 5_000, "out_of_range"),
     ("100000000.01", "out_of_range"), ("100000000.00", 10_000_000_000),
     ("NaN", "malformed"), ("Infinity", "malformed"), ("-1e999999999", "malformed"),
     ("sNaN", "malformed"), ("1.001", "malformed"), ("", "malformed"), ("12.30", 1_230)],
)  # fmt: skip
def test_alipay_amounts_are_fen_out_of_range_or_malformed(text: str, outcome: object) -> None:
    from server.payments.providers.alipay_notify import _fen
    from server.payments.providers.base import NotificationRejected, OutOfRange

    try:
        got: object = _fen(text, "total_amount", "R1")
    except OutOfRange:
        got = "out_of_range"
    except NotificationRejected:
        got = "malformed"
    assert got == outcome
