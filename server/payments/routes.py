"""Payment notification endpoints (the platforms call these) and the tenant order API.

WeChat Pay: 204 when the notification is handled (or was before); 4xx/5xx with
`{"code": "FAIL", "message": …}` makes WeChat resend. Alipay: exactly `success`, anything
else makes Alipay resend. A notification that fails verification is answered with an error
and nothing in it is believed; a verified one we will not act on (quarantined) is answered
with success, because a resend would not change it: a person looks at the quarantine.

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
from sanic.response import HTTPResponse, empty, json, text

from server.payments.config import PaymentSettings
from server.payments.providers.alipay import SUCCESS_ANSWER
from server.payments.providers.base import Channel, NotificationRejected
from server.payments.services import NotifyResult, receive_notification
from server.payments.services.followups import FollowUpDrainer
from server.payments.services.inbox_batch import InboxBatcher
from server.payments.services.runtime import Payments, build_payments

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


async def _receive(request: Request, channel: Channel) -> NotifyResult:
    payments: Payments = request.app.ctx.payments
    result = await receive_notification(
        payments, channel, request.headers, request.body, batcher=request.app.ctx.inbox
    )
    if result.followup_keys:
        # After the commit, off the answer's path; a kill here leaves the row pending.
        request.app.ctx.followups.submit(result.followup_keys)
    return result


@bp.post("/api/v1/pay/notify/wechat")
async def notify_wechat(request: Request) -> HTTPResponse:
    try:
        await _receive(request, Channel.WECHAT)
    except NotificationRejected as exc:
        log.warning("wechat notification rejected: %s", exc)
        return json({"code": "FAIL", "message": "签名验证失败"}, status=401)
    except Exception:
        log.exception("wechat notification failed")
        return json({"code": "FAIL", "message": "系统繁忙，请稍后重试"}, status=500)
    return empty(204)


@bp.post("/api/v1/pay/notify/alipay")
async def notify_alipay(request: Request) -> HTTPResponse:
    try:
        await _receive(request, Channel.ALIPAY)
    except NotificationRejected as exc:
        log.warning("alipay notification rejected: %s", exc)
        return text("fail", status=400)
    except Exception:
        log.exception("alipay notification failed")
        return text("fail", status=500)
    return text(SUCCESS_ANSWER)
