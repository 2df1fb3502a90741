"""Finance pages (issue #15): the order overview lists, filters and totals what the ledger
moved on the scope's wallets, and its Excel export (streamed) opens with openpyxl with money
as numbers formatted ¥0.00."""

from __future__ import annotations

import io
import re
from typing import Any

from openpyxl import load_workbook

from server.core.settings import Settings
from server.finance.service.orders import OrderFilter, chunks, totals
from server.ledger import service as ledger
from server.ledger.posting import Channel, ChargeType
from server.payments.config import PaymentSettings
from server.payments.service import record_counter_payment, request_adjustment
from server.payments.service.counter_refunds import request_counter_refund
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_account, create_organisation, create_site


async def books() -> dict[str, Any]:
    """Organisation A (two sites) with every kind of wallet movement; B with a recharge."""
    a, b = await create_organisation(name="甲物业"), await create_organisation(name="乙物业")
    north, south, west = (
        await create_site(a, name="北园"), await create_site(a, name="南园"),
        await create_site(b, name="西园"),
    )  # fmt: skip
    a1 = await create_account(site=north, number="N001", tenant_name="北园便利店")
    a2 = await create_account(site=south, number="S001", tenant_name="南园茶饮")
    b1 = await create_account(site=west, number="W001", tenant_name="西园书店")
    await create_staff("boss", StaffRole.ORG_ADMIN, a)
    await record_counter_payment(a1.id, "cash", 30_000, "RC0001", actor="staff:1")
    await ledger.recharge(a2.id, Channel.WECHAT, 5_000, key="pay:wechat:T1", actor="tenant:o1")
    await ledger.charge(a1.id, ChargeType.ELECTRICITY, 1_234, key="usage:1:t1", actor="system")
    await ledger.charge(a1.id, ChargeType.RENT, 500, key="fee:rent:1", actor="system")
    await request_adjustment(PaymentSettings(), a2.id, 200, reason="抄表差错", actor="staff:1")
    await request_counter_refund(
        PaymentSettings(), a1.id, "cash", 1_000, reason="多缴退回", actor="staff:1",
        request_key="t-refund-1",
    )  # fmt: skip
    await ledger.recharge(b1.id, Channel.CASH, 99_900, key="counter:cash:B1", actor="staff:9")
    return {"north": north.id, "west": west.id, "a1": a1.id, "a2": a2.id, "b1": b1.id}


async def test_the_overview_adds_up_to_the_ledger_filters_and_exports(
    admin_app: AdminApp,
) -> None:
    ids = await books()
    tz = admin_app.app.ctx.settings.tz
    every = await totals([ids["north"], ids["north"] + 1], OrderFilter(), tz)
    # The wallets' balances are the sum of their legs: the overview's net is exactly theirs.
    balances = [await ledger.balance_of(f"wallet:{ids[k]}") for k in ("a1", "a2")]
    assert every.net_fen == sum(balances) == 30_000 + 5_000 - 1_234 - 500 + 200 - 1_000
    assert every.count == 6 and every.in_fen == 35_200 and every.out_fen == 2_734
    assert every.by_type["usage"] == (1, -1_234) and every.by_type["fee"] == (1, -500)
    async with signed_in(admin_app, "boss") as boss:
        page = main_of(await boss.get("/admin/finance"))
        for shown in ("N001", "S001", "现金", "微信支付", "电费", "租金", "抄表差错", "已退款"):
            assert shown in page, shown
        assert "W001" not in page and "西园书店" not in page and "999.00" not in page
        cash = main_of(await boss.get("/admin/finance", params={"channel": "cash"}))
        assert "RC0001" in cash and "S001" not in cash
        north = main_of(await boss.get("/admin/finance", params={"site": ids["north"]}))
        assert "N001" in north and "S001" not in north
        refunds = main_of(await boss.get("/admin/finance", params={"status": "refunded"}))
        assert "现金退款" in refunds and "RC0001" not in refunds
        by_name = main_of(await boss.get("/admin/finance", params={"account": "茶饮"}))
        assert "S001" in by_name and "N001" not in by_name
        assert (await boss.get("/admin/finance", params={"site": ids["west"]})).status_code == 404
        export = await boss.get("/admin/finance", params={"format": "xlsx"})
    assert export.status_code == 200
    assert "spreadsheetml" in export.headers["content-type"]
    sheet = load_workbook(io.BytesIO(export.content))["订单总览"]
    rows = list(sheet.iter_rows(min_row=2))
    header = [c.value for c in sheet[1]]
    assert header[:9] == [
        "时间",
        "园区",
        "账户号",
        "租户",
        "类型",
        "项目",
        "渠道",
        "状态",
        "金额（元）",
    ]
    money = [r[8] for r in rows]
    assert len(rows) == 6 and all(isinstance(c.value, (int, float)) for c in money)
    assert all(c.number_format == '"¥"#,##0.00' for c in money)
    assert sum(round(c.value * 100) for c in money) == every.net_fen
    assert {r[2].value for r in rows} == {"N001", "S001"}


