"""What is invoiceable, and a request for an invoice: the one place that decides it.

Invoiceable = what was paid (recharge orders credited, counter payments) − what was
refunded (a recharge order's refunds, succeeded or in flight; the account's counter refunds
not rejected) − what active invoices hold (every state but rejected and reversed). Per
payment, and for the account as a whole (a counter refund is paid out of the wallet, not
out of one payment, so it lowers the account's ceiling).

Two requests for the same payments cannot both pass: `request_invoice` locks the account
row and the orders it covers (`SELECT … FOR UPDATE` on PostgreSQL; SQLite has one writer),
then reads what is held and inserts, in one transaction. A refund locks the same order row
(server.payments.service.refunds), so a refund and a request are serialised too.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from server.accounts.models import Account
from server.core.money import yuan
from server.invoices.errors import AboveInvoiceable, BadInvoiceRequest, InvoicingNotConfigured
from server.invoices.lines import allocate, price_line
from server.invoices.models import (
    HOLDING,
    Invoice,
    InvoiceItem,
    InvoiceKind,
    InvoiceLine,
    InvoicePayment,
    InvoiceProfile,
    InvoiceStatus,
    ItemKind,
    PaymentKind,
)
from server.invoices.service.buyer import Buyer
from server.payments.models import (
    CounterPayment,
    CounterRefund,
    CounterRefundStatus,
    OrderStatus,
    RechargeOrder,
)
from server.places.models import Site

CHANNEL_LABELS = {"wechat": "微信支付", "alipay": "支付宝", "cash": "现金", "bank": "银行转账"}


@dataclass(frozen=True, slots=True)
class OpenPayment:
    """One payment and how much of it is still invoiceable."""

    ref: str  # the order number, or "C<id>" for a counter payment
    kind: PaymentKind
    id: int
    channel: str
    paid_at: datetime | None
    amount_fen: int
    refunded_fen: int
    invoiced_fen: int

    @property
    def open_fen(self) -> int:
        return max(0, self.amount_fen - self.refunded_fen - self.invoiced_fen)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "kind": self.kind.value, "channel": self.channel,
            "channel_label": CHANNEL_LABELS.get(self.channel, self.channel),
            "paid_at": self.paid_at, "amount_fen": self.amount_fen,
            "refunded_fen": self.refunded_fen, "invoiced_fen": self.invoiced_fen,
            "invoiceable_fen": self.open_fen,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Invoiceable:
    payments: list[OpenPayment]
    ceiling_fen: int  # the account's paid − refunded − held, whatever the payments say

    @property
    def total_fen(self) -> int:
        return max(0, min(sum(p.open_fen for p in self.payments), self.ceiling_fen))


@dataclass(frozen=True, slots=True)
class LineAsk:
    kind: ItemKind
    amount_fen: int


async def invoiceable(account_id: int) -> Invoiceable:
    """The account's payments with what is still invoiceable of each (newest first)."""
    orders = await RechargeOrder.filter(account_id=account_id, status=OrderStatus.PAID)
    counters = await CounterPayment.filter(account_id=account_id)
    return await _open(account_id, orders, counters)


async def _open(
    account_id: int, orders: Sequence[RechargeOrder], counters: Sequence[CounterPayment]
) -> Invoiceable:
    held_orders, held_counters = await _held([o.id for o in orders], [c.id for c in counters])
    payments = [
        OpenPayment(
            o.out_trade_no,
            PaymentKind.ONLINE,
            o.id,
            o.channel.value,
            o.paid_at,
            o.amount_fen,
            o.refunded_fen,
            held_orders.get(o.id, 0),
        )
        for o in orders
    ] + [
        OpenPayment(
            f"C{c.id}",
            PaymentKind.COUNTER,
            c.id,
            c.channel.value,
            c.created_at,
            c.amount_fen,
            0,
            held_counters.get(c.id, 0),
        )
        for c in counters
    ]
    payments.sort(key=lambda p: (p.paid_at or datetime.min.replace(tzinfo=UTC), p.ref))
    return Invoiceable(payments[::-1], await _ceiling(account_id))


async def _held(
    order_ids: list[int], counter_ids: list[int]
) -> tuple[dict[int, int], dict[int, int]]:
    """What active invoices hold of each order and counter payment."""
    by_order: dict[int, int] = {}
    by_counter: dict[int, int] = {}
    if order_ids:
        rows = await (
            InvoicePayment.filter(order_id__in=order_ids, invoice__status__in=HOLDING)
            .group_by("order_id")
            .annotate(held=Sum("amount_fen"))
            .values("order_id", "held")
        )
        by_order = {r["order_id"]: int(r["held"] or 0) for r in rows}
    if counter_ids:
        rows = await (
            InvoicePayment.filter(counter_id__in=counter_ids, invoice__status__in=HOLDING)
            .group_by("counter_id")
            .annotate(held=Sum("amount_fen"))
            .values("counter_id", "held")
        )
        by_counter = {r["counter_id"]: int(r["held"] or 0) for r in rows}
    return by_order, by_counter


async def _sum(query: Any, field: str) -> int:
    rows = await query.annotate(s=Sum(field)).values("s")
    return int((rows[0]["s"] if rows else 0) or 0)


async def _ceiling(account_id: int) -> int:
    """Paid − refunded − held for the whole account."""
    paid_orders = RechargeOrder.filter(account_id=account_id, status=OrderStatus.PAID)
    paid = await _sum(paid_orders, "amount_fen") + await _sum(
        CounterPayment.filter(account_id=account_id), "amount_fen"
    )
    refunded = await _sum(paid_orders, "refunded_fen") + await _sum(
        CounterRefund.filter(account_id=account_id).exclude(status=CounterRefundStatus.REJECTED),
        "amount_fen",
    )
    held = await _sum(
        Invoice.filter(account_id=account_id, status__in=HOLDING, reverses_id=None), "amount_fen"
    )
    return paid - refunded - held


