"""The invoices as staff see them (admin 发票 pages): a filtered, paged list of the scope's
invoices, its Excel export for the finance month, and one invoice with its lines, payments and
the red/blue invoice it is paired with. Scoped by the caller's site ids: an invoice of another
site is not found."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Q

from server.core.excel import Column, Kind
from server.core.paging import Page, Paging
from server.invoices.errors import InvoiceNotFound
from server.invoices.models import STATUS_LABELS, Invoice, InvoicePayment, InvoiceStatus
from server.invoices.service.views import invoice_view

STATUSES = {s.value: label for s, label in STATUS_LABELS.items()}
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class InvoiceFilter:
    status: InvoiceStatus | None = None
    site_id: int | None = None
    month: date | None = None  # the month it was issued in (开具月份), first day
    q: str = ""  # our number, the invoice number or the buyer's name (its start)

    @classmethod
    def of(cls, *, status: str = "", site_id: int | None = None, month: str = "",
           q: str = "") -> InvoiceFilter:  # fmt: skip
        """From query arguments; nonsense is ignored rather than refused."""
        try:
            wanted = InvoiceStatus(status) if status else None
        except ValueError:
            wanted = None
        try:
            first = date.fromisoformat(f"{month}-01") if month else None
        except ValueError:
            first = None
        return cls(wanted, site_id, first, q.strip()[:60])

    @property
    def month_text(self) -> str:
        return f"{self.month:%Y-%m}" if self.month else ""


def _query(site_ids: Sequence[int], wanted: InvoiceFilter, tz: ZoneInfo) -> Any:
    query = Invoice.filter(site_id__in=list(site_ids) or [0])
    if wanted.site_id is not None:
        query = query.filter(site_id=wanted.site_id)
    if wanted.status is not None:
        query = query.filter(status=wanted.status)
    if wanted.month is not None:
        start = datetime.combine(wanted.month, time(), tz)
        end_month = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        query = query.filter(
            issued_at__gte=start, issued_at__lt=datetime.combine(end_month, time(), tz)
        )
    if wanted.q:
        query = query.filter(
            Q(number__startswith=wanted.q) | Q(invoice_no__startswith=wanted.q)
            | Q(buyer_name__startswith=wanted.q)
        )  # fmt: skip
    return query


def _row(invoice: Invoice) -> dict[str, Any]:
    out = invoice_view(invoice)
    out |= {
        "site": invoice.site.name, "account_number": invoice.account.number,
        "tenant_name": invoice.account.tenant_name, "reviewed_by": invoice.reviewed_by,
        "attempts": invoice.attempts, "last_error": invoice.last_error,
        "reverses_id": invoice.reverses_id,
    }  # fmt: skip
    return out


async def search(
    site_ids: Sequence[int], wanted: InvoiceFilter, paging: Paging, tz: ZoneInfo
) -> Page[dict[str, Any]]:
    """One page of the filter, newest first."""
    query = _query(site_ids, wanted, tz)
    total = await query.count()
    rows = (
        await query.order_by("-id").offset(paging.offset).limit(paging.per_page)
        .prefetch_related("site", "account")
    )  # fmt: skip
    return Page([_row(i) for i in rows], total, paging)


EXPORT_COLUMNS = (
    Column("申请时间", Kind.DATETIME, 20),
    Column("开具时间", Kind.DATETIME, 20),
    Column("园区", Kind.TEXT, 14),
    Column("账户号", Kind.TEXT, 12),
    Column("发票号码", Kind.TEXT, 22),
    Column("类型", Kind.TEXT, 14),
    Column("红/蓝", Kind.TEXT, 6),
    Column("购方名称", Kind.TEXT, 26),
    Column("购方税号", Kind.TEXT, 20),
    Column("价税合计（元）", Kind.MONEY, 14),
    Column("税额（元）", Kind.MONEY, 12),
    Column("状态", Kind.TEXT, 10),
    Column("订单号", Kind.TEXT, 22),
    Column("说明", Kind.TEXT, 30),
)


def export_cells(r: dict[str, Any], tz: ZoneInfo) -> tuple[Any, ...]:
    def local(at: datetime | None) -> datetime | None:
        return at.astimezone(tz) if at else None

    note = r["error"] or (r["last_error"] if r["status"] == "queued" else "")
    return (
        local(r["requested_at"]), local(r["issued_at"]), r["site"], r["account_number"],
        r["invoice_no"], r["kind_label"], "红字" if r["red"] else "蓝字", r["buyer_name"],
        r["buyer_tax_id"], r["amount_fen"], r["tax_fen"], r["status_label"], r["number"], note,
    )  # fmt: skip


async def export_chunks(
    site_ids: Sequence[int], wanted: InvoiceFilter, tz: ZoneInfo
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The export's rows (EXPORT_COLUMNS), oldest first, a chunk at a time by id."""
    last = 0
    while True:
        rows = (
            await _query(site_ids, wanted, tz).filter(id__gt=last).order_by("id").limit(CHUNK)
            .prefetch_related("site", "account")
        )  # fmt: skip
        if not rows:
            return
        last = rows[-1].id
        yield [export_cells(_row(i), tz) for i in rows]


async def detail(site_ids: Sequence[int], invoice_id: int) -> dict[str, Any]:
    """One invoice of the scope with its lines, the payments it covers and its pair."""
    invoice = (
        await Invoice.filter(id=invoice_id, site_id__in=list(site_ids) or [0])
        .prefetch_related("site", "account", "lines")
        .first()
    )
    if invoice is None:
        raise InvoiceNotFound("发票不存在", invoice_id=invoice_id)
    out = _row(invoice) | invoice_view(invoice, sorted(invoice.lines, key=lambda x: x.id))
    parts = (
        await InvoicePayment.filter(invoice_id=invoice.id).order_by("id").prefetch_related("order")
    )
    out["payments"] = [
        {"ref": p.order.out_trade_no if p.order_id else f"C{p.counter_id}",
         "kind": p.kind.value, "amount_fen": p.amount_fen}
        for p in parts
    ]  # fmt: skip
    pair = await Invoice.filter(reverses_id=invoice.id).order_by("-id").first()
    out["red_id"] = pair.id if pair else None
    out |= {
        "buyer_address": invoice.buyer_address, "buyer_phone": invoice.buyer_phone,
        "buyer_bank": invoice.buyer_bank, "buyer_bank_account": invoice.buyer_bank_account,
        "email": invoice.email, "phone": invoice.phone, "serial": invoice.serial,
        "review_note": invoice.review_note, "requested_by": invoice.requested_by,
        "reversal_reason": invoice.reversal_reason,
        "next_attempt_at": invoice.next_attempt_at,
    }  # fmt: skip
    return out
