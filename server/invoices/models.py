"""E-invoice tables (written by server/invoices/ only).

- `InvoiceItem`: per organisation, what each kind of charge is called on an invoice and its
  goods & services tax classification code (税收分类编码) and VAT rate — configured, never
  hard-coded (electricity 13%, water 9%, property services 6% are usual, not universal).
- `InvoiceProfile`: per organisation, the seller as the platform knows it and the auto-issue
  rule (普通发票 up to an amount go out without a person).
- `Invoice`: one request and its life (requested → queued → issuing → issued | failed;
  requested → rejected; issued → reversing → reversed when a refund touches it). A red
  invoice (红字发票) is an `Invoice` of its own with `reverses` set.
- `InvoicePayment`: which payments an invoice covers and how much of each; what an active
  invoice holds of a payment is not invoiceable again (`service.requests`).
- `InvoiceLine`: one item's amount with its code, rate, net and tax, as sent.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ItemKind(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    PROPERTY = "property"  # 物业服务
    SERVICE = "service"  # other services (rent is not a utility: its own item)
    RENT = "rent"
    OTHER = "other"


ITEM_LABELS = {
    ItemKind.ELECTRICITY: "电费",
    ItemKind.WATER: "水费",
    ItemKind.PROPERTY: "物业服务费",
    ItemKind.SERVICE: "服务费",
    ItemKind.RENT: "租金",
    ItemKind.OTHER: "其他",
}


class InvoiceKind(StrEnum):
    NORMAL = "normal"  # 普通发票 (数电票 普通发票)
    SPECIAL = "special"  # 增值税专用发票


class TitleType(StrEnum):
    PERSONAL = "personal"
    COMPANY = "company"


class InvoiceStatus(StrEnum):
    REQUESTED = "requested"  # waiting for staff review
    QUEUED = "queued"  # approved (or auto-issued): the issuing job sends it
    ISSUING = "issuing"  # accepted by the platform, result pending (poll / callback)
    ISSUED = "issued"
    FAILED = "failed"  # refused by the platform, or out of attempts: a person looks
    REJECTED = "rejected"  # staff said no
    REVERSING = "reversing"  # a red invoice is being issued against it
    REVERSED = "reversed"  # 已冲红


# States in which an invoice holds its payments' money (not invoiceable again).
HOLDING = (
    InvoiceStatus.REQUESTED,
    InvoiceStatus.QUEUED,
    InvoiceStatus.ISSUING,
    InvoiceStatus.ISSUED,
    InvoiceStatus.FAILED,
    InvoiceStatus.REVERSING,
)

STATUS_LABELS = {
    InvoiceStatus.REQUESTED: "待审核",
    InvoiceStatus.QUEUED: "待开具",
    InvoiceStatus.ISSUING: "开具中",
    InvoiceStatus.ISSUED: "已开具",
    InvoiceStatus.FAILED: "开具失败",
    InvoiceStatus.REJECTED: "已驳回",
    InvoiceStatus.REVERSING: "冲红中",
    InvoiceStatus.REVERSED: "已冲红",
}


class PaymentKind(StrEnum):
    ONLINE = "online"  # a recharge order (WeChat Pay, Alipay)
    COUNTER = "counter"  # cash or bank transfer at the counter


class InvoiceItem(Model):
    id = fields.IntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Organisation", related_name="invoice_items", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(ItemKind, max_length=12)
    name = fields.CharField(max_length=60)  # 货物或应税劳务名称, e.g. "*供电*电费"
    tax_code = fields.CharField(max_length=19)  # 税收分类编码 (19 digits)
    tax_rate = fields.DecimalField(max_digits=5, decimal_places=4)  # 0.1300
    unit = fields.CharField(max_length=10, default="")
    updated_by = fields.CharField(max_length=100, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "invoice_item"
        unique_together = (("organisation", "kind"),)


class InvoiceProfile(Model):
    id = fields.IntField(primary_key=True)
    organisation: fields.OneToOneRelation = fields.OneToOneField(
        "models.Organisation", related_name="invoice_profile", on_delete=fields.CASCADE
    )
    seller_name = fields.CharField(max_length=100)
    seller_tax_id = fields.CharField(max_length=20)
    seller_address = fields.CharField(max_length=200, default="")
    seller_phone = fields.CharField(max_length=40, default="")
    drawer = fields.CharField(max_length=20, default="")  # 开票人
    default_item = fields.CharEnumField(ItemKind, max_length=12, default=ItemKind.ELECTRICITY)
    # 普通发票 of at most this amount are issued without review (0: every one reviewed).
    auto_issue_max_fen = fields.BigIntField(default=0)
    updated_by = fields.CharField(max_length=100, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "invoice_profile"


class Invoice(Model):
    id = fields.BigIntField(primary_key=True)
    number = fields.CharField(max_length=32, unique=True)  # ours, the platform's orderNo
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="invoices", on_delete=fields.RESTRICT
    )
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="invoices", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(InvoiceKind, max_length=8)
    title_type = fields.CharEnumField(TitleType, max_length=8)
    buyer_name = fields.CharField(max_length=100)
    buyer_tax_id = fields.CharField(max_length=20, default="")
    buyer_address = fields.CharField(max_length=200, default="")
    buyer_phone = fields.CharField(max_length=40, default="")
    buyer_bank = fields.CharField(max_length=100, default="")
    buyer_bank_account = fields.CharField(max_length=40, default="")
    email = fields.CharField(max_length=100, default="")
    phone = fields.CharField(max_length=20, default="")
    amount_fen = fields.BigIntField()  # tax-inclusive total (negative for a red invoice)
    tax_fen = fields.BigIntField(default=0)
    status = fields.CharEnumField(InvoiceStatus, max_length=10, default=InvoiceStatus.REQUESTED)
    reverses: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Invoice", related_name="red_invoices", on_delete=fields.RESTRICT, null=True
    )
    reversal_reason = fields.CharField(max_length=200, default="")
    requested_by = fields.CharField(max_length=100)  # "tenant:<openid>", "staff:3", "system"
    reviewed_by = fields.CharField(max_length=100, default="")
    review_note = fields.CharField(max_length=200, default="")
    serial = fields.CharField(max_length=40, default="")  # platform's 流水号 (invoiceSerialNum)
    invoice_code = fields.CharField(max_length=20, default="")  # empty for 数电票
    invoice_no = fields.CharField(max_length=20, default="")
    pdf_url = fields.CharField(max_length=500, default="")
    ofd_url = fields.CharField(max_length=500, default="")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=300, default="")
    issued_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "invoice"
        indexes = (("status", "next_attempt_at"), ("site_id", "created_at"))


class InvoicePayment(Model):
    id = fields.BigIntField(primary_key=True)
    invoice: fields.ForeignKeyRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="payments", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(PaymentKind, max_length=8)
    order: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.RechargeOrder", related_name="invoice_parts", on_delete=fields.RESTRICT, null=True
    )
    counter: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.CounterPayment", related_name="invoice_parts", on_delete=fields.RESTRICT,
        null=True,
    )  # fmt: skip
    amount_fen = fields.BigIntField()

    class Meta:
        table = "invoice_payment"


class InvoiceLine(Model):
    id = fields.BigIntField(primary_key=True)
    invoice: fields.ForeignKeyRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="lines", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(ItemKind, max_length=12)
    name = fields.CharField(max_length=60)
    tax_code = fields.CharField(max_length=19)
    tax_rate = fields.DecimalField(max_digits=5, decimal_places=4)
    amount_fen = fields.BigIntField()  # tax-inclusive
    tax_fen = fields.BigIntField()

    class Meta:
        table = "invoice_line"
