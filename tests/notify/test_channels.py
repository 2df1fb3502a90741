"""Each channel client against its local fake: success, temporary failure, permanent failure
(keeping the provider's code), provider down; the signatures the fakes verify."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.notify.providers import aliyun
from server.notify.providers.base import Outgoing, SendError
from server.notify.providers.wechat import Tokens
from server.notify.sandbox import APP_SECRET, APPID, NotifySandbox, demo_sms_templates

PARAMS = {"account": "H000001", "balance": "18.00", "level": "2"}


def sms(phone: str = "13800138000") -> Outgoing:
    return Outgoing(phone, "alarm.balance", PARAMS, "余额不足", subject="余额不足提醒")


@pytest.fixture
async def fakes() -> AsyncIterator[NotifySandbox]:
    async with NotifySandbox() as sandbox:
        yield sandbox


def test_aliyun_signature_matches_the_documented_example() -> None:
    """Alibaba Cloud's signature document: DescribeRegions signed with `testsecret`."""
    params = {
        "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
    }  # fmt: skip
    assert aliyun.signature("testsecret", params, "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_sms_success_temporary_permanent_down(fakes: NotifySandbox, provider: str) -> None:
    sender = fakes.senders(sms=provider)["sms"]
    fake = fakes.aliyun if provider == "aliyun" else fakes.tencent
    try:
        assert await sender.send(sms())
        phone, template, params = fake.sent[-1]
        assert phone.endswith("13800138000")
        assert template == demo_sms_templates()["alarm.balance"]
        assert list(params.values() if isinstance(params, dict) else params) == list(
            PARAMS.values()
        )

        busy = (
            "isv.BUSINESS_LIMIT_CONTROL"
            if provider == "aliyun"
            else "LimitExceeded.PhoneNumberThirtySecondLimit"
        )
        fake.faults.append(busy)
        with pytest.raises(SendError) as err:
            await sender.send(sms())
        assert err.value.temporary and err.value.code == busy
        assert await sender.send(sms())  # the fault was one answer: now it goes

        with pytest.raises(SendError) as err:
            await sender.send(sms("12345"))
        bad = (
            "isv.MOBILE_NUMBER_ILLEGAL"
            if provider == "aliyun"
            else "InvalidParameterValue.IncorrectPhoneNumber"
        )
        assert not err.value.temporary and err.value.code == bad

        await fake.close()  # the provider is down
        with pytest.raises(SendError) as err:
            await sender.send(sms())
        assert err.value.temporary and err.value.code == f"{provider}.unreachable"
    finally:
        await sender.aclose()


async def test_sms_with_a_wrong_secret_is_refused_by_the_signature_check(
    fakes: NotifySandbox,
) -> None:
    wrong = aliyun.AliyunSms("sandbox-key", "not-the-secret", "水电", demo_sms_templates(),
                             endpoint=fakes.aliyun.base_url)  # fmt: skip
    with pytest.raises(SendError) as err:
        await wrong.send(sms())
    assert err.value.code == "SignatureDoesNotMatch" and not err.value.temporary
    await wrong.aclose()
    assert fakes.aliyun.sent == []


async def test_email_success_refused_and_down(fakes: NotifySandbox) -> None:
    mail = fakes.senders()["email"]
    message = Outgoing("tenant@example.com", "alarm.balance", PARAMS, "余额不足，请充值",
                       subject="余额不足提醒")  # fmt: skip
    assert await mail.send(message)
    _, to, content = fakes.smtp.sent[-1]
    assert to == "tenant@example.com" and b"=?utf-8?" in content  # RFC 2047 subject
    fakes.smtp.refused.add("gone@example.com")
    with pytest.raises(SendError) as err:
        await mail.send(Outgoing("gone@example.com", "alarm.balance", PARAMS, "x"))
    assert err.value.code == "smtp.550" and not err.value.temporary
    await fakes.smtp.close()
    with pytest.raises(SendError) as err:
        await mail.send(message)
    assert err.value.temporary


async def test_wechat_token_shared_refreshed_once_and_errors(fakes: NotifySandbox) -> None:
    wechat = fakes.senders()["wechat"]
    message = Outgoing("o-alice", "alarm.balance", PARAMS, "余额不足",
                       wechat_template_id="demo-low-balance",
                       wechat_data={"thing1": {"value": "H000001"}})  # fmt: skip
    assert await wechat.send(message)
    assert await wechat.send(message)
    assert fakes.wechat.tokens_issued == 1  # one token serves every message
    fakes.wechat.expire_token()
    assert await wechat.send(message)  # 40001: refreshed once, sent
    assert fakes.wechat.tokens_issued == 2
    fakes.wechat.faults.append("-1")
    with pytest.raises(SendError) as err:
        await wechat.send(message)
    assert err.value.temporary and err.value.code == "-1"
    fakes.wechat.faults.append("43101")
    with pytest.raises(SendError) as err:
        await wechat.send(message)
    assert not err.value.temporary and err.value.code == "43101"
    with pytest.raises(SendError) as err:
        await wechat.send(Outgoing("x-unknown", "alarm.balance", PARAMS, "x",
                                   wechat_template_id="demo-low-balance"))  # fmt: skip
    assert err.value.code == "40003"
    await fakes.wechat.close()
    with pytest.raises(SendError) as err:
        await wechat.send(message)
    assert err.value.temporary and err.value.code == "wechat.unreachable"


async def test_processes_share_one_token_through_redis(fakes: NotifySandbox, redis: Redis) -> None:
    """Three notifier processes (three `Tokens`) fetch the token once between them; when
    WeChat refuses it, one of them fetches the next and the others read it."""
    tokens = [Tokens(APPID, APP_SECRET, fakes.wechat.base_url, redis) for _ in range(3)]
    got = await asyncio.gather(*(t.get() for t in tokens))
    assert len(set(got)) == 1 and fakes.wechat.tokens_issued == 1
    renewed = await asyncio.gather(*(t.get(stale=got[0]) for t in tokens))
    assert len(set(renewed)) == 1 and renewed[0] != got[0]
    assert fakes.wechat.tokens_issued == 2
