"""A tenant's e-invoices (/api/v1/accounts/<id>/invoices): what is invoiceable with the
account's invoices and their states, and a new request. Isolation is the services' job."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.accounts.routes.guard import tenant_of, tenant_required
from server.core.apidoc import error_answers
from server.tenant.schemas import parse_body
from server.tenant.schemas.invoices import InvoiceIn, InvoiceOut, InvoicesOverview
from server.tenant.service import invoices

bp = Blueprint("tenant_invoices")

_JSON = "application/json"
NOT_FOUND = (404, "账户不存在（或未绑定）")


@bp.get("/api/v1/accounts/<account_id:int>/invoices")
@openapi.summary("发票：可开票金额与开票记录")
@openapi.response(200, {_JSON: InvoicesOverview}, "可开票的付款、开票项目、发票及其状态")
@error_answers(NOT_FOUND)
@tenant_required
async def overview(request: Request, account_id: int) -> HTTPResponse:
    identity = tenant_of(request).identity_id
    return json(await invoices.overview(identity, account_id))


@bp.post("/api/v1/accounts/<account_id:int>/invoices")
@openapi.summary("申请开票")
@openapi.body({_JSON: InvoiceIn}, required=True)
@openapi.response(201, {_JSON: InvoiceOut}, "已申请（待审核，或按物业规则自动开具）")
@error_answers(
    NOT_FOUND,
    (409, "超出可开票金额，或物业未开通电子发票"),
    (422, "抬头、税号、专票信息、联系方式或付款记录不合法（detail.field）"),
)
@tenant_required
async def create(request: Request, account_id: int) -> HTTPResponse:
    asked = parse_body(request, InvoiceIn)
    tenant = tenant_of(request)
    fields = {
        "kind": asked.kind, "title_type": asked.title_type, "name": asked.buyer_name,
        "tax_id": asked.buyer_tax_id, "address": asked.buyer_address,
        "phone": asked.buyer_phone, "bank": asked.buyer_bank,
        "bank_account": asked.buyer_bank_account, "email": asked.email, "mobile": asked.phone,
    }  # fmt: skip
    created = await invoices.request(
        tenant.identity_id, tenant.openid, account_id, fields, asked.payments,
        asked.amount_fen, [(line.item, line.amount_fen) for line in asked.lines],
    )  # fmt: skip
    return json(created, status=201)
