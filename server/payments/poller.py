"""Order-query poller: what the platform knows that no notification told us.

One round (`poll_once`), run every few tens of seconds by the scheduler:
- unpaid orders older than `poll_after_s`: query; paid → `credit_order` (the same key as the
  notification, so a late notification afterwards is a no-op); closed → closed;
  past `expires_at` and still unpaid → closed at the platform, then `expired` here;
- refunds still processing: sent again with the same out_refund_no after an error, else
  queried; a final answer settles or voids them once;
- credit follow-ups left pending (process killed after a commit) are finished.
A failure on one item is logged and the round goes on: the next round retries it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from server.payments.models import OrderStatus, RechargeOrder, Refund, RefundStatus
from server.payments.providers.base import OrderNotFound, ProviderError, TradeStatus
from server.payments.providers.base import RefundStatus as PlatformRefund
from server.payments.service.followups import FollowUpHandler, run_followups, run_pending_followups
from server.payments.service.orders import credit_order, mark_unpaid_final
from server.payments.service.refunds import apply_refund_result, send_refund
from server.payments.service.runtime import Payments

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    credited: int = 0
    expired: int = 0
    closed: int = 0
    refunds_resolved: int = 0
    followups_done: int = 0
    errors: list[str] = field(default_factory=list)


async def poll_once(
    payments: Payments,
    *,
    now: datetime | None = None,
    limit: int = 200,
    handler: FollowUpHandler | None = None,
) -> PollReport:
    now = now or datetime.now(UTC)
    report = PollReport()
    due = now - timedelta(seconds=payments.settings.poll_after_s)
    orders = (
        await RechargeOrder.filter(status=OrderStatus.CREATED, created_at__lte=due)
        .order_by("id")
        .limit(limit)
    )
    for order in orders:
        try:
            await _poll_order(payments, order, now, report, handler)
        except ProviderError as exc:
            report.errors.append(f"{order.out_trade_no}: {exc}")
    refunds = await Refund.filter(status=RefundStatus.PROCESSING).order_by("id").limit(limit)
    for refund in refunds:
        try:
            report.refunds_resolved += await _poll_refund(payments, refund)
        except ProviderError as exc:
            report.errors.append(f"{refund.out_refund_no}: {exc}")
    report.followups_done += await run_pending_followups(now=now, handler=handler)
    for error in report.errors:
        log.warning("payment poller: %s", error)
    return report


async def _poll_order(
    payments: Payments,
    order: RechargeOrder,
    now: datetime,
    report: PollReport,
    handler: FollowUpHandler | None,
) -> None:
    provider = payments.provider(order.channel)
    try:
        state = await provider.query_order(order.out_trade_no)
    except OrderNotFound:
        state = None  # Alipay: a QR order nobody scanned does not exist there yet
    if state is not None and state.status in (TradeStatus.SUCCESS, TradeStatus.REFUND):
        result = await credit_order(
            order.channel,
            order.out_trade_no,
            amount_fen=state.total_fen,
            transaction_id=state.transaction_id,
            paid_at=state.paid_at,
            source="poller",
            now=now,
        )
        if result.followup_key:
            report.credited += 1
            report.followups_done += await run_followups([result.followup_key], handler)
        return
    if state is not None and state.status is TradeStatus.CLOSED:
        report.closed += await mark_unpaid_final(order.id, OrderStatus.CLOSED)
        return
    if order.expires_at <= now:
        try:
            await provider.close_order(order.out_trade_no)
        except OrderNotFound:
            pass
        report.expired += await mark_unpaid_final(order.id, OrderStatus.EXPIRED)


async def _poll_refund(payments: Payments, refund: Refund) -> int:
    if refund.last_error:  # the last send failed in transit: send again, same number
        after = await send_refund(payments, refund.id)
        return int(after.status != RefundStatus.PROCESSING)
    order = await RechargeOrder.get(id=refund.order_id)  # type: ignore[attr-defined]
    try:
        state = await payments.provider(order.channel).query_refund(
            order.out_trade_no, refund.out_refund_no
        )
    except OrderNotFound:
        # The platform never received it (the send was lost): send again, same number.
        after = await send_refund(payments, refund.id)
        return int(after.status != RefundStatus.PROCESSING)
    if state.status is PlatformRefund.PROCESSING:
        return 0
    await apply_refund_result(order.channel, refund.out_refund_no, state.status, source="poller")
    return 1
