"""The tenant's invoice API over the real app: the invoice page, a request refused in
Chinese (tax id, too much), a request that passes and shows up with its state."""

from __future__ import annotations

from tests.accounts.tenant_fixtures import tenant_of
from tests.factories import create_account, create_organisation, create_site
from tests.invoices.fixtures import paid_online, set_up_invoicing
from tests.payments.service_fixtures import PayApp, pay_app_fixture  # noqa: F401


async def test_tenant_requests_an_invoice_and_sees_its_state(pay_app: PayApp) -> None:
    org = await create_organisation()
    await set_up_invoicing(org.id)
    account = await create_account(site=await create_site(org))
    order = await paid_online(account, 20_000)
    tenant = await tenant_of(pay_app, account)
    path = f"/api/v1/accounts/{account.id}/invoices"

    page = (await tenant.get(path)).json()
    assert page["enabled"] and page["invoiceable_fen"] == 20_000
    assert [p["ref"] for p in page["payments"]] == [order]
    assert {i["kind"] for i in page["items"]} == {"electricity", "water"}

    body = {
        "kind": "normal", "title_type": "company", "buyer_name": "深圳市甲乙科技有限公司",
        "buyer_tax_id": "91110108MA01KPGK0M", "email": "cw@example.com", "payments": [order],
    }  # fmt: skip
    bad = await tenant.post(path, json=body)
    assert bad.status_code == 422 and bad.json()["detail"] == {"field": "buyer_tax_id"}
    assert "校验位" in bad.json()["message"]
    body["buyer_tax_id"] = "91110108MA01KPGK0L"
    too_much = await tenant.post(path, json=body | {"amount_fen": 20_001})
    assert too_much.status_code == 409, too_much.text
    assert too_much.json()["message"].startswith("可开票金额为 ¥200.00，申请的 ¥200.01 超出")

    made = await tenant.post(path, json=body | {"lines": [
        {"item": "electricity", "amount_fen": 15_000}, {"item": "water", "amount_fen": 5_000},
    ]})  # fmt: skip
    assert made.status_code == 201, made.text
    invoice = made.json()
    assert (invoice["status"], invoice["status_label"], invoice["amount_fen"]) == (
        "requested", "待审核", 20_000,
    )  # fmt: skip
    assert [line["tax_fen"] for line in invoice["lines"]] == [1_726, 413]
    page = (await tenant.get(path)).json()
    assert page["invoiceable_fen"] == 0 and page["payments"] == []
    assert [i["number"] for i in page["invoices"]] == [invoice["number"]]
