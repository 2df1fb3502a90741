"""The channels added to the notifier, each against its fake: Alibaba Cloud voice
(SingleCallByTts: signed, slow, down, its error codes retried or not), official-account
template messages (token shared, errcodes), SMS delivery receipts (Alibaba QuerySendDetails,
Tencent PullSmsSendStatus) recorded as DELIVERED or FAILED with the provider's code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from server.notify.models import Channel, Message, MessageState
from server.notify.providers import aliyun
from server.notify.providers.base import Outgoing, SendError
from server.notify.sandbox import (
    KEY_ID,
    VOICE_SHOW_NUMBER,
    NotifySandbox,
    demo_voice_templates,
)
from server.notify.service.delivery import deliver_due, poll_receipts
from tests.factories import create_account
from tests.notify.test_delivery import enqueue_low

PARAMS = {"account": "H000001", "tenant": "甲商户", "balance": "0.00", "site": "北园"}


@pytest.fixture
async def fakes() -> AsyncIterator[NotifySandbox]:
    async with NotifySandbox() as sandbox:
        yield sandbox


def call(phone: str = "13800138000", template: str = "alarm.trip") -> Outgoing:
    return Outgoing(phone, template, PARAMS, "北园 H000001 已停止供电，请充值", out_id="7")


async def test_voice_success_temporary_permanent_slow_and_down(fakes: NotifySandbox) -> None:
    voice = fakes.senders(timeout_s=0.5)["voice"]
    try:
        assert "^" in await voice.send(call())
        phone, tts_code, tts = fakes.voice.sent[-1]
        assert phone == "13800138000" and tts_code == demo_voice_templates()["alarm.trip"]
        assert tts == {"text": "北园 H000001 已停止供电，请充值"}  # the rendered text is spoken

        fakes.voice.faults.append("isv.BUSINESS_LIMIT_CONTROL")  # 触发流控: try later
        with pytest.raises(SendError) as err:
            await voice.send(call())
        assert err.value.temporary and err.value.code == "isv.BUSINESS_LIMIT_CONTROL"
        fakes.voice.faults.append("isp.SYSTEM_ERROR")
        with pytest.raises(SendError) as err:
            await voice.send(call())
        assert err.value.temporary

        for code in ("isv.OUT_OF_SERVICE", "isv.TTS_TEMPLATE_ILLEGAL"):
            fakes.voice.faults.append(code)
            with pytest.raises(SendError) as err:
                await voice.send(call())
            assert not err.value.temporary and err.value.code == code
        with pytest.raises(SendError) as err:
            await voice.send(call("12345"))
        assert err.value.code == "isv.MOBILE_NUMBER_ILLEGAL" and not err.value.temporary
        with pytest.raises(SendError) as err:  # no TTS template for a non-urgent key
            await voice.send(call(template="recharge.done"))
        assert err.value.code == "local.no_template" and not err.value.temporary

        fakes.voice.delay_s = 2  # slower than the client waits
        with pytest.raises(SendError) as err:
            await voice.send(call())
        assert err.value.temporary and err.value.code == "aliyun.unreachable"
        fakes.voice.delay_s = 0
        await fakes.voice.close()
        with pytest.raises(SendError) as err:
            await voice.send(call())
        assert err.value.temporary and err.value.code == "aliyun.unreachable"
    finally:
        await voice.aclose()


async def test_voice_signature_is_checked_by_the_fake(fakes: NotifySandbox) -> None:
    wrong = aliyun.AliyunVoice(KEY_ID, "not-the-secret", VOICE_SHOW_NUMBER,
                               demo_voice_templates(), endpoint=fakes.voice.base_url)  # fmt: skip
    with pytest.raises(SendError) as err:
        await wrong.send(call())
    assert err.value.code == "SignatureDoesNotMatch" and not err.value.temporary
    await wrong.aclose()
    templates = demo_voice_templates()
    bad_number = aliyun.AliyunVoice(
        KEY_ID, "sandbox-secret", "010-1234", templates, endpoint=fakes.voice.base_url
    )
    with pytest.raises(SendError) as err:
        await bad_number.send(call())
    assert err.value.code == "isv.DISPLAY_NUMBER_ILLEGAL" and not err.value.temporary
    await bad_number.aclose()
    assert fakes.voice.sent == []


async def test_official_template_message_token_and_errors(fakes: NotifySandbox) -> None:
    mp = fakes.senders()["official"]
    message = Outgoing("o-follower", "alarm.trip", PARAMS, "已停止供电",
                       wechat_data={"first": {"value": "断电/关阀通知"}})  # fmt: skip
    assert await mp.send(message)
    openid, template_id, data = fakes.official.sent[-1]
    assert openid == "o-follower" and template_id.startswith("mp-") and data["first"]
    assert fakes.official.tokens_issued == 1 and fakes.wechat.tokens_issued == 0  # its own app
    fakes.official.expire_token()
    assert await mp.send(message)  # 40001: one refresh, sent
    assert fakes.official.tokens_issued == 2
    fakes.official.faults.append("45009")  # API frequency limit: temporary
    with pytest.raises(SendError) as err:
        await mp.send(message)
    assert err.value.temporary and err.value.code == "45009"
    fakes.official.faults.append("43004")  # the user unfollowed: permanent
    with pytest.raises(SendError) as err:
        await mp.send(message)
    assert not err.value.temporary
    with pytest.raises(SendError) as err:
        await mp.send(Outgoing("x-unknown", "alarm.trip", PARAMS, "x"))
    assert err.value.code == "40003" and not err.value.temporary
    await fakes.official.close()
    with pytest.raises(SendError) as err:
        await mp.send(message)
    assert err.value.temporary and err.value.code == "wechat.unreachable"


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_receipts_mark_delivered_or_failed_with_the_providers_code(
    db: None, fakes: NotifySandbox, provider: str
) -> None:
    good = await create_account(phone="13800138000")
    gone = await create_account(phone="13900139000")
    waiting = await create_account(phone="13700137000")
    await enqueue_low(good.id, gone.id, waiting.id)
    code = "MK:0001" if provider == "aliyun" else "DELIVRD_FAIL"
    fake = fakes.aliyun if provider == "aliyun" else fakes.tencent
    fake.undelivered["13900139000" if provider == "aliyun" else "+8613900139000"] = code
    if provider == "aliyun":
        fakes.aliyun.pending.add("13700137000")
    senders = fakes.senders(sms=provider)
    try:
        now = datetime.now(UTC)
        assert await deliver_due(senders, now=now) == 3
        later = now + timedelta(minutes=2)
        recorded = await poll_receipts(senders, now=later, every_s=60)
        states = {m.recipient: m for m in await Message.filter(channel=Channel.SMS).order_by("id")}
        assert states["13800138000"].state is MessageState.DELIVERED
        assert states["13800138000"].delivered_at is not None
        failed = states["13900139000"]
        assert failed.state is MessageState.FAILED and failed.error_code == code
        if provider == "aliyun":
            assert recorded == 2 and fakes.aliyun.queries == 3
            pending = states["13700137000"]
            assert pending.state is MessageState.SENT and pending.receipt_polls == 1
            # asked again only after `every_s`; then delivered
            assert await poll_receipts(senders, now=later + timedelta(seconds=10)) == 0
            fakes.aliyun.pending.clear()
            assert await poll_receipts(senders, now=later + timedelta(minutes=2)) == 1
            await pending.refresh_from_db()
            assert pending.state is MessageState.DELIVERED
        else:
            assert recorded == 3  # a pull hands each report out once
            assert await poll_receipts(senders, now=later) == 0
    finally:
        for s in senders.values():
            await s.aclose()
