"""The official account's server URL (公众号后台 → 服务器配置): `GET /wechat/official` is
WeChat's URL check, `POST /wechat/official` every message and event of a follower.

At start-up this window builds the chatbot (`app.ctx.wechat_inbox`) from
`app.ctx.wechat_settings` (a test's) or SHUIDIAN_WECHAT_*; in embedded mode without them it
is the demo's sandbox official account, with a local fake of WeChat's API for follow-up
messages (server/wechat/sandbox.py). In production without them the endpoint answers 503.
Binding uses what the tenant binding window set up (key, SMS sender, limits).
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, text
from sanic_ext import openapi

from server.accounts.config import TenantSettings
from server.accounts.service import sms
from server.accounts.service.keys import secret_key
from server.notify.providers.wechat import Tokens
from server.wechat.config import OfficialSettings
from server.wechat.sandbox import FakeOfficialApi
from server.wechat.service import bot
from server.wechat.service.inbox import Inbox
from server.wechat.service.official import OfficialApi
from server.wechat.service.store import chat_store
from server.wechat.service.wire import Refused, Wire

log = logging.getLogger(__name__)
bp = Blueprint("wechat_official")
PATH = "/wechat/official"


@bp.before_server_start
async def _start_chatbot(app: Sanic) -> None:
    ctx = app.ctx
    settings: OfficialSettings = getattr(ctx, "wechat_settings", None) or OfficialSettings()
    ctx.wechat_inbox = None
    if not settings.configured():
        if ctx.settings.mode != "embedded":
            log.warning("wechat: SHUIDIAN_WECHAT_APPID/TOKEN not set: %s answers 503", PATH)
            return
        settings = settings.sandboxed()
        fake = FakeOfficialApi(appid=settings.appid, secret=settings.secret_value())
        await fake.start()
        ctx.wechat_api_sandbox = fake
        settings = settings.model_copy(update={"api_base_url": fake.base_url})
    ctx.wechat_settings = settings
    tenant = getattr(ctx, "tenant_settings", None) or TenantSettings()
    secret = getattr(ctx, "tenant_secret", None) or secret_key(ctx.settings)
    sender = getattr(ctx, "sms_sender", None) or sms.sms_sender(ctx.settings.mode)
    tokens = Tokens(settings.appid, settings.secret_value(), settings.api_base_url, ctx.redis)
    api = OfficialApi(settings.appid, tokens, settings.api_base_url, settings.api_timeout_s)
    chat = bot.Chat(
        settings, chat_store(ctx.redis), tenant, secret, sender,
        settings.miniapp_appid or tenant.miniapp_appid or "wx-sandbox",
    )  # fmt: skip
    ctx.wechat_inbox = Inbox(Wire(settings), chat, api)


@bp.after_server_stop
async def _stop_chatbot(app: Sanic) -> None:
    inbox: Inbox | None = getattr(app.ctx, "wechat_inbox", None)
    if inbox is not None:
        await inbox.drain()
    fake = getattr(app.ctx, "wechat_api_sandbox", None)
    if fake is not None:
        await fake.close()
        app.ctx.wechat_api_sandbox = None


def _inbox(request: Request) -> Inbox | None:
    return getattr(request.app.ctx, "wechat_inbox", None)


def _query(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in request.args.items() if v}


def _plain(body: str, status: int = 200) -> HTTPResponse:
    return text(body, status=status, content_type="text/xml; charset=utf-8"
                if body.startswith("<xml>") else "text/plain; charset=utf-8")  # fmt: skip


@bp.get(PATH)
@openapi.summary("公众号服务器地址验证（微信服务器调用）")
@openapi.response(200, {"text/plain": str}, "验签通过：原样返回 echostr")
@openapi.response(403, {"text/plain": str}, "签名错误或时间戳过期")
@openapi.response(503, {"text/plain": str}, "未配置公众号")
async def verify(request: Request) -> HTTPResponse:
    inbox = _inbox(request)
    if inbox is None:
        return _plain("official account not configured", 503)
    try:
        return _plain(inbox.wire.verify_url(_query(request)))
    except Refused as exc:
        return _refused(request, exc)


@bp.post(PATH)
@openapi.summary("公众号消息与事件（微信服务器推送，明文或安全模式）")
@openapi.body({"text/xml": str}, required=True)
@openapi.response(200, {"text/xml": str}, "被动回复的 XML，或 success（稍后以客服消息回复）")
@openapi.response(400, {"text/plain": str}, "XML 无效或含 DTD/实体")
@openapi.response(403, {"text/plain": str}, "签名错误或时间戳过期")
@openapi.response(413, {"text/plain": str}, "消息体过大")
@openapi.response(503, {"text/plain": str}, "未配置公众号")
async def receive(request: Request) -> HTTPResponse:
    inbox = _inbox(request)
    if inbox is None:
        return _plain("official account not configured", 503)
    length = int(request.headers.get("content-length") or 0)
    if length > inbox.wire.settings.max_body_bytes:
        return _refused(request, Refused(413, "body too large"))
    try:
        return _plain(await inbox.receive(_query(request), request.body))
    except Refused as exc:
        return _refused(request, exc)


def _refused(request: Request, exc: Refused) -> HTTPResponse:
    peer: Any = request.remote_addr or request.ip
    log.warning("wechat: refused a request from %s: %s", peer, exc.reason)
    return _plain(exc.reason, exc.status)
