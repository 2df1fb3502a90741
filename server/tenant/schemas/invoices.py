"""Bodies of the invoices window (/api/v1/accounts/<id>/invoices), as the OpenAPI spec
declares them; the contract is docs/tenant-api.md."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.tenant.schemas import Body

ItemKindName = Literal["electricity", "water", "property", "service", "rent", "other"]


class LineIn(Body):
    item: ItemKindName
    amount_fen: int = Field(gt=0)


class InvoiceIn(Body):
    kind: Literal["normal", "special"] = Field(
        description="normal 普通发票；special 增值税专用发票"
    )
    title_type: Literal["personal", "company"]
    buyer_name: str = Field(min_length=1, max_length=100, description="发票抬头")
    buyer_tax_id: str = Field(default="", max_length=24, description="税号：15/18/20 位")
    buyer_address: str = Field(default="", max_length=200, description="专票必填")
    buyer_phone: str = Field(default="", max_length=40, description="专票必填")
    buyer_bank: str = Field(default="", max_length=100, description="专票必填")
    buyer_bank_account: str = Field(default="", max_length=40, description="专票必填")
    email: str = Field(default="", max_length=100)
    phone: str = Field(default="", max_length=20, description="接收短信的手机号")
    payments: list[str] = Field(min_length=1, max_length=50, description="付款记录的 ref")
    amount_fen: int | None = Field(default=None, gt=0, description="默认：所选付款的全部可开票金额")
    lines: list[LineIn] = Field(
        default=[], max_length=6, description="按项目分列；默认一行（物业设定的默认项目）"
    )


class InvoiceLineOut(BaseModel):
    kind: ItemKindName
    label: str = Field(examples=["电费"])
    name: str = Field(examples=["*供电*电费"])
    tax_code: str = Field(examples=["1100101000000000000"])
    tax_rate: str = Field(examples=["0.13"])
    amount_fen: int
    tax_fen: int


class InvoiceOut(BaseModel):
    id: int
    number: str
    account_id: int
    kind: Literal["normal", "special"]
    kind_label: str
    title_type: Literal["personal", "company"]
    buyer_name: str
    buyer_tax_id: str
    amount_fen: int = Field(description="价税合计（分）；红字发票为负")
    tax_fen: int
    status: Literal[
        "requested", "queued", "issuing", "issued", "failed", "rejected", "reversing", "reversed"
    ]
    status_label: str = Field(examples=["待审核"])
    red: bool = Field(description="红字发票（冲红）")
    invoice_no: str
    pdf_url: str
    ofd_url: str
    error: str
    requested_at: str | None
    issued_at: str | None
    lines: list[InvoiceLineOut] = []


class PaymentOut(BaseModel):
    ref: str = Field(description="申请时放入 payments")
    kind: Literal["online", "counter"]
    channel: str
    channel_label: str = Field(examples=["微信支付"])
    paid_at: str | None
    amount_fen: int
    refunded_fen: int
    invoiced_fen: int
    invoiceable_fen: int


class ItemOut(BaseModel):
    kind: ItemKindName
    label: str
    name: str
    tax_rate: str


class InvoicesOverview(BaseModel):
    enabled: bool = Field(description="物业是否已开通电子发票")
    invoiceable_fen: int = Field(description="可开票金额（分）：已付 − 已退 − 已开/申请中")
    payments: list[PaymentOut]
    items: list[ItemOut]
    default_item: ItemKindName | None
    invoices: list[InvoiceOut]
