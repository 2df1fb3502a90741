"""The official-account chatbot end to end: WeChat's server (WechatServer) signs and posts
messages to our endpoint, plain and encrypted; replies are read back as WeChat reads them.
Numbers are compared with what the tenant API's services give the mini-program."""

from __future__ import annotations

import time

import pytest

from server.accounts.models import (
    AccountBinding,
    BindingCode,
    BindingRole,
    TenantApp,
    TenantIdentity,
)
from server.accounts.service.tickets import issue_ticket
from server.invoices.service.requests import request_invoice
from server.ledger.service import Channel, recharge
from server.places.models import Site
from server.tenant.service import views
from server.wechat.config import OfficialSettings
from server.wechat.service.inbox import Inbox
from server.wechat.service.menu import load_menu, publish
from server.wechat.service.store import RedisStore
from tests.factories import bind, create_account, create_identity
from tests.invoices.fixtures import company, paid_counter, set_up_invoicing
from tests.wechat.conftest import Bot

MODES = pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
PHONE = "13912345678"


def _openid() -> str:
    return f"o-oa-{time.monotonic_ns()}"


async def follower_bound_to(*accounts: object) -> str:
    """A follower (official-account identity) bound to `accounts`."""
    openid = _openid()
    identity = await create_identity(app=TenantApp.OFFICIAL, openid=openid)
    for account in accounts:
        await bind(identity, account)  # type: ignore[arg-type]
    return openid


async def test_url_verification_echoes_only_a_true_signature(chatbot: Bot) -> None:
    ok = await chatbot.wechat.verify_url("echo-12345")
    assert (ok.status_code, ok.text) == (200, "echo-12345")
    forged = await chatbot.wechat.verify_url("echo-12345", token="not-our-token")
    assert forged.status_code == 403 and "echo" not in forged.text
    stale = await chatbot.wechat.verify_url("echo-1", timestamp=int(time.time()) - 3600)
    assert stale.status_code == 403


@MODES
async def test_balance_is_the_mini_programs(db: None, chatbot: Bot, encrypted: bool) -> None:
    account = await create_account(number="A-0101", balance_fen=12_345)
    openid = await follower_bound_to(account)
    delivery = await chatbot.wechat.post(chatbot.wechat.text_xml(openid, "余额"),
                                         encrypted=encrypted)  # fmt: skip
    assert delivery.status == 200 and delivery.encrypted is encrypted
    identity = await TenantIdentity.get(openid=openid)
    shown = (await views.account_summaries(identity.id))[0]["available_fen"]
    assert shown == 12_345
    assert "A-0101" in delivery.text and "可用余额：¥123.45" in delivery.text


@MODES
async def test_commands(db: None, chatbot: Bot, encrypted: bool) -> None:
    account = await create_account(number="B-0202", balance_fen=0)
    await recharge(account.id, Channel.WECHAT, 50_000, key=f"r-{encrypted}", actor="tenant:o")
    openid = await follower_bound_to(account)

    async def say(text: str) -> str:
        return await chatbot.wechat.say(openid, text, encrypted=encrypted)

    usage = await say("用电")
    assert "今日：用电 0.00 kWh" in usage and "本月：" in usage
    link = await say("充值")
    assert f'data-miniprogram-path="pages/recharge/recharge?account={account.id}"' in link
    assert "¥500.00" in link
    bills = await say("账单")
    assert "微信充值 ¥500.00" in bills
    assert "暂未开通电子发票" in await say("发票")
    # Invoicing set up, a counter payment of ¥300, ¥100 of it asked for: what the tenant API
    # shows the mini-program (invoiceable amount, the invoice's state) and how to ask.
    await set_up_invoicing((await Site.get(id=account.site_id)).organisation_id)  # type: ignore[attr-defined]
    paid = await paid_counter(account, 30_000)  # type: ignore[arg-type]
    await request_invoice(account.id, company(), [paid], actor="tenant:o", amount_fen=10_000)
    invoices = await say("开票")
    assert "可开票金额：¥200.00" in invoices and "普通发票 ¥100.00 待审核" in invoices
    assert "联系物业服务中心" in invoices and "短信或邮件" in invoices
    assert "余额 — 查看可用余额" in await say("帮助")
    assert "回复「帮助」" in await say("今天天气怎么样")
    assert "绑定户号有两种方式" in await say("绑定")


