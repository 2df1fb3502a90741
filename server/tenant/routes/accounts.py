"""What a tenant sees of the accounts bound to them (/api/v1/accounts…, /api/v1/orders…).
Every handler passes the caller's identity to a service: isolation (404 for an account not
bound to the caller) is the services' job."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.accounts.routes.guard import tenant_of, tenant_required
from server.tenant.schemas import parse_body, query_params
from server.tenant.schemas.accounts import (
    AccountDetail,
    AccountList,
    ErrorOut,
    OrderOut,
    RechargeIn,
    RechargeOptions,
    RechargeOut,
    RecordPage,
    RecordsQuery,
    UsageOut,
    UsageQuery,
)
from server.tenant.service import detail, recharge, records, usage, views

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


@bp.get("/api/v1/accounts/<account_id:int>/meters/<meter_id:int>/usage")
@openapi.summary("用量（按日/按月）")
@openapi.parameter("by", str, "query", description="day | month")
@openapi.parameter("start", str, "query", description="YYYY-MM-DD")
@openapi.parameter("end", str, "query", description="YYYY-MM-DD")
@openapi.response(200, {_JSON: UsageOut}, "用量")
@openapi.response(401, {_JSON: ErrorOut}, "未登录")
@openapi.response(404, {_JSON: ErrorOut}, "账户或表计不存在")
@openapi.response(422, {_JSON: ErrorOut}, "参数不合法（detail.field）")
@tenant_required
async def meter_usage(request: Request, account_id: int, meter_id: int) -> HTTPResponse:
    asked = query_params(request, UsageQuery)
    span = usage.period(asked.by, asked.start, asked.end)
    identity = tenant_of(request).identity_id
    return json(await usage.meter_usage(identity, account_id, meter_id, span))


@bp.get("/api/v1/accounts/<account_id:int>/records")
@openapi.summary("交易记录（扣费按日汇总）")
@openapi.parameter("type", str, "query", description="all|recharge|deduction|refund|fee|adjustment")
@openapi.parameter("limit", int, "query", description="1–50，默认 20")
@openapi.parameter("cursor", str, "query", description="上一页的 next_cursor")
@openapi.response(200, {_JSON: RecordPage}, "记录，新的在前")
@openapi.response(401, {_JSON: ErrorOut}, "未登录")
@openapi.response(404, {_JSON: ErrorOut}, "账户不存在")
@openapi.response(422, {_JSON: ErrorOut}, "参数不合法（detail.field）")
@tenant_required
async def account_records(request: Request, account_id: int) -> HTTPResponse:
    asked = query_params(request, RecordsQuery)
    cursor = records.decode_cursor(asked.cursor)
    identity = tenant_of(request).identity_id
    return json(
        await records.account_records(identity, account_id, asked.type, asked.limit, cursor)
    )


@bp.get("/api/v1/accounts/<account_id:int>/recharge/options")
@openapi.summary("充值选项")
@openapi.response(200, {_JSON: RechargeOptions}, "充值金额与支付方式")
@openapi.response(401, {_JSON: ErrorOut}, "未登录")
@openapi.response(404, {_JSON: ErrorOut}, "账户不存在")
@tenant_required
async def recharge_options(request: Request, account_id: int) -> HTTPResponse:
    identity = tenant_of(request).identity_id
    return json(await recharge.recharge_options(request.app.ctx.payments, identity, account_id))


@bp.post("/api/v1/accounts/<account_id:int>/recharge")
@openapi.summary("发起充值")
@openapi.body({_JSON: RechargeIn}, required=True)
@openapi.response(
    201, {_JSON: RechargeOut}, "订单已创建；pay 交给 wx.requestPayment 或打开 pay_url"
)
@openapi.response(401, {_JSON: ErrorOut}, "未登录")
@openapi.response(404, {_JSON: ErrorOut}, "账户不存在")
@openapi.response(409, {_JSON: ErrorOut}, "账户已销户")
@openapi.response(422, {_JSON: ErrorOut}, "金额或支付方式不合法（detail.field）")
@openapi.response(502, {_JSON: ErrorOut}, "支付平台暂不可用")
@openapi.response(503, {_JSON: ErrorOut}, "在线充值未开通")
@tenant_required
async def create_recharge(request: Request, account_id: int) -> HTTPResponse:
    asked = parse_body(request, RechargeIn)
    tenant = tenant_of(request)
    created = await recharge.create_recharge(
        request.app.ctx.payments, tenant.identity_id, tenant.openid, account_id,
        asked.amount_fen, asked.channel,
    )  # fmt: skip
    return json(created, status=201)


@bp.get("/api/v1/orders/<order_no:str>")
@openapi.summary("订单状态")
@openapi.response(200, {_JSON: OrderOut}, "订单状态（支付后轮询）")
@openapi.response(401, {_JSON: ErrorOut}, "未登录")
@openapi.response(404, {_JSON: ErrorOut}, "订单不存在")
@tenant_required
async def order_status(request: Request, order_no: str) -> HTTPResponse:
    return json(await recharge.order_status(tenant_of(request).identity_id, order_no))
