"""Refunds to the original payment channel: staff-initiated, two-person above a threshold,
two-phase in the ledger.

    request ── hold (wallet → refunds payable, balance permitting) ── pending / approved
    approve (another person) ── send: platform refund with out_refund_no (same on every retry)
    SUCCESS (answer, notification or query) ── settle (refunds payable → channel clearing)
    CLOSED / ABNORMAL / refused ── void (money back to the wallet); ABNORMAL is quarantined
    reject ── void

`order.refunded_fen` counts succeeded and in-flight refunds; a CHECK keeps it ≤ the order
amount (refunded ≤ paid). Every outcome path locks the refund row, so a notification racing
the API answer settles once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.ledger import service as ledger
from server.ledger.posting import Channel as LedgerChannel
from server.payments.errors import (
    OrderNotFound,
    RefundExceedsPaid,
    RefundNotFound,
    SamePersonApproval,
    WrongStatus,
)
from server.payments.models import (
    EventOutcome,
    OrderStatus,
    QuarantineReason,
    RechargeOrder,
    Refund,
    RefundStatus,
)
from server.payments.providers.base import Channel, ProviderError
from server.payments.providers.base import RefundStatus as PlatformRefund
from server.payments.service.orders import new_number
from server.payments.service.quarantine import quarantine
from server.payments.service.runtime import Payments

log = logging.getLogger(__name__)
SYSTEM = "system:refunds"


def refund_key(out_refund_no: str, phase: str) -> str:
    """The ledger key of a refund's phase: "hold", then "settle" or "void"."""
    return f"refund:{out_refund_no}:{phase}"


def hold_key(out_refund_no: str) -> str:
    return refund_key(out_refund_no, "hold")