async def test_unbound_follower_is_told_how_to_bind(db: None, chatbot: Bot) -> None:
    openid = _openid()
    for command in ("余额", "用电", "充值", "账单"):
        assert "您还没有绑定户号" in await chatbot.wechat.say(openid, command)
    assert await TenantIdentity.filter(app=TenantApp.OFFICIAL, openid=openid).count() == 1


async def test_bind_by_sms_code_then_balance(db: None, chatbot: Bot) -> None:
    account = await create_account(number="C-0303", phone=PHONE, balance_fen=8_800)
    openid = _openid()
    sent = await chatbot.wechat.say(openid, "绑定 C-0303")
    assert "验证码已发送到 139****5678" in sent
    code = chatbot.app.ctx.sms_sender.last_code(PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "验证码不正确" in await chatbot.wechat.say(openid, f"绑定 {wrong}")
    done = await chatbot.wechat.say(openid, f"绑定 {code}")
    assert "绑定成功" in done and "C-0303" in done
    identity = await TenantIdentity.get(app=TenantApp.OFFICIAL, openid=openid)
    binding = await AccountBinding.get(identity_id=identity.id, account_id=account.id)
    assert binding.via == "sms"
    assert "¥88.00" in await chatbot.wechat.say(openid, "余额")


async def test_bind_by_scanning_a_ticket_from_the_menu(db: None, chatbot: Bot) -> None:
    account = await create_account(number="D-0404")
    issued = await issue_ticket(chatbot.app.ctx.tenant_secret, account.site_id, "D-0404",
                                role=BindingRole.ACCOUNTANT, hours=1, actor="test")  # fmt: skip
    openid = _openid()
    event = chatbot.wechat.event_xml(openid, "scancode_waitmsg", "BIND_SCAN", issued.token)
    assert "绑定成功" in (await chatbot.wechat.post(event)).text
    again = chatbot.wechat.event_xml(openid, "scancode_waitmsg", "BIND_SCAN", issued.token,
                                     at=int(time.time()) + 1)  # fmt: skip
    assert "已被使用" in (await chatbot.wechat.post(again)).text
    other = chatbot.wechat.event_xml(openid, "scancode_waitmsg", "BIND_SCAN", "https://x.cn",
                                     at=int(time.time()) + 2)  # fmt: skip
    assert "不是绑定二维码" in (await chatbot.wechat.post(other)).text


async def test_menu_click_and_publishing_the_menu(db: None, chatbot: Bot) -> None:
    account = await create_account(number="E-0505", balance_fen=100)
    openid = await follower_bound_to(account)
    click = await chatbot.wechat.post(chatbot.wechat.event_xml(openid, "click", "BALANCE"))
    assert "E-0505" in click.text and "¥1.00" in click.text
    settings: OfficialSettings = chatbot.inbox.chat.settings
    menu = load_menu(settings, "wx-mini-test")
    await publish(chatbot.inbox.api, menu)  # type: ignore[arg-type]
    published = chatbot.api.menus[-1]
    assert published["button"][1]["appid"] == "wx-mini-test"
    keys = {s.get("key") for b in published["button"] for s in b.get("sub_button", [])}
    assert {"BALANCE", "USAGE", "BILLS", "BIND_SCAN", "INVOICE", "HELP"} <= keys


async def test_subscribe_links_the_mini_program_identity_by_unionid(db: None, chatbot: Bot) -> None:
    account = await create_account(number="F-0606", balance_fen=4_200)
    mini = await create_identity(unionid="u-same-person")
    await bind(mini, account)
    openid = _openid()
    chatbot.api.unionids[openid] = "u-same-person"
    welcome = await chatbot.wechat.post(chatbot.wechat.event_xml(openid, "subscribe"))
    assert "感谢关注" in welcome.text and "F-0606" in welcome.text and "¥42.00" in welcome.text
    follower = await TenantIdentity.get(app=TenantApp.OFFICIAL, openid=openid)
    assert follower.unionid == "u-same-person"
    stranger = _openid()
    hello = await chatbot.wechat.post(chatbot.wechat.event_xml(stranger, "subscribe"))
    assert "感谢关注" in hello.text and "您还没有绑定户号" in hello.text
    gone = await chatbot.wechat.post(chatbot.wechat.event_xml(stranger, "unsubscribe"))
    assert (gone.status, gone.body) == (200, "success")


@MODES
async def test_a_retried_msgid_is_acted_on_once(db: None, chatbot: Bot, encrypted: bool) -> None:
    await create_account(number="G-0707", phone=PHONE)
    openid = _openid()
    xml = chatbot.wechat.text_xml(openid, "绑定 G-0707", msg_id=int(time.time_ns() % 10**15))
    first = await chatbot.wechat.post(xml, encrypted=encrypted)
    assert "验证码已发送" in first.text
    for _ in range(3):  # WeChat's retries of the same MsgId
        retry = await chatbot.wechat.post(xml, encrypted=encrypted)
        assert retry.text == first.text
    assert await BindingCode.filter(phone=PHONE).count() == 1  # one code sent, not four


async def test_a_slow_reply_goes_out_as_a_customer_service_message(db: None, chatbot: Bot) -> None:
    account = await create_account(number="H-0808", balance_fen=999)
    openid = await follower_bound_to(account)
    inbox: Inbox = chatbot.inbox
    normal = inbox.chat.settings
    inbox.chat.settings = normal.model_copy(update={"reply_budget_s": 0.0})
    chatbot.api.expire_token()  # the token held is refused once: refreshed through Tokens
    try:
        xml = chatbot.wechat.text_xml(openid, "余额")
        answered = await chatbot.wechat.post(xml)
        assert (answered.status, answered.body) == (200, "success")
        await inbox.drain()
        retry = await chatbot.wechat.post(xml)  # WeChat retried anyway: nothing twice
        assert retry.body == "success"
        await inbox.drain()
    finally:
        inbox.chat.settings = normal
    sent = [s for s in chatbot.api.sent if s[0] == openid]
    assert len(sent) == 1 and "H-0808" in sent[0][2] and "¥9.99" in sent[0][2]


async def test_forged_bombs_and_oversize_are_refused(db: None, chatbot: Bot) -> None:
    w = chatbot.wechat
    openid = _openid()
    forged = await w.post(w.text_xml(openid, "余额"), token="guess")
    assert forged.status == 403
    query, body = w.envelope(w.text_xml(openid, "余额"), encrypted=True)
    query["msg_signature"] = "0" * 40
    assert (await w.post_raw(query, body)).status == 403
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            "<xml><ToUserName>gh</ToUserName><FromUserName>x</FromUserName>"
            "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lol2;</Content>"
            "<MsgId>1</MsgId></xml>")  # fmt: skip
    assert (await w.post(bomb, encrypted=False)).status == 400
    assert (await w.post(bomb, encrypted=True)).status == 400
    huge = w.text_xml(openid, "余" * 20_000)
    assert (await w.post(huge, encrypted=False)).status == 413
    assert (await w.post("<xml><nope", encrypted=False)).status == 400
    assert await TenantIdentity.filter(openid=openid).count() == 0  # nothing was acted on


