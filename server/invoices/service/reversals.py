"""Red-letter reversal (冲红) when a refund touches an invoiced payment.

Payments sit below invoices and never call them, so this side looks: a recharge order with a
succeeded refund, covered by an issued blue invoice, whose paid − refunded is now less than
what invoices hold of it. Each such issued invoice is reversed whole: it becomes REVERSING
and a red invoice of the opposite amount (same buyer, lines negated) is queued and issued
like any other; when the red one is issued the blue one is REVERSED, and what the refund
left of the payment is invoiceable again (server.invoices.service.requests).

Counter refunds come out of the wallet, not out of one payment: they lower the account's
invoiceable ceiling but reverse nothing by themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from server.invoices.models import (
    HOLDING,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    InvoiceStatus,
)
from server.invoices.service.requests import new_number
from server.payments.models import RechargeOrder, Refund, RefundStatus


async def reverse_refunded(*, now: datetime | None = None, limit: int = 100) -> int:
    """Queue a red invoice for every issued invoice a succeeded refund cut into; how many."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    order_ids = await (
        Refund.filter(
            status=RefundStatus.SUCCEEDED,
            order__invoice_parts__invoice__status=InvoiceStatus.ISSUED,
            order__invoice_parts__invoice__reverses_id=None,
        )
        .distinct()
        .limit(limit)
        .values_list("order_id", flat=True)
    )
    if not order_ids:
        return 0
    orders = {o.id: o for o in await RechargeOrder.filter(id__in=list(set(order_ids)))}
    held = {
        r["order_id"]: int(r["held"] or 0)
        for r in await InvoicePayment.filter(order_id__in=list(orders), invoice__status__in=HOLDING)
        .group_by("order_id")
        .annotate(held=Sum("amount_fen"))
        .values("order_id", "held")
    }
    over = [oid for oid, o in orders.items() if o.amount_fen - o.refunded_fen < held.get(oid, 0)]
    if not over:
        return 0
    blue_ids = set(
        await InvoicePayment.filter(
            order_id__in=over, invoice__status=InvoiceStatus.ISSUED, invoice__reverses_id=None
        ).values_list("invoice_id", flat=True)
    )
    reversed_ = 0
    for blue_id in sorted(blue_ids):
        reversed_ += await reverse(blue_id, reason="退款冲红", actor="system", now=now)
    return reversed_


async def reverse(invoice_id: int, *, reason: str, actor: str, now: datetime) -> int:
    """Reverse one issued blue invoice whole: 1, or 0 when it is no longer issued."""
    async with in_transaction():
        blue = (
            await Invoice.filter(id=invoice_id, status=InvoiceStatus.ISSUED, reverses_id=None)
            .select_for_update()
            .first()
        )
        if blue is None:
            return 0
        await Invoice.filter(id=blue.id).update(
            status=InvoiceStatus.REVERSING, reversal_reason=reason[:200]
        )
        red = await Invoice.create(
            number=new_number("R"), account_id=blue.account_id, site_id=blue.site_id,
            kind=blue.kind, title_type=blue.title_type, buyer_name=blue.buyer_name,
            buyer_tax_id=blue.buyer_tax_id, buyer_address=blue.buyer_address,
            buyer_phone=blue.buyer_phone, buyer_bank=blue.buyer_bank,
            buyer_bank_account=blue.buyer_bank_account, email=blue.email, phone=blue.phone,
            amount_fen=-blue.amount_fen, tax_fen=-blue.tax_fen, status=InvoiceStatus.QUEUED,
            reverses_id=blue.id, reversal_reason=reason[:200], requested_by=actor,
            reviewed_by="auto", next_attempt_at=now,
        )  # fmt: skip
        lines = await InvoiceLine.filter(invoice_id=blue.id).order_by("id")
        await InvoiceLine.bulk_create(
            [
                InvoiceLine(
                    invoice_id=red.id,
                    kind=x.kind,
                    name=x.name,
                    tax_code=x.tax_code,
                    tax_rate=x.tax_rate,
                    amount_fen=-x.amount_fen,
                    tax_fen=-x.tax_fen,
                )
                for x in lines
            ]
        )
    return 1
