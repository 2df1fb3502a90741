"""Counter refunds: a wallet's money paid back in cash at the counter or by bank transfer —
the refund beside the online one (`refunds.py`) for money that cannot (or need not) go back
through the channel it came from: what a 销户 leaves after the online refunds.

The same shape as the online refund, two-phase in the ledger:

    request ── hold (wallet → refunds payable, balance permitting) ── pending / paid
    approve (another person, above `refund_approval_above_fen`) ── settle: paid out
    reject ── void (money back to the wallet)
    settle  = refunds payable → the cash / bank clearing account (the till, the bank account)

At or below the threshold the refund is paid out at the request (the clerk hands the cash
over, or sends the transfer, then and there). A request is made once per `request_key`
(the caller's idempotency key): a re-submitted form gets the first refund back, the same key
with other data is refused. Every step is in the operation log with who did it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.ledger import service as ledger
from server.ledger.posting import Channel as LedgerChannel
from server.payments.config import PaymentSettings
from server.payments.errors import (
    AmountOutOfLimits,
    ReferenceReused,
    RefundNotFound,
    SamePersonApproval,
    WrongStatus,
)
from server.payments.models import (
    CounterChannel,
    CounterRefund,
    CounterRefundStatus,
    Refund,
    RefundStatus,
)
from server.payments.service.orders import new_number

CHANNEL_LABELS = {CounterChannel.CASH: "现金", CounterChannel.BANK: "银行转账"}
STATUS_LABELS = {
    CounterRefundStatus.PENDING: "待审批",
    CounterRefundStatus.PAID: "已退款",
    CounterRefundStatus.REJECTED: "已驳回",
}


def counter_refund_key(number: str, phase: str) -> str:
    """The ledger key of a counter refund's phase: "hold", then "settle" or "void"."""
    return f"crefund:{number}:{phase}"


async def request_counter_refund(
    settings: PaymentSettings,
    account_id: int,
    channel: CounterChannel | str,
    amount_fen: int,
    *,
    reason: str,
    actor: str,
    request_key: str,
    payee_name: str = "",
    payee_account: str = "",
    now: datetime | None = None,
) -> CounterRefund:
    """Hold the money and record the request; paid out at once when no approval is needed.
    Once per `request_key`: the same key again returns the first refund (same data) or is
    refused (`ReferenceReused`)."""
    channel = CounterChannel(channel)
    if not reason.strip():
        raise WrongStatus("退款必须填写原因")
    if type(amount_fen) is not int or amount_fen <= 0:
        raise AmountOutOfLimits("退款金额必须大于0")
    if not request_key or len(request_key) > 120:
        raise AmountOutOfLimits("退款请求缺少幂等键")
    if channel is CounterChannel.BANK and not payee_account.strip():
        raise AmountOutOfLimits("银行转账退款请填写收款账号")
    existing = await CounterRefund.get_or_none(request_key=request_key)
    if existing is not None:
        return _same(existing, account_id, amount_fen)
    now = now or datetime.now(UTC)
    needs_approval = amount_fen > settings.refund_approval_above_fen
    try:
        async with in_transaction():
            refund = await CounterRefund.create(
                number=new_number("T", now),
                request_key=request_key,
                account_id=account_id,
                channel=channel,
                amount_fen=amount_fen,
                status=CounterRefundStatus.PENDING,
                reason=reason[:200],
                payee_name=payee_name.strip()[:100],
                payee_account=payee_account.strip()[:64],
                requested_by=actor,
            )
            # InsufficientBalance / AccountNotFound here roll the whole request back.
            await ledger.refund_hold(
                account_id,
                LedgerChannel(channel.value),
                amount_fen,
                key=counter_refund_key(refund.number, "hold"),
                actor=actor,
                memo=f"{CHANNEL_LABELS[channel]}退款 {refund.number}",
            )
            await record(
                actor, "counter_refund.request", target_type="account", target_id=account_id,
                reason=reason,
                detail={"refund": refund.number, "channel": channel.value,
                        "amount_fen": amount_fen, "needs_approval": needs_approval},
            )  # fmt: skip
            if not needs_approval:
                await _settle(refund, actor, now)
            return refund
    except IntegrityError:  # the same key committed concurrently
        existing = await CounterRefund.get(request_key=request_key)
        return _same(existing, account_id, amount_fen)


def _same(existing: CounterRefund, account_id: int, amount_fen: int) -> CounterRefund:
    if (existing.account_id, existing.amount_fen) != (account_id, amount_fen):  # type: ignore[attr-defined]
        raise ReferenceReused("该退款请求已提交过另一笔款项", refund=existing.number)
    return existing


async def approve_counter_refund(
    site_ids: Sequence[int], refund_id: int, *, actor: str, now: datetime | None = None
) -> CounterRefund:
    """A second person approves: the money is paid out (settled in the ledger)."""
    async with in_transaction():
        refund = await _pending(site_ids, refund_id)
        if actor == refund.requested_by:
            raise SamePersonApproval("审批人不能是申请人")
        refund.approved_by = actor
        await _settle(refund, actor, now or datetime.now(UTC))
        await record(
            actor, "counter_refund.approve", target_type="account",
            target_id=refund.account_id,  # type: ignore[attr-defined]
            detail={"refund": refund.number, "amount_fen": refund.amount_fen},
        )  # fmt: skip
        return refund


