"""What is invoiceable and a tenant's request: never more than was paid and not yet
invoiced or refunded, decided under row locks."""

from __future__ import annotations

import asyncio

import pytest

from server.invoices.errors import AboveInvoiceable, BadInvoiceRequest, InvoicingNotConfigured
from server.invoices.models import Invoice, InvoicePayment, InvoiceStatus, ItemKind
from server.invoices.service.buyer import checked_buyer
from server.invoices.service.requests import LineAsk, invoiceable, request_invoice
from server.payments.service import Payments, request_refund
from tests.factories import create_account, create_organisation, create_site
from tests.invoices.fixtures import company, paid_counter, paid_online, set_up_invoicing
from tests.payments.service_fixtures import pay_settings


async def _account(**kw: int):  # type: ignore[no-untyped-def]
    org = await create_organisation()
    await set_up_invoicing(org.id, **kw)
    return await create_account(site=await create_site(org))


async def test_request_more_than_paid_is_refused_with_the_amount(db: None) -> None:
    account = await _account()
    order = await paid_online(account, 10_000)
    with pytest.raises(AboveInvoiceable) as refused:
        await request_invoice(account.id, company(), [order], actor="tenant:o", amount_fen=10_001)
    assert refused.value.message.startswith("可开票金额为 ¥100.00，申请的 ¥100.01 超出")
    assert await Invoice.all().count() == 0
    invoice = await request_invoice(account.id, company(), [order], actor="tenant:o")
    assert (invoice.amount_fen, invoice.tax_fen, invoice.status) == (
        10_000, 1_150, InvoiceStatus.REQUESTED,  # 100 × 0.13 / 1.13 = 11.504… → ¥11.50
    )  # fmt: skip
    with pytest.raises(AboveInvoiceable, match=r"可开票金额为 ¥0\.00"):
        await request_invoice(account.id, company(), [order], actor="tenant:o")


async def test_two_concurrent_requests_for_the_same_payments_one_passes(db: None) -> None:
    account = await _account()
    refs = [await paid_online(account, 6_000, days_ago=2), await paid_counter(account, 4_000)]
    results = await asyncio.gather(
        *[request_invoice(account.id, company(), refs, actor="tenant:o") for _ in range(2)],
        return_exceptions=True,
    )
    passed = [r for r in results if isinstance(r, Invoice)]
    refused = [r for r in results if isinstance(r, AboveInvoiceable)]
    assert (len(passed), len(refused)) == (1, 1), results
    assert passed[0].amount_fen == 10_000
    parts = await InvoicePayment.all().order_by("id").values_list("kind", "amount_fen")
    assert parts == [("online", 6_000), ("counter", 4_000)]  # the older payment first
    assert (await invoiceable(account.id)).total_fen == 0


async def test_refunded_money_is_not_invoiceable(db: None) -> None:
    account = await _account()
    order = await paid_online(account, 10_000)
    await request_refund(
        Payments(pay_settings(refund_approval_above_fen=0)),
        order,
        3_000,
        reason="多充",
        actor="staff:1",
    )
    open_ = await invoiceable(account.id)
    assert [(p.ref, p.open_fen) for p in open_.payments] == [(order, 7_000)]
    with pytest.raises(AboveInvoiceable, match=r"可开票金额为 ¥70\.00"):
        await request_invoice(account.id, company(), [order], actor="tenant:o", amount_fen=8_000)
    partial = await request_invoice(
        account.id, company(), [order], actor="tenant:o", amount_fen=5_000,
        lines=[LineAsk(ItemKind.ELECTRICITY, 3_000), LineAsk(ItemKind.WATER, 2_000)],
    )  # fmt: skip
    lines = await partial.lines.all().order_by("id").values_list("kind", "tax_fen")
    assert lines == [("electricity", 345), ("water", 165)]  # 30×13/113 = 3.45; 20×9/109 = 1.65
    assert (await invoiceable(account.id)).total_fen == 2_000


async def test_auto_issue_rule_and_missing_configuration(db: None) -> None:
    account = await _account(auto_issue_max_fen=5_000)
    small, big = await paid_online(account, 5_000), await paid_online(account, 9_000)
    assert (await request_invoice(account.id, company(), [small], actor="t")).status == "queued"
    assert (await request_invoice(account.id, company(), [big], actor="t")).status == "requested"
    bare = await create_account()  # an organisation that never set invoicing up
    with pytest.raises(InvoicingNotConfigured, match="尚未开通电子发票"):
        await request_invoice(bare.id, company(), [await paid_online(bare, 100)], actor="t")
    with pytest.raises(BadInvoiceRequest, match="不存在或不可开票"):
        await request_invoice(account.id, company(), ["R-NOT-MINE"], actor="t")


def test_special_invoice_needs_the_company_bank_details() -> None:
    with pytest.raises(BadInvoiceRequest, match="单位地址") as missing:
        company("special")
    assert missing.value.context == {"field": "buyer_address"}
    full = company(
        "special", address="深圳市南山区 1 号", phone="0755-1", bank="招商银行南山支行",
        bank_account="755900000000001",
    )  # fmt: skip
    assert full.kind == "special"
    with pytest.raises(BadInvoiceRequest, match="只能开给单位"):
        checked_buyer("special", "personal", "张三", email="a@b.cn")
    with pytest.raises(BadInvoiceRequest, match="校验位"):
        company(tax_id="91110108MA01KPGK0M")
    with pytest.raises(BadInvoiceRequest, match="邮箱或手机号"):
        checked_buyer("normal", "personal", "张三")
    assert checked_buyer("normal", "personal", "张三", mobile="13800001111").tax_id == ""
