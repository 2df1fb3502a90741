"""The buyer on an invoice, checked before anything is written: title, tax id, the extra
fields a 增值税专用发票 needs, and where the invoice is delivered."""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.invoices.errors import BadInvoiceRequest
from server.invoices.models import InvoiceKind, TitleType
from server.invoices.taxid import InvalidTaxId, check_tax_id

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MOBILE = re.compile(r"^1\d{10}$")


@dataclass(frozen=True, slots=True)
class Buyer:
    kind: InvoiceKind
    title_type: TitleType
    name: str
    tax_id: str = ""
    address: str = ""
    phone: str = ""
    bank: str = ""
    bank_account: str = ""
    email: str = ""
    mobile: str = ""  # where the SMS goes


def checked_buyer(
    kind: str,
    title_type: str,
    name: str,
    *,
    tax_id: str = "",
    address: str = "",
    phone: str = "",
    bank: str = "",
    bank_account: str = "",
    email: str = "",
    mobile: str = "",
) -> Buyer:
    """The buyer, or `BadInvoiceRequest` naming the field and what is wrong with it."""
    try:
        inv_kind, title = InvoiceKind(kind), TitleType(title_type)
    except ValueError as exc:
        raise BadInvoiceRequest("发票类型或抬头类型不正确", field="kind") from exc
    name = name.strip()
    if not name:
        raise BadInvoiceRequest("请填写发票抬头", field="buyer_name")
    if title is TitleType.COMPANY and not tax_id.strip():
        raise BadInvoiceRequest("单位抬头须填写税号", field="buyer_tax_id")
    if inv_kind is InvoiceKind.SPECIAL:
        if title is not TitleType.COMPANY:
            raise BadInvoiceRequest("增值税专用发票只能开给单位", field="title_type")
        for field, value, label in (
            ("buyer_address", address, "单位地址"),
            ("buyer_phone", phone, "单位电话"),
            ("buyer_bank", bank, "开户银行"),
            ("buyer_bank_account", bank_account, "银行账号"),
        ):
            if not value.strip():
                raise BadInvoiceRequest(f"增值税专用发票须填写{label}", field=field)
    normalised = ""
    if tax_id.strip():
        try:
            normalised = check_tax_id(tax_id)
        except InvalidTaxId as exc:
            raise BadInvoiceRequest(exc.message, field="buyer_tax_id") from exc
    email, mobile = email.strip(), mobile.strip()
    if email and not EMAIL.match(email):
        raise BadInvoiceRequest("邮箱格式不正确", field="email")
    if mobile and not MOBILE.match(mobile):
        raise BadInvoiceRequest("手机号应为 11 位数字", field="phone")
    if not email and not mobile:
        raise BadInvoiceRequest("请至少填写邮箱或手机号，用于接收电子发票", field="email")
    return Buyer(
        inv_kind, title, name, normalised, address.strip(), phone.strip(), bank.strip(),
        bank_account.strip(), email, mobile,
    )  # fmt: skip