async def reject_counter_refund(
    site_ids: Sequence[int], refund_id: int, *, actor: str, reason: str
) -> CounterRefund:
    """The approver says no: the hold is voided, the money is back in the wallet."""
    if not reason.strip():
        raise WrongStatus("驳回必须填写原因")
    async with in_transaction():
        refund = await _pending(site_ids, refund_id)
        await ledger.refund_void(
            counter_refund_key(refund.number, "hold"),
            key=counter_refund_key(refund.number, "void"),
            actor=actor,
        )
        refund.status = CounterRefundStatus.REJECTED
        refund.approved_by = actor
        await refund.save(update_fields=["status", "approved_by", "updated_at"])
        await record(
            actor, "counter_refund.reject", target_type="account",
            target_id=refund.account_id,  # type: ignore[attr-defined]
            reason=reason, detail={"refund": refund.number, "amount_fen": refund.amount_fen},
        )  # fmt: skip
        return refund


async def _settle(refund: CounterRefund, actor: str, now: datetime) -> None:
    await ledger.refund_settle(
        counter_refund_key(refund.number, "hold"),
        key=counter_refund_key(refund.number, "settle"),
        actor=actor,
    )
    refund.status = CounterRefundStatus.PAID
    refund.paid_at = now
    await refund.save(update_fields=["status", "approved_by", "paid_at", "updated_at"])


async def _pending(site_ids: Sequence[int], refund_id: int) -> CounterRefund:
    refund = (
        await CounterRefund.filter(id=refund_id, account__site_id__in=list(site_ids))
        .select_for_update()
        .first()
    )
    if refund is None:
        raise RefundNotFound("退款单不存在", refund_id=refund_id)
    if refund.status != CounterRefundStatus.PENDING:
        raise WrongStatus("该退款不在待审批状态", status=refund.status.value)
    return refund


# -- what the staff pages read ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RefundLine:
    """A refund (counter or online) as the approval list and the statement show it."""

    kind: str  # "counter" / "online"
    id: int
    number: str
    account_id: int
    account_number: str
    tenant_name: str
    channel: str  # cash, bank, wechat, alipay
    channel_label: str
    amount_fen: int
    status: str
    status_label: str
    reason: str
    requested_by: str
    approved_by: str
    created_at: datetime


ONLINE_LABELS = {"wechat": "微信原路退回", "alipay": "支付宝原路退回"}
ONLINE_STATUS = {"pending": "待审批", "approved": "已审批", "processing": "退款中",
                 "succeeded": "已退款", "failed": "退款失败", "rejected": "已驳回"}  # fmt: skip


async def refund_lines(
    site_ids: Sequence[int],
    *,
    account_ids: Sequence[int] | None = None,
    pending_only: bool = False,
    limit: int = 200,
) -> list[RefundLine]:
    """Counter and online refunds of accounts in these sites, newest first: those waiting for
    approval (`pending_only`), or every refund of `account_ids`."""
    counter = CounterRefund.filter(account__site_id__in=list(site_ids))
    online = Refund.filter(order__account__site_id__in=list(site_ids))
    if account_ids is not None:
        counter = counter.filter(account_id__in=list(account_ids))
        online = online.filter(order__account_id__in=list(account_ids))
    if pending_only:
        counter = counter.filter(status=CounterRefundStatus.PENDING)
        online = online.filter(status=RefundStatus.PENDING)
    counters = await counter.select_related("account").order_by("-id").limit(limit)
    onlines = await online.select_related("order__account").order_by("-id").limit(limit)
    lines = [_counter_line(r) for r in counters] + [_online_line(r) for r in onlines]
    lines.sort(key=lambda line: line.created_at, reverse=True)
    return lines[:limit]


def _counter_line(r: CounterRefund) -> RefundLine:
    return RefundLine(
        "counter", r.id, r.number, r.account_id, r.account.number, r.account.tenant_name,  # type: ignore[attr-defined]
        r.channel.value, CHANNEL_LABELS[r.channel], r.amount_fen, r.status.value,
        STATUS_LABELS[r.status], r.reason, r.requested_by, r.approved_by, r.created_at,
    )  # fmt: skip


def _online_line(r: Refund) -> RefundLine:
    account, channel = r.order.account, r.order.channel.value
    return RefundLine(
        "online", r.id, r.out_refund_no, account.id, account.number, account.tenant_name,
        channel, ONLINE_LABELS.get(channel, channel), r.amount_fen, r.status.value,
        ONLINE_STATUS.get(r.status.value, r.status.value), r.reason, r.requested_by,
        r.approved_by, r.created_at,
    )  # fmt: skip


async def online_refund_in_scope(site_ids: Sequence[int], refund_id: int) -> int:
    """The account of an online refund of these sites, else 404 (the approval page asks
    before `approve_refund` / `reject_refund`, which know no scope)."""
    found = await Refund.filter(
        id=refund_id, order__account__site_id__in=list(site_ids)
    ).values_list("order__account_id", flat=True)
    if not found:
        raise RefundNotFound("退款单不存在", refund_id=refund_id)
    return int(found[0])  # type: ignore[arg-type]
