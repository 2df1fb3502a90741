"""The tenant's bills (账单) and real-time bill (实时账单) of an account bound to them:
/api/v1/accounts/<account_id>/bills…, …/statement. Isolation is the services' job (404)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.accounts.routes.guard import tenant_of, tenant_required
from server.core.apidoc import error_answers, query_docs
from server.tenant.schemas import parse_body, query_params
from server.tenant.schemas.bills import (
    BillList,
    BillOut,
    PayBillIn,
    StatementOut,
    StatementQuery,
)
from server.tenant.service import bills

bp = Blueprint("tenant_bills")

_JSON = "application/json"
NOT_FOUND = (404, "账户或账单不存在（或未绑定）")


@bp.get("/api/v1/accounts/<account_id:int>/bills")
@openapi.summary("我的账单")
@openapi.response(200, {_JSON: BillList}, "已出账的账单，新的在前")
@error_answers((404, "账户不存在（或未绑定）"))
@tenant_required
async def account_bills(request: Request, account_id: int) -> HTTPResponse:
    identity = tenant_of(request).identity_id
    return json(await bills.account_bills(identity, account_id, request.app.ctx.settings.tz))


@bp.get("/api/v1/accounts/<account_id:int>/bills/<bill_id:int>")
@openapi.summary("账单详情")
@openapi.response(200, {_JSON: BillOut}, "账单与明细")
@error_answers(NOT_FOUND)
@tenant_required
async def bill(request: Request, account_id: int, bill_id: int) -> HTTPResponse:
    identity = tenant_of(request).identity_id
    tz = request.app.ctx.settings.tz
    return json(await bills.bill_detail(identity, account_id, bill_id, tz))


@bp.post("/api/v1/accounts/<account_id:int>/bills/<bill_id:int>/pay")
@openapi.summary("用余额缴纳账单（余额不足请先充值）")
@openapi.body({_JSON: PayBillIn}, required=False)
@openapi.response(200, {_JSON: BillOut}, "缴费后的账单（余额只够部分时为部分缴纳）")
@error_answers(NOT_FOUND, (409, "账单已结清，或余额不足"), (422, "金额不合法（detail.field）"))
@tenant_required
async def pay_bill(request: Request, account_id: int, bill_id: int) -> HTTPResponse:
    asked = parse_body(request, PayBillIn)
    tenant = tenant_of(request)
    tz = request.app.ctx.settings.tz
    return json(await bills.pay_from_wallet(
        tenant.identity_id, tenant.openid, account_id, bill_id, tz, asked.amount_fen
    ))  # fmt: skip


@bp.get("/api/v1/accounts/<account_id:int>/statement")
@openapi.summary("实时账单（某月的电费、基本电费、费用、公摊、线损、缴费与期初期末结余）")
@query_docs(("month", str, "YYYY-MM，默认本月"))
@openapi.response(200, {_JSON: StatementOut}, "实时账单，与账本一致")
@error_answers((404, "账户不存在（或未绑定）"), (422, "月份不合法（detail.field）"))
@tenant_required
async def statement(request: Request, account_id: int) -> HTTPResponse:
    asked = query_params(request, StatementQuery)
    identity = tenant_of(request).identity_id
    tz = request.app.ctx.settings.tz
    return json(await bills.statement(identity, account_id, asked.month, tz))