async def test_safe_mode_refuses_plain_messages(db: None, chatbot: Bot) -> None:
    inbox: Inbox = chatbot.inbox
    normal = inbox.wire.settings
    inbox.wire.settings = normal.model_copy(update={"encryption": "safe"})
    try:
        plain = await chatbot.wechat.post(chatbot.wechat.text_xml(_openid(), "帮助"),
                                          encrypted=False)  # fmt: skip
        assert plain.status == 403
        sealed = await chatbot.wechat.post(chatbot.wechat.text_xml(_openid(), "帮助"))
        assert sealed.status == 200 and "余额" in sealed.text
    finally:
        inbox.wire.settings = normal


async def test_non_text_messages_get_a_hint(db: None, chatbot: Bot) -> None:
    w = chatbot.wechat
    xml = w._xml(_openid(), "image", PicUrl="http://x/1.jpg", MediaId="m1", MsgId=77_000_001)
    assert "只能识别文字指令" in (await w.post(xml)).text


@pytest.mark.postgres
async def test_seen_ids_are_shared_through_redis(db: None, chatbot: Bot, redis: object) -> None:
    """Production: the MsgIds seen live in Redis, so another web worker (another Inbox on
    the same Redis) answers a retry from the kept reply instead of acting again."""
    await create_account(number="J-0909", phone=PHONE)
    inbox: Inbox = chatbot.inbox
    memory = inbox.chat.store
    inbox.chat.store = RedisStore(redis)
    try:
        openid = _openid()
        xml = chatbot.wechat.text_xml(openid, "绑定 J-0909", msg_id=int(time.time_ns() % 10**15))
        first = await chatbot.wechat.post(xml)
        inbox.chat.store = RedisStore(redis)  # "another worker": a new client, same Redis
        second = await chatbot.wechat.post(xml)
    finally:
        inbox.chat.store = memory
    assert "验证码已发送" in first.text and second.text == first.text
    assert await BindingCode.filter(phone=PHONE).count() == 1
