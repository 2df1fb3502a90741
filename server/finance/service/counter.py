"""The counter (收费台): cash and 公对公 bank-transfer recharges with their receipt, counter
refunds and balance adjustments — the staff's side of `server.payments.service` (counter.py,
counter_refunds.py), which write the money, its idempotency and the operation log. This
module finds the account within the caller's sites, checks what is asked, and reads back
what the receipt and the approval lists show.

    find_account(site_ids, number, site_id) -> AccountRef
    counter_recharge(site_ids, …) -> (payment id, created)      then the credit's follow-up
    receipt(site_ids, counter_payment_id, tz) -> Receipt         the printable 收款收据
    request_refund / request_adjust                               two-step above the thresholds
    pending_adjustments / approve_adjust / reject_adjust          the second person's part

A refund or an adjustment above its threshold waits for another staff member: the requester
cannot approve their own (`SamePersonApproval`). Everything is scoped: an account, payment
or adjustment of another site answers NotFound, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from server.accounts.models import Account, AccountStatus
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.money import in_words
from server.payments.config import PaymentSettings
from server.payments.models import (
    AdjustmentStatus,
    BalanceAdjustment,
    CounterChannel,
    CounterPayment,
    CounterRefund,
)
from server.payments.service import (
    approve_adjustment,
    record_counter_payment,
    reject_adjustment,
    request_adjustment,
    request_counter_refund,
)
from server.payments.service.counter import counter_key
from server.payments.service.followups import run_followup
from server.staff.service.oplog import actor_names

CHANNEL_LABELS = {CounterChannel.CASH.value: "现金", CounterChannel.BANK.value: "对公转账"}


@dataclass(frozen=True, slots=True)
class AccountRef:
    id: int
    site_id: int
    site: str
    number: str
    tenant_name: str
    room: str
    open: bool


@dataclass(frozen=True, slots=True)
class Receipt:
    id: int
    reference: str
    channel: str
    channel_label: str
    amount_fen: int
    amount_words: str
    payer_name: str
    memo: str
    at: datetime  # in the park's zone
    recorded_by: str
    account: AccountRef


@dataclass(frozen=True, slots=True)
class AdjustmentLine:
    id: int
    account: AccountRef
    amount_fen: int
    reason: str
    status: str
    requested_by: str
    at: datetime


async def _ref(account: Account) -> AccountRef:
    await account.fetch_related("site", "room")
    return AccountRef(
        account.id, account.site_id, account.site.name, account.number,  # type: ignore[attr-defined]
        account.tenant_name, account.room.name if account.room else "",
        account.status == AccountStatus.OPEN,
    )  # fmt: skip


async def find_account(site_ids: Sequence[int], number: str, site_id: int | None) -> AccountRef:
    """The account with this number in the caller's sites (in `site_id` when given)."""
    number = number.strip()
    if not number:
        raise ValidationFailed("请填写户号", field="account")
    query = Account.filter(site_id__in=list(site_ids), number=number[:32])
    if site_id is not None:
        query = query.filter(site_id=site_id)
    found = await query.limit(2)
    if not found:
        raise NotFound("找不到该户号", number=number)
    if len(found) > 1:
        raise ValidationFailed("多个园区都有这个户号，请选择园区", field="site")
    return await _ref(found[0])


async def account_in_scope(site_ids: Sequence[int], account_id: int) -> AccountRef:
    account = await Account.get_or_none(id=account_id, site_id__in=list(site_ids))
    if account is None:
        raise NotFound("账户不存在", account_id=account_id)
    return await _ref(account)


def _channel(channel: str) -> CounterChannel:
    if channel not in CHANNEL_LABELS:
        raise ValidationFailed("请选择收款方式（现金或对公转账）", field="channel")
    return CounterChannel(channel)


async def counter_recharge(
    site_ids: Sequence[int],
    account: AccountRef,
    channel: str,
    amount_fen: int,
    reference: str,
    *,
    payer_name: str,
    memo: str,
    actor: str,
) -> tuple[int, bool]:
    """Credit cash or a bank transfer to an open account of the caller's sites once per
    (channel, receipt/transfer number); then the credit's follow-up (alarms cleared, relay
    closed, meter-billed meters written) after the commit. Returns (payment id, created)."""
    if account.site_id not in site_ids:
        raise NotFound("账户不存在", account_id=account.id)
    if not account.open:
        raise Conflict("该账户已销户，不能充值")
    kind = _channel(channel)
    payment, created = await record_counter_payment(
        account.id, kind, amount_fen, reference[:64], actor=actor,
        payer_name=payer_name or account.tenant_name, memo=memo,
    )  # fmt: skip
    if created:
        await run_followup(counter_key(kind, payment.reference))
    return payment.id, created


