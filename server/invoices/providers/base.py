"""What an e-invoice platform is asked and answers, whichever platform it is.

An order (`BillingOrder`) is one invoice as sent: seller, buyer, lines with their tax
classification and amounts, and for a red invoice (红字发票) the blue one it reverses. The
platform accepts it and issues it later (`IssueResult`: pending, issued or failed), so the
issuing service submits, then polls. `PlatformError` is a refusal or an unreachable
platform: `temporary` ones are tried again later, the others fail the invoice with the
platform's own code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BillingLine:
    name: str  # 货物或应税劳务名称
    tax_code: str  # 税收分类编码, 19 digits
    tax_rate: Decimal  # 0.13
    amount_fen: int  # tax-inclusive; negative on a red invoice
    tax_fen: int
    unit: str = ""


@dataclass(frozen=True, slots=True)
class BillingOrder:
    order_no: str  # ours (Invoice.number): the platform refuses a second order with it
    seller_tax_id: str
    seller_address: str
    seller_phone: str
    clerk: str  # 开票人
    buyer_name: str
    buyer_tax_id: str
    special: bool  # 增值税专用发票 (数电专票) rather than 普通发票
    lines: Sequence[BillingLine]
    issued_on: datetime  # the order's date (invoiceDate)
    buyer_address: str = ""
    buyer_phone: str = ""
    buyer_bank: str = ""
    buyer_bank_account: str = ""
    email: str = ""  # the platform delivers there too when asked; we deliver ourselves
    mobile: str = ""
    red: bool = False
    blue_invoice_code: str = ""  # of the invoice a red one reverses
    blue_invoice_no: str = ""
    reason: str = ""

    @property
    def amount_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


class Outcome(StrEnum):
    PENDING = "pending"  # accepted, not issued yet: ask again later
    ISSUED = "issued"
    FAILED = "failed"  # the platform gave up on it (failCause)


@dataclass(frozen=True, slots=True)
class IssueResult:
    order_no: str
    outcome: Outcome
    serial: str = ""  # the platform's 流水号
    code: str = ""  # the platform's status or error code
    message: str = ""
    invoice_code: str = ""
    invoice_no: str = ""
    pdf_url: str = ""
    ofd_url: str = ""
    issued_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


class PlatformError(Exception):
    """The platform refused the request or could not be reached. `code` is the platform's
    (or `<platform>.unreachable`, `http.<status>`), kept on the invoice for staff."""

    def __init__(self, code: str, message: str, *, temporary: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.temporary = temporary


class InvoicePlatform(Protocol):
    name: str

    async def submit(self, order: BillingOrder) -> str:
        """Ask for the invoice; the platform's serial number, or PlatformError. A second
        submit of the same order number is answered as already accepted (empty serial)."""
        ...

    async def results(self, seller_tax_id: str, order_nos: Sequence[str]) -> list[IssueResult]:
        """Where each order stands (orders the platform does not know are left out)."""
        ...

    async def aclose(self) -> None: ...
