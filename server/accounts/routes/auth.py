"""Tenant login, logout, binding and the tenant's own settings (/api/v1/auth, /api/v1/bind,
/api/v1/me). The session store (`app.ctx.tenant_sessions`) is built here at start-up from
the platform's Redis (production) or in memory (embedded), unless the caller put one there.
"""

from __future__ import annotations

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, empty
from sanic_ext import openapi

from server.accounts.config import TenantSettings
from server.accounts.routes.guard import bearer_token, sessions, tenant_required
from server.accounts.service import session_store

bp = Blueprint("tenant_auth")


@bp.before_server_start
async def _start_sessions(app: Sanic) -> None:
    if getattr(app.ctx, "tenant_sessions", None) is None:
        app.ctx.tenant_sessions = session_store(app.ctx.redis, TenantSettings().session_ttl_s)


@bp.post("/api/v1/auth/logout")
@openapi.summary("退出登录")
@openapi.body({"application/json": {}}, required=False)
@openapi.response(204, None, "已退出")
@tenant_required
async def logout(request: Request) -> HTTPResponse:
    await sessions(request).revoke(bearer_token(request))
    return empty(204)
