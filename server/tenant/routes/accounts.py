"""What a tenant sees of the accounts bound to them (/api/v1/accounts…, /api/v1/orders…).
Every handler passes the caller's identity to a service: isolation (404 for an account not
bound to the caller) is the services' job."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.accounts.routes.guard import tenant_of, tenant_required
from server.tenant.schemas.accounts import AccountDetail, AccountList, ErrorOut
from server.tenant.service import detail, views

bp = Blueprint("tenant_accounts")

_JSON = "application/json"


@bp.get("/api/v1/accounts")
@openapi.summary("我的账户")
@openapi.response(200, {_JSON: AccountList}, "已绑定的账户")
@openapi.response(401, {_JSON: ErrorOut}, "未登录")
@tenant_required
async def accounts(request: Request) -> HTTPResponse:
    items = await views.account_summaries(tenant_of(request).identity_id)
    return json({"items": items})


@bp.get("/api/v1/accounts/<account_id:int>")
@openapi.summary("账户详情")
@openapi.response(200, {_JSON: AccountDetail}, "账户详情")
@openapi.response(401, {_JSON: ErrorOut}, "未登录")
@openapi.response(404, {_JSON: ErrorOut}, "账户不存在（或未绑定）")
@tenant_required
async def account(request: Request, account_id: int) -> HTTPResponse:
    return json(await detail.account_detail(tenant_of(request).identity_id, account_id))
