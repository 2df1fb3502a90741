"""Quarantine: verified facts from a platform we will not act on by ourselves."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.payments.errors import WrongStatus
from server.payments.models import Quarantine, QuarantineReason, RechargeOrder
from server.payments.providers.base import Channel

ACTOR = "system:payments"


async def quarantine(
    channel: Channel,
    reason: QuarantineReason,
    number: str,
    *,
    out_trade_no: str = "",
    out_refund_no: str = "",
    expected_fen: int | None = None,
    notified_fen: int | None = None,
    detail: dict[str, Any] | None = None,
) -> Quarantine:
    """Store one quarantine row per (channel, reason, number); a repeat returns the first."""
    dedupe_key = f"{channel.value}:{reason.value}:{number}"[:120]
    try:
        async with in_transaction():  # a savepoint inside the caller's transaction
            row = await Quarantine.create(
                dedupe_key=dedupe_key,
                channel=channel,
                reason=reason,
                out_trade_no=out_trade_no,
                out_refund_no=out_refund_no,
                expected_fen=expected_fen,
                notified_fen=notified_fen,
                detail=detail or {},
            )
            await record(
                ACTOR,
                "payment.quarantine",
                target_type="quarantine",
                target_id=row.id,
                reason=_REASONS[reason],
                detail={
                    "channel": channel.value,
                    "number": number,
                    "expected_fen": expected_fen,
                    "notified_fen": notified_fen,
                },
            )
            return row
    except IntegrityError:
        return await Quarantine.get(dedupe_key=dedupe_key)


async def resolve_quarantine(quarantine_id: int, *, actor: str, resolution: str) -> Quarantine:
    """A person looked at it and says what was done (e.g. an adjustment was posted)."""
    async with in_transaction():
        row = await Quarantine.select_for_update().get(id=quarantine_id)
        if row.resolved_at is not None:
            raise WrongStatus("该异常记录已处理", quarantine_id=quarantine_id)
        if not resolution.strip():
            raise WrongStatus("请填写处理说明", quarantine_id=quarantine_id)
        row.resolved_at = datetime.now(UTC)
        row.resolved_by = actor
        row.resolution = resolution[:500]
        await row.save(update_fields=["resolved_at", "resolved_by", "resolution"])
        await record(
            actor,
            "payment.quarantine.resolve",
            target_type="quarantine",
            target_id=row.id,
            reason=resolution,
        )
        return row


_REASONS = {
    QuarantineReason.AMOUNT_MISMATCH: "通知金额与订单金额不符",
    QuarantineReason.UNKNOWN_ORDER: "通知的订单不存在",
    QuarantineReason.UNKNOWN_REFUND: "通知的退款单不存在",
    QuarantineReason.WRONG_MERCHANT: "通知的商户号或应用号不是本商户",
    QuarantineReason.ORDER_NOT_PAYABLE: "订单状态不允许入账",
    QuarantineReason.REFUND_ABNORMAL: "退款异常，需人工处理",
    QuarantineReason.ACCOUNT_CLOSED: "账户已销户，付款未入账，需人工退款给付款人",
    QuarantineReason.OUT_OF_RANGE: "通知的金额或单号超出支付平台的取值范围，未入账",
}


def reason_text(reason: QuarantineReason | str) -> str:
    """The Chinese sentence a person reads for a quarantine reason."""
    return _REASONS[QuarantineReason(reason)]


async def list_quarantine(
    site_ids: Collection[int],
    *,
    unattributed: bool = False,
    unresolved_only: bool = True,
    limit: int = 200,
) -> list[Quarantine]:
    """Quarantined items for the staff's list, newest first (unresolved ones by default);
    `reason_text(row.reason)` is what the list shows.

    Scoped like every staff query: only items whose order belongs to an account of
    `site_ids` (the staff member's sites). Items naming no order of ours (an unknown order
    number, a refund we never asked for) belong to no site; `unattributed=True` adds them,
    for the merchant's own finance staff."""
    ours = RechargeOrder.filter(account__site_id__in=list(site_ids)).values("out_trade_no")
    scope = Q(out_trade_no__in=Subquery(ours))
    if unattributed:
        known = RechargeOrder.all().values("out_trade_no")
        scope |= ~Q(out_trade_no__in=Subquery(known))
    rows = Quarantine.filter(scope)
    if unresolved_only:
        rows = rows.filter(resolved_at=None)
    return await rows.order_by("-id").limit(limit)
