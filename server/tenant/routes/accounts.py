"""What a tenant sees of the accounts bound to them (/api/v1/accounts…, /api/v1/orders…).
Every handler passes the caller's identity to a service: isolation (404 for an account not
bound to the caller) is the services' job."""

from __future__ import annotations

from collections.abc import Callable

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.accounts.routes.guard import Handler, tenant_of, tenant_required
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
NOT_FOUND = (404, "账户不存在（或未绑定）")
BAD_QUERY = (422, "参数不合法（detail.field 指明字段）")


def _errors(*answers: tuple[int, str]) -> Callable[[Handler], Handler]:
    """The route's error answers in the spec (the one error shape), 401 for every route."""

    def add(handler: Handler) -> Handler:
        for status, text in ((401, "未登录或登录已失效"), *answers):
            handler = openapi.response(status, {_JSON: ErrorOut}, text)(handler)
        return handler

    return add


def _query(*params: tuple[str, type, str]) -> Callable[[Handler], Handler]:
    """The route's query parameters in the spec."""

    def add(handler: Handler) -> Handler:
        for name, kind, text in params:
            handler = openapi.parameter(name, kind, "query", description=text)(handler)
        return handler

    return add


@bp.get("/api/v1/accounts")
@openapi.summary("我的账户")
@openapi.response(200, {_JSON: AccountList}, "已绑定的账户")
@_errors()
@tenant_required
async def accounts(request: Request) -> HTTPResponse:
    items = await views.account_summaries(tenant_of(request).identity_id)
    return json({"items": items})


@bp.get("/api/v1/accounts/<account_id:int>")
@openapi.summary("账户详情")
@openapi.response(200, {_JSON: AccountDetail}, "账户详情")
@_errors(NOT_FOUND)
@tenant_required
async def account(request: Request, account_id: int) -> HTTPResponse:
    return json(await detail.account_detail(tenant_of(request).identity_id, account_id))


@bp.get("/api/v1/accounts/<account_id:int>/meters/<meter_id:int>/usage")
@openapi.summary("用量（按日/按月）")
@_query(("by", str, "day | month"), ("start", str, "YYYY-MM-DD"), ("end", str, "YYYY-MM-DD"))
@openapi.response(200, {_JSON: UsageOut}, "用量")
@_errors((404, "账户或表计不存在"), BAD_QUERY)
@tenant_required
async def meter_usage(request: Request, account_id: int, meter_id: int) -> HTTPResponse:
    asked = query_params(request, UsageQuery)
    span = usage.period(asked.by, asked.start, asked.end)
    identity = tenant_of(request).identity_id
    return json(await usage.meter_usage(identity, account_id, meter_id, span))


@bp.get("/api/v1/accounts/<account_id:int>/records")
@openapi.summary("交易记录（扣费按日汇总）")
@_query(
    ("type", str, "all|recharge|deduction|refund|fee|adjustment"),
    ("limit", int, "1–50，默认 20"),
    ("cursor", str, "上一页的 next_cursor"),
)
@openapi.response(200, {_JSON: RecordPage}, "记录，新的在前")
@_errors(NOT_FOUND, BAD_QUERY)
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
@_errors(NOT_FOUND)
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
@_errors(
    NOT_FOUND,
    (409, "账户已销户"),
    (422, "金额或支付方式不合法（detail.field）"),
    (502, "支付平台暂不可用"),
    (503, "在线充值未开通（未配置商户密钥）"),
)
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
@_errors((404, "订单不存在（或不是本人账户的）"))
@tenant_required
async def order_status(request: Request, order_no: str) -> HTTPResponse:
    return json(await recharge.order_status(tenant_of(request).identity_id, order_no))