def _refs(refs: Sequence[str]) -> tuple[list[str], list[int]]:
    orders, counters = [], []
    for ref in refs:
        if ref.startswith("C") and ref[1:].isdigit():
            counters.append(int(ref[1:]))
        elif ref:
            orders.append(ref)
    return orders, counters


async def request_invoice(
    account_id: int,
    buyer: Buyer,
    payment_refs: Sequence[str],
    *,
    actor: str,
    amount_fen: int | None = None,
    lines: Sequence[LineAsk] = (),
) -> Invoice:
    """Record a request over `payment_refs` (all they leave open, or `amount_fen` of it,
    oldest first); `AboveInvoiceable` when they do not cover it. Auto-issued (queued) when
    the organisation's rule allows, else waiting for review."""
    if not payment_refs:
        raise BadInvoiceRequest("请选择要开票的付款记录", field="payments")
    if amount_fen is not None and amount_fen <= 0:
        raise BadInvoiceRequest("开票金额应大于 0", field="amount_fen")
    order_nos, counter_ids = _refs(payment_refs)
    async with in_transaction():
        account = await Account.select_for_update().get(id=account_id)
        site = await Site.get(id=account.site_id)
        profile = await InvoiceProfile.get_or_none(organisation_id=site.organisation_id)
        if profile is None:
            raise InvoicingNotConfigured("物业尚未开通电子发票，请联系物业", account_id=account_id)
        orders = (
            await RechargeOrder.select_for_update()
            .filter(
                account_id=account_id, status=OrderStatus.PAID, out_trade_no__in=order_nos or [""]
            )
            .order_by("id")
        )
        counters = await CounterPayment.filter(
            account_id=account_id, id__in=counter_ids or [0]
        ).order_by("id")
        if len(orders) + len(counters) != len(set(payment_refs)):
            raise BadInvoiceRequest("所选付款记录不存在或不可开票", field="payments")
        open_ = await _open(account_id, orders, counters)
        chosen = open_.payments[::-1]  # oldest first
        available = open_.total_fen
        wanted = available if amount_fen is None else amount_fen
        if available <= 0 or wanted > available:
            raise AboveInvoiceable(
                f"可开票金额为 ¥{yuan(available)}，申请的 ¥{yuan(wanted)} 超出"
                "（已开票或已退款的部分不能再开）",
                invoiceable_fen=available, requested_fen=wanted,
            )  # fmt: skip
        priced = await _lines(site.organisation_id, profile, lines, wanted)
        auto = buyer.kind is InvoiceKind.NORMAL and wanted <= profile.auto_issue_max_fen
        invoice = await Invoice.create(
            number=new_number(), account_id=account_id, site_id=site.id, kind=buyer.kind,
            title_type=buyer.title_type, buyer_name=buyer.name, buyer_tax_id=buyer.tax_id,
            buyer_address=buyer.address, buyer_phone=buyer.phone, buyer_bank=buyer.bank,
            buyer_bank_account=buyer.bank_account, email=buyer.email, phone=buyer.mobile,
            amount_fen=wanted, tax_fen=sum(line.tax_fen for line in priced),
            status=InvoiceStatus.QUEUED if auto else InvoiceStatus.REQUESTED,
            reviewed_by="auto" if auto else "", requested_by=actor,
            next_attempt_at=datetime.now(UTC) if auto else None,
        )  # fmt: skip
        for line in priced:
            line.invoice_id = invoice.id
        await InvoiceLine.bulk_create(priced)
        parts = allocate(wanted, [p.open_fen for p in chosen])
        await InvoicePayment.bulk_create(
            [
                InvoicePayment(
                    invoice_id=invoice.id,
                    kind=p.kind,
                    amount_fen=part,
                    order_id=p.id if p.kind is PaymentKind.ONLINE else None,
                    counter_id=p.id if p.kind is PaymentKind.COUNTER else None,
                )
                for p, part in zip(chosen, parts, strict=True)
                if part > 0
            ]
        )
    return invoice


async def _lines(
    organisation_id: int, profile: InvoiceProfile, asked: Sequence[LineAsk], total: int
) -> list[InvoiceLine]:
    asks = list(asked) or [LineAsk(profile.default_item, total)]
    if sum(a.amount_fen for a in asks) != total or any(a.amount_fen <= 0 for a in asks):
        raise BadInvoiceRequest("各开票项目金额之和应等于开票金额", field="lines")
    items = {i.kind: i for i in await InvoiceItem.filter(organisation_id=organisation_id)}
    out = []
    for ask in asks:
        item = items.get(ask.kind)
        if item is None:
            raise InvoicingNotConfigured(
                f"物业尚未配置“{ask.kind.value}”的开票税目，请联系物业", item=ask.kind.value
            )
        priced = price_line(ask.amount_fen, item.tax_rate)
        out.append(
            InvoiceLine(
                kind=item.kind,
                name=item.name,
                tax_code=item.tax_code,
                tax_rate=item.tax_rate,
                amount_fen=priced.amount_fen,
                tax_fen=priced.tax_fen,
            )
        )
    return out


def new_number(prefix: str = "I") -> str:
    """Our invoice number (the platform's orderNo): date and 10 random hex digits."""
    return f"{prefix}{datetime.now(UTC):%Y%m%d}{secrets.token_hex(5)}"
