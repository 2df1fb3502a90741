"""What the chatbot answers: the commands (余额, 用电, 充值, 账单, 发票, 绑定, 帮助), the menu's
clicks (the same commands by key, see server/wechat/menu.json) and the follow/unfollow events.

Every number comes from the tenant API's own services (server.tenant.service: views,
detail, usage, records, invoices — the invoice states and invoiceable amount are
server.invoices' own, read through them), called with the identity the follower acts as
(server.wechat.service.people), so the chatbot shows exactly what the mini-program shows —
the available balance of server.accounts.balance, never a raw wallet. Binding goes through
server.accounts.service (sms, tickets): the same codes, limits and operation-log lines as
the mini-program's binding page.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from server.accounts.config import TenantSettings
from server.accounts.service import sms, tickets
from server.core.errors import ShuidianError
from server.core.money import yuan
from server.metering.service.daily_usage import zone
from server.places.service.sites import site_by_ref, tenant_site_choices
from server.tenant.service import detail, invoices, records, usage, views
from server.wechat.config import OfficialSettings
from server.wechat.service.people import Person
from server.wechat.service.store import Store
from server.wechat.service.wire import Incoming

log = logging.getLogger(__name__)

HELP = (
    "您好，这里是水电缴费助手。回复以下指令：\n"
    "余额 — 查看可用余额\n"
    "用电 — 今日与本月用电、用水\n"
    "充值 — 打开小程序充值\n"
    "账单 — 最近的交易记录\n"
    "发票 — 发票状态与开票方法\n"
    "绑定 — 绑定您的户号\n"
    "帮助 — 显示本说明"
)
NOT_UNDERSTOOD = "抱歉，没有看懂「{text}」。回复「帮助」查看可用指令，如「余额」「用电」「充值」。"
UNBOUND = "您还没有绑定户号。回复「绑定」查看绑定方法，绑定后即可查询余额和用电。"
BIND_HOW = (
    "绑定户号有两种方式：\n"
    "1. 短信验证：回复「绑定 户号」（多个园区时「绑定 园区编号 户号」），验证码将发到户主"
    "登记的手机，再回复「绑定 验证码」。\n"
    "2. 扫码：点菜单「服务 → 扫码绑定」，扫描物业提供的绑定二维码。"
)
INVOICES_SHOWN = 3
INVOICE_OFF = "该园区暂未开通电子发票，如需发票请联系物业服务中心。"
INVOICE_ASK = "申请开票：请在小程序发票页选择缴费记录、填写抬头后提交"
INVOICE_DESK = "申请开票：请联系物业服务中心，提供户号、发票抬头和税号"
INVOICE_SENT = "开具后发票将通过短信或邮件发送给您。"
WELCOME = "感谢关注水电缴费！\n"
# Menu keys (menu.json) → the command they stand for.
CLICKS = {
    "BALANCE": "余额",
    "USAGE": "用电",
    "RECHARGE": "充值",
    "BILLS": "账单",
    "INVOICE": "发票",
    "BIND": "绑定",
    "HELP": "帮助",
}
ALIASES = {
    "余额": "余额", "查余额": "余额", "查询余额": "余额",
    "用电": "用电", "用水": "用电", "用量": "用电", "电量": "用电",
    "充值": "充值", "缴费": "充值", "交费": "充值",
    "账单": "账单", "记录": "账单", "交易记录": "账单",
    "发票": "发票", "开票": "发票",
    "绑定": "绑定", "绑定户号": "绑定",
    "帮助": "帮助", "help": "帮助", "?": "帮助", "？": "帮助", "菜单": "帮助",
}  # fmt: skip
SMS_CODE = re.compile(r"^\d{6}$")
RECORDS_SHOWN = 5
MAX_ACCOUNTS_SHOWN = 5


@dataclass
class Chat:
    """What answering needs beside the message: settings, the store for binding in progress,
    the binding service's key, limits and SMS sender (the tenant window's own)."""

    settings: OfficialSettings
    store: Store
    tenant: TenantSettings
    secret: bytes
    sms_sender: sms.SmsSender
    miniapp_appid: str


async def answer(chat: Chat, who: Person, msg: Incoming) -> str:
    """The reply text; "" when nothing is to be said (WeChat is answered "success")."""
    try:
        if msg.kind == "text":
            return await _text(chat, who, msg.content)
        if msg.kind == "event":
            return await _event(chat, who, msg)
        if msg.kind in ("image", "voice", "video", "shortvideo", "location", "link"):
            return "目前只能识别文字指令。" + "回复「帮助」查看可用指令。"
        return ""  # an event or type we do not handle: nothing to say
    except ShuidianError as exc:  # a tenant-facing refusal (code wrong, account unknown …)
        return exc.message


async def _event(chat: Chat, who: Person, msg: Incoming) -> str:
    if msg.event in ("subscribe", "subscribe_scan"):
        bound = (await views.account_summaries(who.identity_id))[:MAX_ACCOUNTS_SHOWN]
        return WELCOME + (await _balance(who, bound) if bound else HELP + "\n\n" + UNBOUND)
    if msg.event == "unsubscribe":
        log.info("wechat: follower %s unfollowed", who.follower_id)
        return ""  # WeChat delivers nothing to a follower who left
    if msg.event == "click":
        command = CLICKS.get(msg.key)
        return await _command(chat, who, command, "") if command else HELP
    if msg.event in ("scancode_waitmsg", "scancode_push"):
        if not msg.scan.strip().startswith(tickets.PREFIX + "."):
            return "这不是绑定二维码。请扫描物业提供的绑定二维码，或回复「绑定」查看其他方式。"
        return await _bind(chat, who, msg.scan.strip())
    return ""


async def _text(chat: Chat, who: Person, text: str) -> str:
    text = text.replace("\u3000", " ").strip()
    if not text:
        return HELP
    head, _, rest = text.partition(" ")
    command = ALIASES.get(head.lower())
    if command is None and text.startswith("绑定"):  # 绑定123456, no space
        command, rest = "绑定", text[2:]
    if command is None:
        shown = text if len(text) <= 20 else text[:20] + "…"
        return NOT_UNDERSTOOD.format(text=shown)
    return await _command(chat, who, command, rest.strip())


async def _command(chat: Chat, who: Person, command: str, rest: str) -> str:
    if command == "帮助":
        return HELP
    if command == "绑定":
        return await _bind(chat, who, rest)
    # The accounts the follower may see (bound_rows' isolation join), listed once per reply.
    bound = (await views.account_summaries(who.identity_id))[:MAX_ACCOUNTS_SHOWN]
    if not bound:
        return UNBOUND
    if command == "余额":
        return await _balance(who, bound)
    if command == "用电":
        return await _usage(who, bound)
    if command == "充值":
        return await _recharge(chat, bound)
    if command == "账单":
        return await _records(who, bound)
    if command == "发票":
        return await _invoices(chat, who, bound)
    return HELP


def _money(fen: int) -> str:
    return f"¥{yuan(fen):,.2f}" if fen >= 0 else f"-¥{yuan(-fen):,.2f}"


def _title(account: dict[str, Any]) -> str:
    place = account["room"] or account["tenant_name"]
    return f"【{account['site']['name']} {account['number']}】{place}"


async def _details(who: Person, bound: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [await detail.account_detail(who.identity_id, a["id"]) for a in bound]


async def _balance(who: Person, bound: list[dict[str, Any]]) -> str:
    lines = []
    for account in await _details(who, bound):
        lines.append(_title(account))
        lines.append(f"可用余额：{_money(account['available_fen'])}")
        if account["days_left"] is not None:
            lines.append(f"预计还可使用约 {account['days_left']:.0f} 天")
        if account["status"] != "open":
            lines.append("（该户已销户）")
    lines.append("回复「充值」即可缴费。")
    return "\n".join(lines)


async def _usage(who: Person, bound: list[dict[str, Any]]) -> str:
    today = datetime.now(zone()).date()
    month = usage.period("month", today.replace(day=1), today)
    lines = []
    for account in await _details(who, bound):
        lines.append(_title(account))
        t = account["today"]
        lines.append(
            f"今日：用电 {_qty(t['electricity_kwh'])} kWh，用水 {_qty(t['water_m3'])} m³，"
            f"费用 {_money(t['amount_fen'])}"
        )
        sums: dict[str, Decimal] = {"electricity": Decimal(0), "water": Decimal(0)}
        fen = 0
        for meter in account["meters"]:
            used = await usage.meter_usage(who.identity_id, account["id"], meter["id"], month)
            for item in used["items"]:
                sums[used["kind"]] += Decimal(item["quantity"])
                fen += item["amount_fen"] or 0
        lines.append(
            f"本月：用电 {_qty(sums['electricity'])} kWh，用水 {_qty(sums['water'])} m³，"
            f"费用 {_money(fen)}"
        )
    return "\n".join(lines)


def _qty(value: str | Decimal) -> str:
    return f"{Decimal(value):.2f}"


async def _recharge(chat: Chat, bound: list[dict[str, Any]]) -> str:
    lines = []
    for account in bound:
        path = f"{chat.settings.recharge_page}?account={account['id']}"
        link = (
            f'<a href="{chat.settings.recharge_url}" data-miniprogram-appid="{chat.miniapp_appid}"'
            f' data-miniprogram-path="{path}">点此充值</a>'
        )
        lines.append(f"{_title(account)} 可用余额 {_money(account['available_fen'])}：{link}")
    return "\n".join(lines)


async def _records(who: Person, bound: list[dict[str, Any]]) -> str:
    lines = []
    for account in bound:
        lines.append(_title(account))
        page = await records.account_records(
            who.identity_id, account["id"], "all", RECORDS_SHOWN, records.Cursor()
        )
        for r in page["items"]:
            lines.append(f"{r['day']} {r['title']} {_money(r['amount_fen'])}")
        if not page["items"]:
            lines.append("暂无记录")
    lines.append("完整记录请在小程序「记录」页查看。")
    return "\n".join(lines)


async def _invoices(chat: Chat, who: Person, bound: list[dict[str, Any]]) -> str:
    """Per account: what may still be invoiced, the latest invoices with their states, and how
    to ask for one (the mini-program's invoice page when configured, else the service desk)."""
    lines = []
    asked = False
    for account in bound:
        lines.append(_title(account))
        found = await invoices.overview(who.identity_id, account["id"])
        if not found["enabled"] and not found["invoices"]:
            lines.append(INVOICE_OFF)
            continue
        lines.append(f"可开票金额：{_money(found['invoiceable_fen'])}")
        for v in found["invoices"][:INVOICES_SHOWN]:
            day = (v["issued_at"] or v["requested_at"] or "")[:10]
            state = v["status_label"] + (f"，发票号码 {v['invoice_no']}" if v["invoice_no"] else "")
            lines.append(f"{day} {v['kind_label']} {_money(v['amount_fen'])} {state}")
        if not found["invoices"]:
            lines.append("暂无发票")
        if found["enabled"] and found["invoiceable_fen"] > 0 and not asked:
            asked = True
    if asked:
        if chat.settings.invoice_page:
            link = (
                f'<a href="{chat.settings.recharge_url}" data-miniprogram-appid='
                f'"{chat.miniapp_appid}" data-miniprogram-path="{chat.settings.invoice_page}">'
                "点此申请</a>"
            )
            lines.append(f"{INVOICE_ASK}：{link}。{INVOICE_SENT}")
        else:
            lines.append(f"{INVOICE_DESK}。{INVOICE_SENT}")
    return "\n".join(lines)


async def _bind(chat: Chat, who: Person, rest: str) -> str:
    args = rest.split()
    if not args:
        return BIND_HOW
    if args[0].startswith(tickets.PREFIX + "."):
        binding = await tickets.redeem_ticket(
            chat.secret, args[0], who.identity_id, actor=_actor(who)
        )
        return await _bound(who, binding.account_id)
    key = f"bind:{who.follower_id}"
    if len(args) == 1 and SMS_CODE.match(args[0]):
        pending = await chat.store.get(key)
        if pending is not None:
            wanted = json.loads(pending)
            binding = await sms.verify_code(
                chat.secret, who.identity_id, wanted["site_id"], wanted["number"], args[0],
                limits=chat.tenant, actor=_actor(who),
            )  # fmt: skip
            await chat.store.delete(key)
            return await _bound(who, binding.account_id)
    if len(args) == 1:
        sites = await tenant_site_choices()
        if len(sites) != 1:
            listed = "\n".join(f"{s.id} {s.name}" for s in sites[:20])
            return f"请回复「绑定 园区编号 户号」，园区编号：\n{listed}"
        site_id, number = sites[0].id, args[0]
    else:
        site_id, number = (await site_by_ref(args[0])).id, args[1]
    sent = await sms.send_code(
        chat.sms_sender, chat.secret, who.identity_id, site_id, number, limits=chat.tenant
    )
    await chat.store.put(
        key, json.dumps({"site_id": site_id, "number": number}), chat.tenant.sms_code_ttl_s
    )
    minutes = sent.expires_in // 60
    return f"验证码已发送到 {sent.phone_masked}，{minutes} 分钟内回复「绑定 验证码」完成绑定。"


async def _bound(who: Person, account_id: int) -> str:
    account = await views.account_summary(who.identity_id, account_id)
    return f"绑定成功：{_title(account)}\n可用余额：{_money(account['available_fen'])}"


def _actor(who: Person) -> str:
    return f"tenant:{who.identity_id}"
