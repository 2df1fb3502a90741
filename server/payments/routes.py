"""Payment notification endpoints (the platforms call these) and the tenant order API.

WeChat Pay: 204 when the notification is handled (or was before); 4xx/5xx with
`{"code": "FAIL", "message": …}` makes WeChat resend. Alipay: exactly `success`, anything
else makes Alipay resend. A notification that fails verification is answered with an error
and nothing in it is believed; a verified one we will not act on (quarantined) is answered
with success, because a resend would not change it: a person looks at the quarantine.
That includes a signed notification whose amount or order number no platform could send
(`OutOfRange`). A body over `notify_max_body_bytes` is refused with 413 before it is read
whole, and nothing of it is stored.

`app.ctx.payments` (a `Payments`) is built from `PaymentSettings` at start-up unless the
caller (the demo, the tests) put one there first. `app.ctx.followups` (a `FollowUpDrainer`,
one per worker process) runs the follow-ups of the credits this process committed, in
batches, after the answer; it is stopped (and drained) before the server stops.
`app.ctx.inbox` (an `InboxBatcher`, one per worker) handles the payment notifications that
arrive together in one transaction (group commit, see inbox_batch.py).
"""

from __future__ import annotations

import logging

from sanic import Blueprint, Request, Sanic
from sanic.exceptions import PayloadTooLarge
from sanic.response import HTTPResponse, empty, json, text
from sanic_ext import openapi

from server.core.settings import Settings
from server.payments.config import PaymentSettings
from server.payments.providers.alipay import SUCCESS_ANSWER
from server.payments.providers.base import Channel, NotificationRejected
from server.payments.schemas import AlipayNotifyIn, WechatNotifyFail, WechatNotifyIn
from server.payments.service import NotifyResult, receive_notification
from server.payments.service.followups import FollowUpDrainer
from server.payments.service.inbox_batch import InboxBatcher
from server.payments.service.runtime import Payments, build_payments

log = logging.getLogger(__name__)
bp = Blueprint("payments")


@bp.before_server_start
async def _start_payments(app: Sanic) -> None:
    if getattr(app.ctx, "payments", None) is None:
        app.ctx.payments = build_payments(PaymentSettings())
    app.ctx.inbox = InboxBatcher()
    app.ctx.followups = FollowUpDrainer()
    app.ctx.followups.start()


@bp.before_server_stop
async def _stop_followups(app: Sanic) -> None:
    inbox: InboxBatcher | None = getattr(app.ctx, "inbox", None)
    if inbox is not None:  # what was queued is written before the follow-ups stop
        await inbox.stop()
    drainer: FollowUpDrainer | None = getattr(app.ctx, "followups", None)
    if drainer is not None:  # before the database closes: what was submitted still runs
        await drainer.stop()


@bp.after_server_stop
async def _stop_payments(app: Sanic) -> None:
    payments = getattr(app.ctx, "payments", None)
    if payments is not None:
        await payments.aclose()


async def _read_body(request: Request) -> bytes:
    """The body, refused (`PayloadTooLarge`) past `notify_max_body_bytes`: a declared
    Content-Length is refused before a byte is read, a chunked body once it grows past the
    cap, so a huge body is neither held in memory nor stored."""
    settings: Settings = request.app.ctx.settings
    if request.stream is not None:
        request.stream.request_max_size = settings.notify_max_body_bytes
    await request.receive_body()
    if len(request.body) > settings.notify_max_body_bytes:  # a client that bypassed the stream
        raise PayloadTooLarge("notification body too large")
    return request.body


async def _receive(request: Request, channel: Channel) -> NotifyResult:
    payments: Payments = request.app.ctx.payments
    body = await _read_body(request)
    result = await receive_notification(
        payments, channel, request.headers, body, batcher=request.app.ctx.inbox
    )
    if result.followup_keys:
        # After the commit, off the answer's path; a kill here leaves the row pending.
        request.app.ctx.followups.submit(result.followup_keys)
    return result


@bp.post("/api/v1/pay/notify/wechat", stream=True)
@openapi.summary("微信支付回调通知")
@openapi.body({"application/json": WechatNotifyIn}, required=True)
@openapi.response(204, None, "已处理（或此前已处理、已转人工核查）")
@openapi.response(401, {"application/json": WechatNotifyFail}, "验签失败，不予处理")
@openapi.response(413, {"application/json": WechatNotifyFail}, "通知内容过大，未保存")
@openapi.response(500, {"application/json": WechatNotifyFail}, "处理失败，微信支付将重发")
async def notify_wechat(request: Request) -> HTTPResponse:
    try:
        await _receive(request, Channel.WECHAT)
    except PayloadTooLarge:
        log.warning("wechat notification refused: body over the size limit")
        return json({"code": "FAIL", "message": "通知内容过大"}, status=413)
    except NotificationRejected as exc:
        log.warning("wechat notification rejected: %s", exc)
        return json({"code": "FAIL", "message": "签名验证失败"}, status=401)
    except Exception:
        log.exception("wechat notification failed")
        return json({"code": "FAIL", "message": "系统繁忙，请稍后重试"}, status=500)
    return empty(204)


@bp.post("/api/v1/pay/notify/alipay", stream=True)
@openapi.summary("支付宝异步通知")
@openapi.body({"application/x-www-form-urlencoded": AlipayNotifyIn}, required=True)
@openapi.response(200, {"text/plain": str}, "success：已处理；其他内容：支付宝将重发")
@openapi.response(400, {"text/plain": str}, "fail：验签失败，不予处理")
@openapi.response(413, {"text/plain": str}, "fail：通知内容过大，未保存")
@openapi.response(500, {"text/plain": str}, "fail：处理失败，支付宝将重发")
async def notify_alipay(request: Request) -> HTTPResponse:
    try:
        await _receive(request, Channel.ALIPAY)
    except PayloadTooLarge:
        log.warning("alipay notification refused: body over the size limit")
        return text("fail", status=413)
    except NotificationRejected as exc:
        log.warning("alipay notification rejected: %s", exc)
        return text("fail", status=400)
    except Exception:
        log.exception("alipay notification failed")
        return text("fail", status=500)
    return text(SUCCESS_ANSWER)
