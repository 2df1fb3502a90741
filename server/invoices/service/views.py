"""How an invoice reads to whoever may see it (tenant API, chatbot, admin): one shape."""

from __future__ import annotations

from typing import Any

from server.invoices.models import (
    ITEM_LABELS,
    STATUS_LABELS,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
)

KIND_LABELS = {InvoiceKind.NORMAL: "普通发票", InvoiceKind.SPECIAL: "增值税专用发票"}


def invoice_view(invoice: Invoice, lines: list[Any] | None = None) -> dict[str, Any]:
    """The invoice as a dict (times as datetimes: the caller formats them in its zone)."""
    out: dict[str, Any] = {
        "id": invoice.id,
        "number": invoice.number,
        "account_id": invoice.account_id,
        "kind": invoice.kind.value,
        "kind_label": KIND_LABELS[invoice.kind],
        "title_type": invoice.title_type.value,
        "buyer_name": invoice.buyer_name,
        "buyer_tax_id": invoice.buyer_tax_id,
        "amount_fen": invoice.amount_fen,
        "tax_fen": invoice.tax_fen,
        "status": invoice.status.value,
        "status_label": STATUS_LABELS[InvoiceStatus(invoice.status)],
        "red": invoice.reverses_id is not None,
        "invoice_no": invoice.invoice_no,
        "pdf_url": invoice.pdf_url,
        "ofd_url": invoice.ofd_url,
        "error": invoice.last_error if invoice.status is InvoiceStatus.FAILED else "",
        "requested_at": invoice.created_at,
        "issued_at": invoice.issued_at,
    }
    if lines is not None:
        out["lines"] = [
            {
                "kind": line.kind.value,
                "label": ITEM_LABELS[line.kind],
                "name": line.name,
                "tax_code": line.tax_code,
                "tax_rate": str(line.tax_rate.normalize()),
                "rate_label": f"{(line.tax_rate * 100).normalize():f}%",
                "amount_fen": line.amount_fen,
                "tax_fen": line.tax_fen,
            }
            for line in lines
        ]
    return out


async def account_invoices(account_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The account's invoices, blue and red, newest first, with their lines."""
    rows = (
        await Invoice.filter(account_id=account_id)
        .order_by("-id")
        .limit(limit)
        .prefetch_related("lines")
    )
    return [invoice_view(i, sorted(i.lines, key=lambda line: line.id)) for i in rows]
