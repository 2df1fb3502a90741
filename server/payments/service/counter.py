"""Counter payments (cash, 公对公 bank transfer) and staff balance adjustments.

A counter payment is credited once per (channel, receipt / transfer reference): the ledger
key is `counter:{channel}:{reference}`, so a double-submitted form is a no-op and the same
reference with other data is refused. Adjustments carry a reason; above the configured
amount they wait for a second person.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.ledger import service as ledger
from server.ledger.posting import Channel as LedgerChannel
from server.payments.config import PaymentSettings
from server.payments.errors import (
    AmountOutOfLimits,
    OrderNotFound,
    ReferenceReused,
    SamePersonApproval,
    WrongStatus,
)
from server.payments.models import (
    AdjustmentStatus,
    BalanceAdjustment,
    CounterChannel,
    CounterPayment,
    CreditFollowUp,
)


def counter_key(channel: CounterChannel | str, reference: str) -> str:
    return f"counter:{CounterChannel(channel).value}:{reference}"


async def record_counter_payment(
    account_id: int,
    channel: CounterChannel | str,
    amount_fen: int,
    reference: str,
    *,
    actor: str,
    payer_name: str = "",
    memo: str = "",
) -> tuple[CounterPayment, bool]:
    """Credit cash or a bank transfer; returns (payment, created). Run the follow-up
    (`run_followup(counter_key(...))`) after the caller's commit."""
    channel = CounterChannel(channel)
    reference = reference.strip()
    if not reference:
        raise AmountOutOfLimits("请填写收据号或银行流水号")
    if type(amount_fen) is not int or amount_fen <= 0:
        raise AmountOutOfLimits("金额必须大于0")
    existing = await CounterPayment.get_or_none(channel=channel, reference=reference)
    if existing is not None:
        return _same(existing, account_id, amount_fen), False
    key = counter_key(channel, reference)
    try:
        async with in_transaction():
            payment = await CounterPayment.create(
                channel=channel,
                reference=reference,
                account_id=account_id,
                amount_fen=amount_fen,
                payer_name=payer_name[:100],
                memo=memo[:200],
                recorded_by=actor,
            )
            label = "现金" if channel is CounterChannel.CASH else "对公转账"
            await ledger.recharge(
                account_id,
                LedgerChannel(channel.value),
                amount_fen,
                key=key,
                actor=actor,
                memo=f"{label}充值 {reference}",
            )
            await CreditFollowUp.create(credit_key=key, account_id=account_id, reason="counter")
            await record(
                actor,
                "payment.counter",
                target_type="account",
                target_id=account_id,
                reason=memo,
                detail={"channel": channel.value, "reference": reference, "amount_fen": amount_fen},
            )
            return payment, True
    except IntegrityError:  # the same reference committed concurrently
        existing = await CounterPayment.get(channel=channel, reference=reference)
        return _same(existing, account_id, amount_fen), False


def _same(existing: CounterPayment, account_id: int, amount_fen: int) -> CounterPayment:
    if (existing.account_id, existing.amount_fen) != (account_id, amount_fen):  # type: ignore[attr-defined]
        raise ReferenceReused("该收据号/流水号已登记过另一笔款项", reference=existing.reference)
    return existing


async def request_adjustment(
    settings: PaymentSettings, account_id: int, amount_fen: int, *, reason: str, actor: str
) -> BalanceAdjustment:
    """A signed correction with a reason; applied at once up to the threshold."""
    if not reason.strip():
        raise WrongStatus("调账必须填写原因")
    if type(amount_fen) is not int or amount_fen == 0:
        raise AmountOutOfLimits("调账金额不能为0")
    needs_approval = abs(amount_fen) > settings.adjustment_approval_above_fen
    async with in_transaction():
        adjustment = await BalanceAdjustment.create(
            account_id=account_id,
            amount_fen=amount_fen,
            reason=reason[:200],
            status=AdjustmentStatus.PENDING,
            requested_by=actor,
        )
        await record(
            actor,
            "adjustment.request",
            target_type="account",
            target_id=account_id,
            reason=reason,
            detail={"adjustment_id": adjustment.id, "amount_fen": amount_fen},
        )
        if not needs_approval:
            await _apply(adjustment, actor)
        return adjustment


async def approve_adjustment(adjustment_id: int, *, actor: str) -> BalanceAdjustment:
    async with in_transaction():
        adjustment = await _pending(adjustment_id)
        if actor == adjustment.requested_by:
            raise SamePersonApproval("审批人不能是申请人")
        adjustment.approved_by = actor
        await _apply(adjustment, actor)
        await record(
            actor,
            "adjustment.approve",
            target_type="account",
            target_id=adjustment.account_id,  # type: ignore[attr-defined]
            detail={"adjustment_id": adjustment.id},
        )
        return adjustment


async def reject_adjustment(adjustment_id: int, *, actor: str, reason: str) -> BalanceAdjustment:
    async with in_transaction():
        adjustment = await _pending(adjustment_id)
        adjustment.status = AdjustmentStatus.REJECTED
        adjustment.approved_by = actor
        await adjustment.save(update_fields=["status", "approved_by", "updated_at"])
        await record(
            actor,
            "adjustment.reject",
            target_type="account",
            target_id=adjustment.account_id,  # type: ignore[attr-defined]
            reason=reason,
            detail={"adjustment_id": adjustment.id},
        )
        return adjustment


async def _pending(adjustment_id: int) -> BalanceAdjustment:
    adjustment = await BalanceAdjustment.select_for_update().get_or_none(id=adjustment_id)
    if adjustment is None:
        raise OrderNotFound("调账申请不存在", adjustment_id=adjustment_id)
    if adjustment.status != AdjustmentStatus.PENDING:
        raise WrongStatus("该调账不在待审批状态", status=adjustment.status.value)
    return adjustment


async def _apply(adjustment: BalanceAdjustment, actor: str) -> None:
    key = f"adjust:{adjustment.id}"
    await ledger.adjust(
        adjustment.account_id,
        adjustment.amount_fen,
        key=key,
        actor=actor,  # type: ignore[attr-defined]
        reason=adjustment.reason,
    )
    if adjustment.amount_fen > 0:
        await CreditFollowUp.create(
            credit_key=key,
            account_id=adjustment.account_id,  # type: ignore[attr-defined]
            reason="adjustment",
        )
    adjustment.status = AdjustmentStatus.APPLIED
    await adjustment.save(update_fields=["status", "approved_by", "updated_at"])
