"""Invoice errors: each carries its status code and a Chinese message (server.core.errors)."""

from __future__ import annotations

from server.core.errors import Conflict, NotFound, ValidationFailed


class InvoiceNotFound(NotFound):
    """The invoice does not exist or is outside the caller's scope."""


class AboveInvoiceable(Conflict):
    """Invariant: an invoice never covers more than was paid and not yet invoiced or
    refunded."""

    code = "above_invoiceable"


class InvoicingNotConfigured(Conflict):
    """The organisation has no seller profile or no tax item for the line asked for."""

    code = "invoicing_not_configured"


class WrongInvoiceState(Conflict):
    code = "wrong_invoice_state"


class BadInvoiceRequest(ValidationFailed):
    """A field of the request is missing or wrong (detail.field names it)."""
