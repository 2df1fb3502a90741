"""The resale compliance statement of a tenant's account (/api/v1/accounts/<id>/compliance):
the account's line and the site's figures for a period (server.tenant.service.compliance)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.accounts.routes.guard import tenant_of, tenant_required
from server.core.apidoc import error_answers, query_docs
from server.tenant.schemas import query_params
from server.tenant.schemas.accounts import ComplianceOut, ComplianceQuery
from server.tenant.service.compliance import compliance

bp = Blueprint("tenant_compliance")


@bp.get("/api/v1/accounts/<account_id:int>/compliance")
@openapi.summary("转供电合规说明（电价、公摊、线变损）")
@query_docs(("period", str, "账期 YYYY-MM"))
@openapi.response(200, {"application/json": ComplianceOut}, "本户与园区本期的合规数据")
@error_answers((404, "账户不存在（或未绑定）"), (422, "参数不合法（detail.field 指明字段）"))
@tenant_required
async def account_compliance(request: Request, account_id: int) -> HTTPResponse:
    asked = query_params(request, ComplianceQuery)
    return json(await compliance(tenant_of(request).identity_id, account_id, asked.period))
