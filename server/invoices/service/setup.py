"""An organisation's invoicing set-up: the seller profile (with the auto-issue rule) and the
tax item of each kind of charge. Written by staff (admin/invoices.py), one row each."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from server.invoices.errors import BadInvoiceRequest
from server.invoices.lines import parse_rate
from server.invoices.models import InvoiceItem, InvoiceProfile, ItemKind
from server.invoices.taxid import InvalidTaxId, check_tax_id

TAX_CODE = re.compile(r"^\d{19}$")


async def set_item(
    organisation_id: int, kind: str, name: str, tax_code: str, rate: str, *, unit: str = "",
    actor: str,
) -> InvoiceItem:  # fmt: skip
    """Create or change the organisation's item of `kind`."""
    try:
        item_kind = ItemKind(kind)
    except ValueError as exc:
        raise BadInvoiceRequest("项目类别不正确", field="kind") from exc
    if not name.strip():
        raise BadInvoiceRequest("请填写开票名称", field="name")
    if not TAX_CODE.match(tax_code.strip()):
        raise BadInvoiceRequest("税收分类编码应为 19 位数字", field="tax_code")
    try:
        tax_rate = parse_rate(rate)
    except (ValueError, InvalidOperation) as exc:
        raise BadInvoiceRequest("税率应为 0 至 100 之间的百分数，如 13%", field="tax_rate") from exc
    item, _ = await InvoiceItem.update_or_create(
        organisation_id=organisation_id, kind=item_kind,
        defaults={"name": name.strip(), "tax_code": tax_code.strip(),
                  "tax_rate": Decimal(tax_rate), "unit": unit.strip(), "updated_by": actor},
    )  # fmt: skip
    return item


async def items(organisation_id: int) -> list[InvoiceItem]:
    return await InvoiceItem.filter(organisation_id=organisation_id).order_by("kind")


async def profile(organisation_id: int) -> InvoiceProfile | None:
    return await InvoiceProfile.get_or_none(organisation_id=organisation_id)


async def set_profile(
    organisation_id: int, *, seller_name: str, seller_tax_id: str, seller_address: str = "",
    seller_phone: str = "", drawer: str = "", default_item: str = "electricity",
    auto_issue_max_fen: int = 0, actor: str,
) -> InvoiceProfile:  # fmt: skip
    """Create or change the seller profile and the auto-issue rule."""
    if not seller_name.strip():
        raise BadInvoiceRequest("请填写销售方名称", field="seller_name")
    try:
        tax_id = check_tax_id(seller_tax_id)
    except InvalidTaxId as exc:
        raise BadInvoiceRequest(exc.message, field="seller_tax_id") from exc
    try:
        item_kind = ItemKind(default_item)
    except ValueError as exc:
        raise BadInvoiceRequest("默认开票项目不正确", field="default_item") from exc
    if auto_issue_max_fen < 0:
        raise BadInvoiceRequest("自动开票上限不能为负", field="auto_issue_max_fen")
    row, _ = await InvoiceProfile.update_or_create(
        organisation_id=organisation_id,
        defaults={
            "seller_name": seller_name.strip(), "seller_tax_id": tax_id,
            "seller_address": seller_address.strip(), "seller_phone": seller_phone.strip(),
            "drawer": drawer.strip(), "default_item": item_kind,
            "auto_issue_max_fen": auto_issue_max_fen, "updated_by": actor,
        },
    )  # fmt: skip
    return row
