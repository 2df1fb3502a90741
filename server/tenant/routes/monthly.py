"""The tenant's monthly statement (月度对账单) of an account bound to him:
/api/v1/accounts/<account_id>/monthly-statement (JSON) and …/monthly-statement/xlsx (the
same as Excel, streamed). The numbers are the monthly comprehensive report's for his account;
isolation is the service's (404 unless bound)."""

from __future__ import annotations

from urllib.parse import quote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.accounts.routes.guard import tenant_of, tenant_required
from server.core.apidoc import error_answers, query_docs
from server.core.excel import XLSX_TYPE, stream_xlsx
from server.tenant.schemas import query_params
from server.tenant.schemas.bills import StatementQuery
from server.tenant.schemas.monthly import MonthlyStatementOut
from server.tenant.service.monthly import monthly_statement, statement_sheet

bp = Blueprint("tenant_monthly")

_JSON = "application/json"
_ERRORS = ((404, "账户不存在（或未绑定）"), (422, "月份不合法（detail.field）"))
_PATH = "/api/v1/accounts/<account_id:int>/monthly-statement"


@bp.get(_PATH)
@openapi.summary("月度对账单（与园区月度综合报表同一数字：分时电量电费、入账、缴费、期初期末）")
@query_docs(("month", str, "YYYY-MM，默认本月"))
@openapi.response(200, {_JSON: MonthlyStatementOut}, "该户某月的对账单")
@error_answers(*_ERRORS)
@tenant_required
async def statement(request: Request, account_id: int) -> HTTPResponse:
    asked = query_params(request, StatementQuery)
    identity = tenant_of(request).identity_id
    tz = request.app.ctx.settings.tz
    return json(await monthly_statement(identity, account_id, asked.month, tz))


@bp.get(f"{_PATH}/xlsx")
@openapi.summary("下载月度对账单（Excel）")
@query_docs(("month", str, "YYYY-MM，默认本月"))
@openapi.response(200, {XLSX_TYPE: {"type": "string", "format": "binary"}}, "对账单 .xlsx")
@error_answers(*_ERRORS)
@tenant_required
async def statement_xlsx(request: Request, account_id: int) -> HTTPResponse:
    asked = query_params(request, StatementQuery)
    identity = tenant_of(request).identity_id
    found = await monthly_statement(identity, account_id, asked.month, request.app.ctx.settings.tz)
    name = quote(f"对账单-{found['account']['number']}-{found['month']}.xlsx")
    pieces = stream_xlsx(statement_sheet(found))
    first = await anext(pieces, b"")
    response = await request.respond(content_type=XLSX_TYPE, headers={
        "Content-Disposition": f"attachment; filename=\"statement.xlsx\"; filename*=UTF-8''{name}"
    })  # fmt: skip
    await response.send(first)
    async for piece in pieces:
        await response.send(piece)
    await response.eof()
    return response  # type: ignore[return-value]