async def test_the_export_walks_the_filter_in_chunks_without_losing_a_row(
    db: None, settings: Settings
) -> None:
    ids = await books()
    wanted, tz = OrderFilter(), settings.tz
    got = [r async for part in chunks([ids["north"]], wanted, tz, chunk=2) for r in part]
    assert len(got) == 4 and len({r.id for r in got}) == 4
    assert [r.at for r in got] == sorted((r.at for r in got), reverse=True)


async def test_the_counter_recharges_once_prints_a_receipt_and_needs_a_second_person(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation(name="丙物业")
    site = await create_site(org, name="东园")
    account = await create_account(site=site, number="E001", tenant_name="东园花店")
    await create_staff("clerk", StaffRole.FINANCE, org)
    await create_staff("chief", StaffRole.FINANCE, org)
    pay = {"account": "E001", "channel": "cash", "amount": "1,234.50", "reference": "SJ-0001"}
    async with signed_in(admin_app, "clerk") as clerk:
        token = await clerk.csrf()
        done = await clerk.post("/admin/finance/counter", data=pay | {"csrf_token": token})
        assert done.status_code == 303 and "/admin/finance/receipts/" in done.headers["location"]
        again = await clerk.post("/admin/finance/counter", data=pay | {"csrf_token": token})
        assert again.headers["location"] == done.headers["location"]  # the same payment
        paper = main_of(await clerk.get(done.headers["location"]))
        assert (
            "人民币壹仟贰佰叁拾肆元伍角整" in paper and "SJ-0001" in paper and "东园花店" in paper
        )
        other = pay | {"reference": "SJ-0001", "amount": "1", "csrf_token": token}
        refused = await clerk.post("/admin/finance/counter", data=other)
        assert refused.status_code == 409 and "已登记" in refused.text
        # A refund above ¥500 and an adjustment above ¥100 wait for a second person.
        page = await clerk.get("/admin/finance/counter")
        key = re.search(r'name="request_key" value="([^"]+)"', page.text)[1]  # type: ignore[index]
        refund = {"account": "E001", "channel": "cash", "amount": "600", "reason": "多缴退回",
                  "request_key": key, "csrf_token": token}  # fmt: skip
        asked = await clerk.post("/admin/finance/refund", data=refund)
        assert asked.headers["location"] == "/admin/refunds"
        adjust = {"account": "E001", "amount": "-150", "reason": "抄表差错", "csrf_token": token}
        assert (
            "adjust-pending"
            in (await clerk.post("/admin/finance/adjustments", data=adjust)).headers["location"]
        )
        pending = main_of(await clerk.get("/admin/finance/counter"))
        adjustment_id = re.search(r"/admin/finance/adjustments/(\d+)/approve", pending)[1]  # type: ignore[index]
        own = await clerk.post(
            f"/admin/finance/adjustments/{adjustment_id}/approve", data={"csrf_token": token}
        )
        assert own.status_code == 403 and "审批人不能是申请人" in own.text
    assert await ledger.balance_of(f"wallet:{account.id}") == 123_450 - 60_000
    async with signed_in(admin_app, "chief") as chief:
        token = await chief.csrf()
        ok = await chief.post(
            f"/admin/finance/adjustments/{adjustment_id}/approve", data={"csrf_token": token}
        )
        assert ok.status_code == 303
        approvals = main_of(await chief.get("/admin/refunds"))
        refund_id = re.search(r"/admin/refunds/counter/(\d+)/approve", approvals)[1]  # type: ignore[index]
        paid = await chief.post(
            f"/admin/refunds/counter/{refund_id}/approve", data={"csrf_token": token}
        )
        assert paid.status_code == 303
        overview = main_of(await chief.get("/admin/finance", params={"account": "E001"}))
    assert await ledger.balance_of(f"wallet:{account.id}") == 123_450 - 60_000 - 15_000
    assert "已退款" in overview and "抄表差错" in overview and "SJ-0001" in overview