async def request_refund(
    payments: Payments,
    out_trade_no: str,
    amount_fen: int,
    *,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> Refund:
    """Hold the money and record the request; sent at once when no approval is needed."""
    if not reason.strip():
        raise WrongStatus("退款必须填写原因")
    if type(amount_fen) is not int or amount_fen <= 0:
        raise RefundExceedsPaid("退款金额必须大于0")
    now = now or datetime.now(UTC)
    needs_approval = amount_fen > payments.settings.refund_approval_above_fen
    async with in_transaction():
        order = await RechargeOrder.select_for_update().get_or_none(out_trade_no=out_trade_no)
        if order is None:
            raise OrderNotFound("订单不存在", out_trade_no=out_trade_no)
        if order.status != OrderStatus.PAID:
            raise WrongStatus("订单未支付，不能退款", status=order.status.value)
        if order.refunded_fen + amount_fen > order.amount_fen:
            raise RefundExceedsPaid(
                "退款金额超过订单可退金额", refundable_fen=order.amount_fen - order.refunded_fen
            )
        refund = await Refund.create(
            out_refund_no=new_number("F", now),
            order=order,
            amount_fen=amount_fen,
            status=RefundStatus.PENDING if needs_approval else RefundStatus.APPROVED,
            reason=reason[:200],
            requested_by=actor,
        )
        # InsufficientBalance here rolls the whole request back: nothing was written.
        await ledger.refund_hold(
            order.account_id,
            LedgerChannel(order.channel.value),
            amount_fen,
            key=hold_key(refund.out_refund_no),
            actor=actor,
            memo=f"退款 {refund.out_refund_no}",
        )
        await RechargeOrder.filter(id=order.id).update(refunded_fen=F("refunded_fen") + amount_fen)
        await record(
            actor,
            "refund.request",
            target_type="refund",
            target_id=refund.id,
            reason=reason,
            detail={
                "out_trade_no": out_trade_no,
                "amount_fen": amount_fen,
                "needs_approval": needs_approval,
            },
        )
    if not needs_approval:
        return await send_refund(payments, refund.id)
    return refund


async def approve_refund(payments: Payments, refund_id: int, *, actor: str) -> Refund:
    """A second person approves; the refund is sent at once."""
    async with in_transaction():
        refund = await _locked(refund_id)
        if refund.status != RefundStatus.PENDING:
            raise WrongStatus("该退款不在待审批状态", status=refund.status.value)
        if actor == refund.requested_by:
            raise SamePersonApproval("审批人不能是申请人")
        refund.status = RefundStatus.APPROVED
        refund.approved_by = actor
        await refund.save(update_fields=["status", "approved_by", "updated_at"])
        await record(
            actor,
            "refund.approve",
            target_type="refund",
            target_id=refund.id,
            detail={"amount_fen": refund.amount_fen},
        )
    return await send_refund(payments, refund_id)


async def reject_refund(refund_id: int, *, actor: str, reason: str) -> Refund:
    async with in_transaction():
        refund = await _locked(refund_id)
        if refund.status != RefundStatus.PENDING:
            raise WrongStatus("该退款不在待审批状态", status=refund.status.value)
        await _release(refund, RefundStatus.REJECTED, actor)
        await record(
            actor, "refund.reject", target_type="refund", target_id=refund.id, reason=reason
        )
        return refund


async def send_refund(payments: Payments, refund_id: int) -> Refund:
    """Ask the platform to refund (again, with the same out_refund_no, on a retry)."""
    async with in_transaction():
        refund = await _locked(refund_id)
        if refund.status not in (RefundStatus.APPROVED, RefundStatus.PROCESSING):
            return refund
        refund.status = RefundStatus.PROCESSING
        refund.attempts += 1
        await refund.save(update_fields=["status", "attempts", "updated_at"])
    order = await RechargeOrder.get(id=refund.order_id)  # type: ignore[attr-defined]
    try:
        state = await payments.provider(order.channel).refund(
            order.out_trade_no,
            refund.out_refund_no,
            refund.amount_fen,
            order.amount_fen,
            refund.reason,
        )
    except ProviderError as exc:
        if exc.retryable:  # timeout, 5xx: the poller retries with the same number
            await Refund.filter(id=refund.id).update(last_error=str(exc)[:300])
            return await Refund.get(id=refund.id)
        await apply_refund_result(
            order.channel, refund.out_refund_no, PlatformRefund.CLOSED, source="api", error=str(exc)
        )
        return await Refund.get(id=refund.id)
    await Refund.filter(id=refund.id).update(last_error="", platform_refund_id=state.refund_id)
    if state.status is not PlatformRefund.PROCESSING:
        await apply_refund_result(order.channel, refund.out_refund_no, state.status, source="api")
    return await Refund.get(id=refund.id)


async def apply_refund_result(
    channel: Channel,
    out_refund_no: str,
    status: PlatformRefund,
    *,
    source: str,
    notified_fen: int | None = None,
    cumulative: bool = False,
    settled_at: datetime | None = None,
    error: str = "",
) -> EventOutcome:
    """The platform's final word on a refund (API answer, notification or query). Once."""
    async with in_transaction():
        refund = await Refund.select_for_update().get_or_none(out_refund_no=out_refund_no)
        if refund is None:
            await quarantine(
                channel,
                QuarantineReason.UNKNOWN_REFUND,
                out_refund_no,
                out_refund_no=out_refund_no,
                notified_fen=notified_fen,
                detail={"status": status.value, "source": source},
            )
            return EventOutcome.QUARANTINED
        if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.REJECTED):
            return EventOutcome.ALREADY_DONE
        order = await RechargeOrder.get(id=refund.order_id)  # type: ignore[attr-defined]
        if notified_fen is not None and not _amount_agrees(refund, order, notified_fen, cumulative):
            await quarantine(
                channel,
                QuarantineReason.AMOUNT_MISMATCH,
                out_refund_no,
                out_trade_no=order.out_trade_no,
                out_refund_no=out_refund_no,
                expected_fen=refund.amount_fen,
                notified_fen=notified_fen,
            )
            return EventOutcome.QUARANTINED
        if status is PlatformRefund.SUCCESS:
            await ledger.refund_settle(
                hold_key(out_refund_no), key=refund_key(out_refund_no, "settle"), actor=SYSTEM
            )
            refund.status = RefundStatus.SUCCEEDED
            refund.settled_at = settled_at or datetime.now(UTC)
            await refund.save(update_fields=["status", "settled_at", "updated_at"])
            await record(
                SYSTEM,
                "refund.succeeded",
                target_type="refund",
                target_id=refund.id,
                detail={"source": source, "amount_fen": refund.amount_fen},
            )
            return EventOutcome.REFUND_SETTLED
        if status is PlatformRefund.PROCESSING:
            return EventOutcome.IGNORED
        if status is PlatformRefund.ABNORMAL:
            await quarantine(
                channel,
                QuarantineReason.REFUND_ABNORMAL,
                out_refund_no,
                out_trade_no=order.out_trade_no,
                out_refund_no=out_refund_no,
                expected_fen=refund.amount_fen,
            )
        refund.last_error = (error or status.value)[:300]
        await _release(refund, RefundStatus.FAILED, SYSTEM)
        await record(
            SYSTEM,
            "refund.failed",
            target_type="refund",
            target_id=refund.id,
            reason=refund.last_error,
            detail={"source": source},
        )
        return EventOutcome.REFUND_VOIDED


def _amount_agrees(refund: Refund, order: RechargeOrder, notified: int, cumulative: bool) -> bool:
    # Alipay reports the trade's cumulative refunded amount, WeChat this refund's amount.
    if cumulative:
        return refund.amount_fen <= notified <= order.amount_fen
    return notified == refund.amount_fen


async def _release(refund: Refund, status: RefundStatus, actor: str) -> None:
    """Void the hold (money back to the wallet) and free the order's refundable amount."""
    await ledger.refund_void(
        hold_key(refund.out_refund_no), key=refund_key(refund.out_refund_no, "void"), actor=actor
    )
    await RechargeOrder.filter(id=refund.order_id).update(  # type: ignore[attr-defined]
        refunded_fen=F("refunded_fen") - refund.amount_fen
    )
    refund.status = status
    await refund.save(update_fields=["status", "last_error", "updated_at"])


async def _locked(refund_id: int) -> Refund:
    refund = await Refund.select_for_update().get_or_none(id=refund_id)
    if refund is None:
        raise RefundNotFound("退款单不存在", refund_id=refund_id)
    return refund
