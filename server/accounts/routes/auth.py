"""Tenant login and logout (/api/v1/auth). At start-up this window builds what they need,
unless the caller (a test, the demo) put one there first:

- `app.ctx.tenant_sessions`: the session store, in the platform's Redis (production) or in
  memory (embedded);
- `app.ctx.wechat_login`: code2Session for the mini-program app. Embedded mode without
  `SHUIDIAN_TENANT_MINIAPP_APPID` answers it with the fake WeChat API
  (server.accounts.sandbox: codes `demo-<name>` log in as `o-demo-<name>`); production
  refuses to start without the app id and secret and a SHUIDIAN_SECRET_KEY.
"""

from __future__ import annotations

from datetime import datetime

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, empty, json
from sanic_ext import openapi

from server.accounts.config import TenantSettings
from server.accounts.routes.guard import bearer_token, sessions, tenant_required
from server.accounts.sandbox import FakeWechat
from server.accounts.schemas import ErrorOut, LoginIn, LoginOut
from server.accounts.service import session_store
from server.accounts.service.keys import check_production
from server.accounts.service.login import WechatLogin, login
from server.core.bodies import parse_body

bp = Blueprint("tenant_auth")


@bp.before_server_start
async def _start_sessions(app: Sanic) -> None:
    tenant = TenantSettings()
    check_production(app.ctx.settings, tenant)
    if getattr(app.ctx, "tenant_sessions", None) is None:
        app.ctx.tenant_sessions = session_store(app.ctx.redis, tenant.session_ttl_s)
    if getattr(app.ctx, "wechat_login", None) is None:
        app.ctx.wechat_login = await _wechat_login(app, tenant)


async def _wechat_login(app: Sanic, tenant: TenantSettings) -> WechatLogin:
    if tenant.miniapp_appid:
        return WechatLogin(
            tenant.miniapp_appid,
            tenant.miniapp_secret_value(),
            tenant.wechat_api_base_url,
            timeout_s=tenant.wechat_timeout_s,
        )
    fake = await FakeWechat().start()  # embedded mode (check_production passed)
    app.ctx.wechat_sandbox = fake
    return WechatLogin(fake.appid, fake.secret, fake.base_url)


@bp.after_server_stop
async def _stop_sandbox(app: Sanic) -> None:
    fake = getattr(app.ctx, "wechat_sandbox", None)
    if fake is not None:
        await fake.close()
        app.ctx.wechat_sandbox = None
        app.ctx.wechat_login = None


@bp.post("/api/v1/auth/login")
@openapi.summary("微信登录：wx.login 的 code 换取登录令牌")
@openapi.body({"application/json": LoginIn}, required=True)
@openapi.response(200, {"application/json": LoginOut}, "已登录")
@openapi.response(400, {"application/json": ErrorOut}, "wechat_code_invalid：code 无效或已使用")
@openapi.response(403, {"application/json": ErrorOut}, "wechat_user_blocked：微信判定为风险用户")
@openapi.response(429, {"application/json": ErrorOut}, "wechat_rate_limited：登录过于频繁")
@openapi.response(502, {"application/json": ErrorOut}, "wechat_unavailable：微信服务不可用")
async def login_route(request: Request) -> HTTPResponse:
    body = parse_body(request, LoginIn)
    done = await login(request.app.ctx.wechat_login, sessions(request), body.code)
    tz = request.app.ctx.settings.tz
    expires = datetime.fromtimestamp(done.session.expires_at, tz).isoformat(timespec="seconds")
    out = LoginOut.model_validate(
        {"token": done.token, "expires_at": expires,
         "identity": {"id": done.identity.id, "accounts": done.accounts}}
    )  # fmt: skip
    return json(out.model_dump())


@bp.post("/api/v1/auth/logout")
@openapi.summary("退出登录")
@openapi.body({"application/json": {}}, required=False)
@openapi.response(204, None, "已退出")
@tenant_required
async def logout(request: Request) -> HTTPResponse:
    await sessions(request).revoke(bearer_token(request))
    return empty(204)
