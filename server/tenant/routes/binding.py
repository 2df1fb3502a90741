"""Binding a WeChat user to accounts and the tenant's own settings (/api/v1/sites,
/api/v1/bind…, /api/v1/accounts/{id}/binding, /api/v1/me…).

At start-up this window takes what binding needs, unless the caller put it there first:
the tenant settings (`app.ctx.tenant_settings`), the key that signs QR tickets and SMS
codes (`app.ctx.tenant_secret`) and the SMS sender (`app.ctx.sms_sender`: the logged
sandbox in embedded mode, none in production until the notifier's SMS channel).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, empty, json
from sanic_ext import openapi

from server.accounts.config import TenantSettings
from server.accounts.routes.guard import tenant_of, tenant_required
from server.accounts.service import binding, sms, subscriptions, tickets
from server.accounts.service.keys import secret_key
from server.core.apidoc import error_answers
from server.places.service.sites import tenant_site_choices
from server.tenant.schemas import parse_body
from server.tenant.schemas.binding import (
    BoundOut,
    MeOut,
    QrBindIn,
    SiteList,
    SmsSendIn,
    SmsSendOut,
    SmsVerifyIn,
    SubscriptionsIn,
    SubscriptionsOut,
)
from server.tenant.service import me

bp = Blueprint("tenant_binding")

_JSON = "application/json"


@bp.before_server_start
async def _start_binding(app: Sanic) -> None:
    settings = app.ctx.settings
    if getattr(app.ctx, "tenant_settings", None) is None:
        app.ctx.tenant_settings = TenantSettings()
    if getattr(app.ctx, "tenant_secret", None) is None:
        app.ctx.tenant_secret = secret_key(settings)
    if getattr(app.ctx, "sms_sender", None) is None:
        app.ctx.sms_sender = sms.sms_sender(settings.mode)


def _ctx(request: Request) -> Any:
    return request.app.ctx


def _actor(request: Request) -> str:
    return f"tenant:{tenant_of(request).identity_id}"


@bp.get("/api/v1/sites")
@openapi.summary("可选园区（绑定页）")
@openapi.response(200, {_JSON: SiteList}, "园区列表")
@error_answers()
@tenant_required
async def sites(request: Request) -> HTTPResponse:
    return json({"items": [asdict(site) for site in await tenant_site_choices()]})


@bp.post("/api/v1/bind/sms/send")
@openapi.summary("发送绑定验证码到户主登记的手机")
@openapi.body({_JSON: SmsSendIn}, required=True)
@openapi.response(200, {_JSON: SmsSendOut}, "已发送")
@error_answers(
    (404, "户号不存在或未登记手机号"),
    (422, "validation_failed"),
    (429, "too_many_codes：发送过于频繁（detail.retry_after 秒）"),
    (503, "sms_unavailable：短信通道未开通"),
)
@tenant_required
async def sms_send(request: Request) -> HTTPResponse:
    body = parse_body(request, SmsSendIn)
    ctx = _ctx(request)
    sent = await sms.send_code(
        ctx.sms_sender, ctx.tenant_secret, tenant_of(request).identity_id, body.site_id,
        body.account_number, limits=ctx.tenant_settings,
    )  # fmt: skip
    return json(asdict(sent))


@bp.post("/api/v1/bind/sms/verify")
@openapi.summary("验证码绑定")
@openapi.body({_JSON: SmsVerifyIn}, required=True)
@openapi.response(200, {_JSON: BoundOut}, "已绑定（户主）")
@error_answers(
    (400, "code_wrong（detail.tries_left）或 code_expired"),
    (404, "户号不存在"),
    (422, "validation_failed"),
    (429, "too_many_tries：错误次数过多，验证码已失效"),
)
@tenant_required
async def sms_verify(request: Request) -> HTTPResponse:
    body = parse_body(request, SmsVerifyIn)
    ctx = _ctx(request)
    done = await sms.verify_code(
        ctx.tenant_secret, tenant_of(request).identity_id, body.site_id, body.account_number,
        body.code, limits=ctx.tenant_settings, actor=_actor(request),
    )  # fmt: skip
    return json(await me.bound(done))


@bp.post("/api/v1/bind/qr")
@openapi.summary("扫码绑定")
@openapi.body({_JSON: QrBindIn}, required=True)
@openapi.response(200, {_JSON: BoundOut}, "已绑定（角色由绑定码决定）")
@error_answers(
    (400, "ticket_invalid 或 ticket_expired"),
    (409, "ticket_used：绑定码已被使用"),
    (422, "validation_failed"),
)
@tenant_required
async def qr_bind(request: Request) -> HTTPResponse:
    body = parse_body(request, QrBindIn)
    done = await tickets.redeem_ticket(
        _ctx(request).tenant_secret, body.ticket, tenant_of(request).identity_id,
        actor=_actor(request),
    )  # fmt: skip
    return json(await me.bound(done))


@bp.delete("/api/v1/accounts/<account_id:int>/binding")
@openapi.summary("解除绑定")
@openapi.response(204, None, "已解绑")
@error_answers((404, "未绑定该账户"))
@tenant_required
async def unbind(request: Request, account_id: int) -> HTTPResponse:
    await binding.unbind(tenant_of(request).identity_id, account_id, actor=_actor(request))
    return empty(204)


@bp.get("/api/v1/me")
@openapi.summary("我的")
@openapi.response(200, {_JSON: MeOut}, "身份与已绑定的账户")
@error_answers()
@tenant_required
async def me_route(request: Request) -> HTTPResponse:
    return json(await me.me(tenant_of(request).identity_id))


@bp.get("/api/v1/me/subscriptions")
@openapi.summary("订阅消息余量")
@openapi.response(200, {_JSON: SubscriptionsOut}, "每个模板还可发送的条数")
@error_answers()
@tenant_required
async def subscriptions_get(request: Request) -> HTTPResponse:
    templates = _ctx(request).tenant_settings.subscribe_templates
    found = await subscriptions.allowances(tenant_of(request).identity_id, templates)
    return json({"templates": [asdict(a) for a in found]})


@bp.post("/api/v1/me/subscriptions")
@openapi.summary("记录订阅消息授权（wx.requestSubscribeMessage 的结果）")
@openapi.body({_JSON: SubscriptionsIn}, required=True)
@openapi.response(200, {_JSON: SubscriptionsOut}, "每个 accept 加一条余量")
@error_answers((422, "不认识的模板或取值"))
@tenant_required
async def subscriptions_post(request: Request) -> HTTPResponse:
    body = parse_body(request, SubscriptionsIn)
    templates = _ctx(request).tenant_settings.subscribe_templates
    found = await subscriptions.record_results(
        tenant_of(request).identity_id, body.results, templates
    )
    return json({"templates": [asdict(a) for a in found]})