async def receipt(site_ids: Sequence[int], counter_payment_id: int, tz: ZoneInfo) -> Receipt:
    payment = await CounterPayment.get_or_none(
        id=counter_payment_id, account__site_id__in=list(site_ids)
    )
    if payment is None:
        raise NotFound("收据不存在", counter_payment_id=counter_payment_id)
    account = await _ref(await Account.get(id=payment.account_id))  # type: ignore[attr-defined]
    names = await actor_names([payment.recorded_by])
    return Receipt(
        payment.id, payment.reference, payment.channel.value,
        CHANNEL_LABELS[payment.channel.value], payment.amount_fen, in_words(payment.amount_fen),
        payment.payer_name, payment.memo, payment.created_at.astimezone(tz),
        names.get(payment.recorded_by, payment.recorded_by), account,
    )  # fmt: skip


async def recent_receipts(site_ids: Sequence[int], tz: ZoneInfo, limit: int = 20) -> list[Receipt]:
    """The newest counter payments of the caller's sites."""
    ids = await (
        CounterPayment.filter(account__site_id__in=list(site_ids))
        .order_by("-created_at", "-id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    return [await receipt(site_ids, int(i), tz) for i in ids]


async def request_refund(
    settings: PaymentSettings,
    site_ids: Sequence[int],
    account: AccountRef,
    channel: str,
    amount_fen: int,
    *,
    reason: str,
    payee_name: str,
    payee_account: str,
    request_key: str,
    actor: str,
) -> CounterRefund:
    """A counter refund out of the wallet (held in the ledger; paid at once up to the refund
    threshold, else waiting on /admin/refunds for a second person)."""
    if account.site_id not in site_ids:
        raise NotFound("账户不存在", account_id=account.id)
    if not reason.strip():
        raise ValidationFailed("退款必须填写原因", field="reason")
    return await request_counter_refund(
        settings, account.id, _channel(channel), amount_fen, reason=reason, actor=actor,
        request_key=request_key, payee_name=payee_name or account.tenant_name,
        payee_account=payee_account,
    )  # fmt: skip


async def request_adjust(
    settings: PaymentSettings,
    site_ids: Sequence[int],
    account: AccountRef,
    amount_fen: int,
    *,
    reason: str,
    actor: str,
) -> BalanceAdjustment:
    """A signed correction with its reason: applied at once up to the adjustment threshold,
    else waiting for a second person (`pending_adjustments`)."""
    if account.site_id not in site_ids:
        raise NotFound("账户不存在", account_id=account.id)
    if not reason.strip():
        raise ValidationFailed("调账必须填写原因", field="reason")
    if amount_fen == 0:
        raise ValidationFailed("调账金额不能为0", field="amount")
    adjustment = await request_adjustment(
        settings, account.id, amount_fen, reason=reason, actor=actor
    )
    if adjustment.status == AdjustmentStatus.APPLIED and amount_fen > 0:
        await run_followup(f"adjust:{adjustment.id}")
    return adjustment


async def pending_adjustments(site_ids: Sequence[int], tz: ZoneInfo) -> list[AdjustmentLine]:
    rows = await BalanceAdjustment.filter(
        account__site_id__in=list(site_ids), status=AdjustmentStatus.PENDING
    ).order_by("created_at", "id")
    names = await actor_names({r.requested_by for r in rows})
    out = []
    for r in rows:
        account = await _ref(await Account.get(id=r.account_id))  # type: ignore[attr-defined]
        out.append(AdjustmentLine(
            r.id, account, r.amount_fen, r.reason, r.status.value,
            names.get(r.requested_by, r.requested_by), r.created_at.astimezone(tz),
        ))  # fmt: skip
    return out


async def _adjustment_in_scope(site_ids: Sequence[int], adjustment_id: int) -> BalanceAdjustment:
    found = await BalanceAdjustment.get_or_none(
        id=adjustment_id, account__site_id__in=list(site_ids)
    )
    if found is None:
        raise NotFound("调账申请不存在", adjustment_id=adjustment_id)
    return found


async def approve_adjust(site_ids: Sequence[int], adjustment_id: int, *, actor: str) -> int:
    """The second person applies a pending adjustment; returns its account id."""
    await _adjustment_in_scope(site_ids, adjustment_id)
    adjustment = await approve_adjustment(adjustment_id, actor=actor)
    if adjustment.amount_fen > 0:
        await run_followup(f"adjust:{adjustment.id}")
    return adjustment.account_id  # type: ignore[attr-defined,no-any-return]


async def reject_adjust(
    site_ids: Sequence[int], adjustment_id: int, *, actor: str, reason: str
) -> int:
    await _adjustment_in_scope(site_ids, adjustment_id)
    if not reason.strip():
        raise ValidationFailed("驳回必须填写原因", field="reason")
    adjustment = await reject_adjustment(adjustment_id, actor=actor, reason=reason)
    return adjustment.account_id  # type: ignore[attr-defined,no-any-return]
