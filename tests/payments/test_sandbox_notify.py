"""The sandbox behaves like the platforms: resend schedules, storms, signed API, pay pages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from server.payments.sandbox import ALIPAY_RESEND_S, WECHAT_RESEND_S, WechatFault

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _expires() -> datetime:
    return datetime.now(SHANGHAI) + timedelta(minutes=30)


async def test_wechat_resends_on_schedule_until_2xx(
    wechat, wechat_endpoint, sandbox, recording_sleep
):
    await wechat.create_order("W202403020001", 500, "电费", "oT", _expires(), wechat_endpoint.url)
    wechat_endpoint.fail_next = 4  # our endpoint answers 500 four times
    [delivery] = sandbox.wechat.pay("W202403020001")
    await sandbox.wechat.notifier.drain()
    attempts = sandbox.wechat.notifier.attempts_of(delivery)
    assert [a.status for a in attempts] == [500, 500, 500, 500, 204]
    assert [a.scheduled_s for a in attempts] == [0, 15, 15, 30, 180]
    # time compressed by 60: 15 s → 0.25 s …
    assert recording_sleep.waits == [0.25, 0.25, 0.5, 3.0]
    assert len(wechat_endpoint.accepted) == 1


async def test_wechat_gives_up_after_the_published_schedule(
    wechat, wechat_endpoint, sandbox, recording_sleep
):
    await wechat.create_order("W202403020002", 500, "电费", "oT", _expires(), wechat_endpoint.url)
    wechat_endpoint.fail_next = 100
    [delivery] = sandbox.wechat.pay("W202403020002")
    await sandbox.wechat.notifier.drain()
    attempts = sandbox.wechat.notifier.attempts_of(delivery)
    assert [a.scheduled_s for a in attempts] == [0, *WECHAT_RESEND_S]
    assert sum(WECHAT_RESEND_S) == 86_640  # 24 h 4 min, as published
    assert not any(a.accepted for a in attempts)


async def test_alipay_resends_until_exactly_success(
    alipay, alipay_endpoint, sandbox, recording_sleep
):
    expires = _expires()
    await alipay.create_order("A202403020001", 500, "水费", None, expires, alipay_endpoint.url)
    alipay_endpoint.ok = type(alipay_endpoint.ok)(200, b"SUCCESS ")  # not exactly `success`
    [delivery] = sandbox.alipay.pay("A202403020001")
    await sandbox.alipay.notifier.drain()
    attempts = sandbox.alipay.notifier.attempts_of(delivery)
    assert [a.scheduled_s for a in attempts] == [0, *ALIPAY_RESEND_S]
    assert recording_sleep.waits == [s / 60 for s in ALIPAY_RESEND_S]
    assert not any(a.accepted for a in attempts)


async def test_storm_delivers_the_same_event_n_times_concurrently(wechat, wechat_endpoint, sandbox):
    await wechat.create_order("W202403020003", 990, "电费", "oT", _expires(), wechat_endpoint.url)
    deliveries = sandbox.wechat.pay("W202403020003", copies=15)
    await sandbox.wechat.notifier.drain()
    assert len(deliveries) == 15 and len(wechat_endpoint.accepted) == 15
    assert {(n.external_id, n.amount_fen, n.transaction_id) for n in wechat_endpoint.accepted} == {
        ("W202403020003", 990, sandbox.wechat.orders["W202403020003"].transaction_id)
    }
    # a later duplicate (replay) is the same event again
    sandbox.wechat.notify_payment("W202403020003")
    await sandbox.wechat.notifier.drain()
    assert len({n.notification_id for n in wechat_endpoint.accepted}) == 2


async def test_signtest_probe_is_not_resent(wechat, wechat_endpoint, sandbox):
    await wechat.create_order("W202403020004", 100, "电费", "oT", _expires(), wechat_endpoint.url)
    sandbox.wechat.notify_payment("W202403020004", fault=WechatFault.SIGNTEST)
    await sandbox.wechat.notifier.drain()
    assert len(sandbox.wechat.notifier.attempts) == 1


async def test_wechat_api_requires_the_merchant_signature(sandbox):
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            f"{sandbox.wechat.base_url}/v3/pay/transactions/out-trade-no/X123456?mchid=1"
        )
    assert answer.status_code == 401 and json.loads(answer.content)["code"] == "SIGN_ERROR"


async def test_pay_page_pays_and_notifies(wechat, wechat_endpoint, sandbox):
    await wechat.create_order("W202403020005", 300, "电费", "oT", _expires(), wechat_endpoint.url)
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{sandbox.wechat.base_url}/sandbox/pay/W202403020005")
        assert "确认支付" in page.text and "NOTPAY" in page.text
        paid = await client.post(f"{sandbox.wechat.base_url}/sandbox/pay/W202403020005")
    assert "SUCCESS" in paid.text
    await sandbox.wechat.notifier.drain()
    assert [n.amount_fen for n in wechat_endpoint.accepted] == [300]
