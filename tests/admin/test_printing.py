"""Print templates (自定义打印模板): a finance clerk previews the bill template with the site's
real bill, saves their own, prints the bill and downloads it as PDF (its text read back with
pypdf); a template reaching for internals or failing on the bill shows an error, never a
500; the counter receipt prints on the receipt template. The sandbox and the PDF's refusal
to fetch files are checked on the pure module."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from server.ledger import Channel, recharge
from server.payments.service import record_counter_payment
from server.property import printing
from server.property.models import Bill, PrintTemplate
from server.property.printing import PrintKind, TemplateProblem
from server.property.service import items
from server.property.service.items import ItemForm
from server.property.service.run import run_month
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_account, create_organisation, create_room, create_site

TZ = ZoneInfo("Asia/Shanghai")
# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_sandbox_gives_a_template_its_values_and_nothing_else(tmp_path: Path) -> None:
    context = {"bill": {"number": "CJ-1", "total_fen": 123_450}, "lines": [], "site": {}}
    assert printing.render(PrintKind.BILL, "{{ bill.total_fen | money }}", context) == "¥1,234.50"
    assert "&lt;b&gt;" in printing.render(PrintKind.BILL, "{{ x }}", {"x": "<b>"})  # escaped
    refused = {
        "{{ bill.__class__ }}": "不允许访问内部属性",
        "{{ lines.__class__.__mro__ }}": "不允许访问内部属性",
        "{{ range(3) }}": "模板无法渲染",  # no globals
        "{{ 'x' * 100000000 }}": "内容过长",
        "{{ '%999999999s' % 1 }}": "格式宽度",
        "{{ lines.append(1) }}": "模板无法渲染",  # the values are read-only
        "{{ bill.missing }}": "模板无法渲染",  # a typo is an error, not a blank
        "{% for %}": "模板语法错误",
        "{{ bill.number | money }}": "模板无法渲染",
    }
    for source, message in refused.items():
        with pytest.raises(TemplateProblem, match=message):
            printing.render(PrintKind.BILL, source, context)
    # The PDF fetches nothing but data: URLs: a file:// image is left out.
    (tmp_path / "secret.png").write_bytes(PNG)
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    body = f'<img src="{data_url}"><img src="file://{tmp_path}/secret.png"><p>付款 OK</p>'
    pdf = printing.pdf(printing.document(PrintKind.RECEIPT, "t", body))
    [page] = PdfReader(io.BytesIO(pdf)).pages
    assert len(page.images) == 1 and "付款 OK" in page.extract_text()


async def test_a_clerk_edits_previews_prints_and_downloads_the_bill(admin_app: AdminApp) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园")
    account = await create_account(
        await create_room(name="301"), site, tenant_name="星火科技", number="A301",
        opened_at=datetime(2026, 1, 1, tzinfo=TZ),
    )  # fmt: skip
    form = ItemForm("卫生费", "custom", "fixed", "1234.50", "monthly", collection="bill")
    await items.create_item(site.id, form, actor="staff:0")
    await run_month(site.id, "2026-11", preview=False, actor="staff:0", tz=TZ)
    bill = await Bill.get(account_id=account.id)
    await recharge(account.id, Channel.CASH, 10_000, key="r1", actor="staff:0")
    payment, _ = await record_counter_payment(account.id, "cash", 150_000, "SJ-0009",
                                              actor="staff:0", payer_name="李老板")  # fmt: skip
    await create_staff("clerk", StaffRole.FINANCE, org)
    async with signed_in(admin_app, "clerk") as clerk:
        listed = await clerk.get("/admin/bills")  # the list, then the print page's link
        assert listed.status_code == 200 and bill.number in listed.text
        assert (await clerk.get("/admin/arrears")).status_code == 200
        assert f"/admin/bills/{bill.id}/print" in (await clerk.get(f"/admin/bills/{bill.id}")).text
        editor = await clerk.get("/admin/print-templates", params={"site": site.id})
        assert editor.status_code == 200
        assert bill.number in editor.text and "bill.total_fen" in main_of(editor)  # real bill

        token = await clerk.csrf()
        draft = {"csrf_token": token, "site_id": site.id, "kind": "bill"}
        mine = "<h1>{{ org.name }} 缴费通知</h1><p>{{ account.tenant_name }} 应缴 " \
               "{{ bill.owed_fen | money }}（{{ bill.owed_words }}）</p>"  # fmt: skip
        shown = await clerk.post(
            "/admin/print-templates", data=draft | {"source": mine, "action": "preview"}
        )
        assert shown.status_code == 200 and "缴费通知" in shown.text
        assert not await PrintTemplate.exists()  # a preview stores nothing
        bad = await clerk.post(
            "/admin/print-templates", data=draft | {"source": "{{ bill.__init__ }}"}
        )
        assert bad.status_code == 422 and "不允许访问内部属性" in bad.text
        saved = await clerk.post("/admin/print-templates", data=draft | {"source": mine})
        assert saved.status_code == 303

        paper = await clerk.get(f"/admin/bills/{bill.id}/print")
        assert paper.status_code == 200 and "星火科技 应缴 ¥1,234.50" in paper.text
        assert 'id="print-pdf"' in paper.text and "@page { size: A4" in paper.text
        pdf = await clerk.get(f"/admin/bills/{bill.id}/print", params={"format": "pdf"})
        assert pdf.headers["content-type"] == "application/pdf"
        text = pdf_text(pdf.content)
        assert "示范物业集团 缴费通知" in text and "¥1,234.50" in text
        assert "壹仟贰佰叁拾肆元伍角整" in text

        # Stored before a rename, or failing on this bill: the error, not a 500.
        await PrintTemplate.filter(kind="bill").update(source="{{ lines[3].label }}")
        broken = await clerk.get(f"/admin/bills/{bill.id}/print", params={"format": "pdf"})
        assert broken.status_code == 422 and "打印模板出错" in broken.text

        receipt = await clerk.get(f"/admin/finance/receipts/{payment.id}")
        assert "人民币壹仟伍佰元整" in main_of(receipt) and "李老板" in receipt.text
        own = "<p>收据 {{ receipt.reference }} 收到 {{ receipt.payer_name }}</p>"
        done = await clerk.post(
            "/admin/print-templates",
            data=draft | {"kind": "receipt", "source": own, "csrf_token": token},
        )
        assert done.status_code == 303
        receipt = await clerk.get(f"/admin/finance/receipts/{payment.id}")
        assert re.search(r"收据 SJ-0009 收到 李老板", main_of(receipt))
        reset = await clerk.post(
            "/admin/print-templates", data=draft | {"kind": "receipt", "action": "reset"}
        )
        assert reset.status_code == 303
        receipt = await clerk.get(f"/admin/finance/receipts/{payment.id}")
        assert "人民币壹仟伍佰元整" in main_of(receipt)
    assert await PrintTemplate.filter(kind="receipt").count() == 0
