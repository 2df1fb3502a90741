"""The 发票 pages over the real app (admin/invoices.py): a request listed and filtered, approved
by finance, issued by the worker's round on the fake platform, exported for its month (the
Excel file opened: money as numbers); a failed one sent again; a viewer sees no form."""

from __future__ import annotations

from datetime import datetime
from io import BytesIO
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from server.invoices.models import Invoice, InvoiceStatus
from server.invoices.sandbox import FakeNuonuo
from server.invoices.service.issuing import issue_round
from server.invoices.service.requests import request_invoice
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_account, create_organisation, create_site
from tests.invoices.fixtures import company, paid_counter, set_up_invoicing


async def test_review_issue_export_and_retry_on_the_pages(admin_app: AdminApp) -> None:
    org = await create_organisation()
    await set_up_invoicing(org.id)
    site = await create_site(org, name="科技园")
    account = await create_account(site=site, number="H000101")
    asked = await request_invoice(
        account.id, company(), [await paid_counter(account, 12_345)], actor="tenant:o"
    )
    await create_staff("fin", StaffRole.FINANCE, org)
    await create_staff("viewer", StaffRole.VIEWER, org)
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    async with signed_in(admin_app, "fin") as b, FakeNuonuo(pending_polls=0) as fake:
        listed = main_of(await b.get("/admin/invoices", params={"status": "requested"}))
        assert "深圳市甲乙科技有限公司" in listed and "¥123.45" in listed and "待审核" in listed
        assert "甲乙" not in main_of(await b.get("/admin/invoices", params={"status": "issued"}))
        page = await b.get(f"/admin/invoices/{asked.id}")
        assert "审核通过并开具" in page.text and "1100101000000000000" in page.text
        answer = await b.post(
            f"/admin/invoices/{asked.id}/approve", data={"csrf_token": await b.csrf()}
        )
        assert answer.status_code == 303
        again = await b.post(
            f"/admin/invoices/{asked.id}/approve", data={"csrf_token": await b.csrf()}
        )
        assert again.status_code == 409 and "不能审核通过" in again.text
        platform = fake.client()
        await issue_round(platform, now=datetime.now(ZoneInfo("UTC")))
        await issue_round(platform, now=datetime.now(ZoneInfo("UTC")).replace(year=2100))
        issued = await Invoice.get(id=asked.id)
        assert issued.status is InvoiceStatus.ISSUED
        page = main_of(await b.get(f"/admin/invoices/{asked.id}"))
        assert issued.invoice_no in page and "PDF" in page and "已开具" in page

        export = await b.get("/admin/invoices", params={"month": month, "format": "xlsx"})
        sheet = load_workbook(BytesIO(export.content)).active
        rows = list(sheet.iter_rows(min_row=2, values_only=True))
        assert [(r[3], r[4], r[9], r[10], r[11]) for r in rows] == [
            ("H000101", issued.invoice_no, 123.45, 14.2, "已开具"),
        ]  # fmt: skip
        assert sheet.cell(row=2, column=10).number_format.startswith('"¥"')
        none = await b.get("/admin/invoices", params={"month": "2020-01", "format": "xlsx"})
        assert load_workbook(BytesIO(none.content)).active.max_row == 1

        # a failed invoice is sent again from its page
        await Invoice.filter(id=asked.id).update(status=InvoiceStatus.FAILED, last_error="x")
        answer = await b.post(
            f"/admin/invoices/{asked.id}/retry", data={"csrf_token": await b.csrf()}
        )
        assert answer.status_code == 303
        assert (await Invoice.get(id=asked.id)).status is InvoiceStatus.QUEUED
        await platform.aclose()
    async with signed_in(admin_app, "viewer") as v:
        page = main_of(await v.get(f"/admin/invoices/{asked.id}"))
        assert "H000101" in page and 'method="post"' not in page
