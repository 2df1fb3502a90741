"""The tenant's bills through the API: a fees bill listed as owed, its lines, paid from the
wallet once an online recharge arrived (refused while the wallet is empty), and the month's
real-time bill adding up."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from server.ledger import Channel, balance_of, recharge
from server.property.service import items as fee_items
from server.property.service.items import ItemForm
from server.property.service.run import run_month
from tests.accounts.tenant_fixtures import tenant_of
from tests.factories import create_account
from tests.payments.service_fixtures import PayApp, pay_app_fixture  # noqa: F401


async def test_a_tenant_sees_pays_and_reads_the_month(pay_app: PayApp) -> None:
    account = await create_account()
    site_id = account.site_id  # type: ignore[attr-defined]
    form = ItemForm("卫生费", "custom", "fixed", "45.60", "monthly", collection="bill")
    await fee_items.create_item(site_id, form, actor="staff:0")
    await run_month(
        site_id, "2026-03", preview=False, actor="staff:0", tz=ZoneInfo("Asia/Shanghai")
    )
    tenant = await tenant_of(pay_app, account)
    base = f"/api/v1/accounts/{account.id}"

    listed = (await tenant.get(f"{base}/bills")).json()
    assert listed["owed_fen"] == 4_560 and len(listed["items"]) == 1
    bill_id = listed["items"][0]["id"]
    detail = (await tenant.get(f"{base}/bills/{bill_id}")).json()
    assert detail["lines"][0]["label"].startswith("卫生费") and detail["status"] == "issued"
    assert (await tenant.post(f"{base}/bills/{bill_id}/pay")).status_code == 409  # empty wallet

    await recharge(account.id, Channel.WECHAT, 10_000, key="online", actor="tenant:o")
    paid = await tenant.post(f"{base}/bills/{bill_id}/pay")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert await balance_of(f"receivable:{account.id}") == 0
    assert (await tenant.post(f"{base}/bills/{bill_id}/pay")).status_code == 409  # paid

    month = (await tenant.get(f"{base}/statement")).json()
    total = month["opening_fen"] + sum(ln["amount_fen"] for ln in month["lines"])
    assert total == month["closing_fen"] == 10_000 - 4_560
    assert (await tenant.get(f"{base}/statement", params={"month": "2026-13"})).status_code == 422
