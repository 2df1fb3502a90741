"""Finance pages (issue #15): the order overview lists, filters and totals what the ledger
moved on the scope's wallets, and its Excel export (streamed) opens with openpyxl with money
as numbers formatted ¥0.00."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from openpyxl import load_workbook

from server.audit.models import OperationLog
from server.core.settings import Settings
from server.finance.service.income import Grain, income
from server.finance.service.orders import OrderFilter, chunks, totals
from server.ledger import service as ledger
from server.ledger.posting import Channel, ChargeType
from server.metering.models import ReconciliationItem
from server.payments.config import PaymentSettings
from server.payments.models import (
    OrderStatus,
    Quarantine,
    QuarantineReason,
    RechargeOrder,
    ReconciliationDifference,
    ReconciliationReport,
)
from server.payments.providers.base import Channel as PayChannel
from server.payments.service import quarantine, record_counter_payment, request_adjustment
from server.payments.service.counter_refunds import request_counter_refund
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_account, create_meter, create_organisation, create_site


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


async def test_income_by_channel_and_composition_adds_up_to_the_ledger(
    admin_app: AdminApp,
) -> None:
    ids = await books()
    tz = admin_app.app.ctx.settings.tz
    today = datetime.now(tz).date()
    every_site = [ids["north"], ids["north"] + 1, ids["west"]]
    found = await income(every_site, today - timedelta(days=3), today, Grain.DAY, tz)
    for channel in ("wechat", "alipay", "cash", "bank"):
        assert found.channel_totals[channel] == -await ledger.balance_of(f"clearing:{channel}")
    for item in ("electricity", "rent"):
        assert found.item_totals[item] == await ledger.balance_of(f"revenue:{item}")
    assert found.channel_totals["cash"] == 30_000 - 1_000 + 99_900  # the refund left the till
    assert [p.label for p in found.periods][-1] == today.isoformat() and len(found.periods) == 4
    assert found.periods[-1].money_in_fen == found.money_in_fen
    async with signed_in(admin_app, "boss") as boss:
        page = main_of(await boss.get("/admin/finance/income"))
        assert "¥340.00" in page and "¥17.34" in page  # A's money in; its revenue
        year = main_of(await boss.get("/admin/finance/income", params={"grain": "year"}))
        assert str(today.year) in year and "¥340.00" in year
        export = await boss.get("/admin/finance/income", params={"format": "xlsx"})
        long = await boss.get("/admin/finance/income", params={"since": "2000-01-01"})
    book = load_workbook(io.BytesIO(export.content))
    last = list(book["按渠道"].iter_rows(values_only=True))[-1]
    assert last[0] == "合计" and last[-1] == 340
    assert long.status_code == 422 and "区间太长" in long.text


async def test_the_days_three_way_reconciliation_lists_every_mismatch_and_resolves(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation(name="丁物业")
    site = await create_site(org, name="中园")
    other = await create_site(await create_organisation(name="戊物业"), name="外园")
    account = await create_account(site=site, number="M001", tenant_name="中园超市")
    stranger = await create_account(site=other, number="X001", tenant_name="外园商户")
    meter = await create_meter(account, address="000000123456")
    await create_staff("auditor", StaffRole.FINANCE, org)
    tz = admin_app.app.ctx.settings.tz
    now = datetime.now(UTC)
    day = now.astimezone(tz).date()
    for no, acc, credited in (
        ("W1", account, True),
        ("W2", account, False),
        ("W3", stranger, True),
    ):
        await RechargeOrder.create(
            out_trade_no=no, account_id=acc.id, channel=PayChannel.WECHAT, amount_fen=2_000,
            status=OrderStatus.PAID, expires_at=now, paid_at=now, created_by="tenant:o1",
        )  # fmt: skip
        if credited:
            await ledger.recharge(acc.id, Channel.WECHAT, 2_000, key=f"pay:wechat:{no}",
                                  actor="system:payments")  # fmt: skip
    await record_counter_payment(account.id, "bank", 8_800, "YH-77", actor="staff:1")
    report = await ReconciliationReport.create(
        channel=PayChannel.WECHAT, bill_date=day, matched=1, missing=1, extra=0,
        amount_mismatches=0, duplicates=0, ignored_rows=0, clean=False,
    )  # fmt: skip
    for number in ("W1", "W3"):  # W3 belongs to another organisation: never shown here
        await ReconciliationDifference.create(
            report=report, kind="amount", row_type="payment", number=number, bill_fen=1_999,
            ours_fen=2_000,
        )  # fmt: skip
    await ReconciliationItem.create(
        meter=meter, day=day, kind="count_mismatch", meter_count=5, platform_count=4,
        meter_fen=1_000, platform_fen=1_000, detail="表内购电次数与平台确认次数不一致",
    )  # fmt: skip
    held = await quarantine(PayChannel.WECHAT, QuarantineReason.AMOUNT_MISMATCH, "W2",
                            out_trade_no="W2", expected_fen=2_000, notified_fen=200)  # fmt: skip
    async with signed_in(admin_app, "auditor") as auditor:
        page = main_of(await auditor.get("/admin/finance/reconciliation", params={"day": day}))
        assert "有差异待处理" in page and "金额不符" in page and "¥19.99" in page
        assert "订单已付款但账本无入账" in page and "W2" in page  # ② orders ↔ ledger
        assert "购电次数不一致" in page and "000000123456" in page  # ③ ledger ↔ meters
        assert "通知金额与订单金额不符" in page  # ④ quarantined, to resolve
        assert "1 笔 ¥88.00" in page  # the bank transfer, order and credit agree
        assert "W3" not in page and "外园" not in page
        token = await auditor.csrf()
        empty = await auditor.post(
            "/admin/finance/quarantine/resolve",
            data={"quarantine": held.id, "resolution": "", "csrf_token": token},
        )
        assert empty.status_code == 422
        done = await auditor.post(
            "/admin/finance/quarantine/resolve",
            data={"quarantine": held.id, "resolution": "已联系微信支付核实", "day": str(day),
                  "csrf_token": token},
        )  # fmt: skip
        assert done.status_code == 303
        after = main_of(await auditor.get(done.headers["location"]))
        assert "异常已处理" in after and "通知金额与订单金额不符" not in after
        ran = await auditor.post(
            "/admin/finance/reconciliation/run", data={"day": str(day), "csrf_token": token}
        )
        assert ran.status_code == 422 and "已结束的日期" in ran.text
        yesterday = str(day - timedelta(days=1))
        ran = await auditor.post(
            "/admin/finance/reconciliation/run", data={"day": yesterday, "csrf_token": token}
        )
        assert ran.status_code == 303 and f"day={yesterday}" in ran.headers["location"]
    assert await OperationLog.exists(action="reconciliation.run", target_id=yesterday)
    assert (await Quarantine.get(id=held.id)).resolved_by.startswith("staff:")
