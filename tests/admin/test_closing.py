"""The 销户 / 过户 pages over the real app: the room panel, a close whose counter refund waits
for a second person on /admin/refunds, the settlement statement, a transfer with the balance
carried over and a fresh binding code; roles without the action get 403 and change nothing,
the requester cannot approve their own refund."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from server.accounts.models import Account, AccountStatus
from server.billing.pipeline import process_readings
from server.metering.models import Meter
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.payments.models import CounterRefund, CounterRefundStatus
from server.payments.service import record_counter_payment
from server.staff.models import StaffRole
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.admin.conftest import AdminApp, Browser, create_staff, signed_in
from tests.factories import create_account, create_meter, create_organisation, create_site

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


async def a_tenant(cash_fen: int) -> tuple[Account, Meter]:
    """An account on a flat tariff, one meter read three hours ago, `cash_fen` paid in."""
    org = await create_organisation()
    account = await create_account(site=await create_site(org), tenant_name="退租商户")
    plan = await create_plan(
        account.site_id, "电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "0.6583"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:0",
    )  # fmt: skip
    await assign(account.id, plan.id)
    meter = await create_meter(account, rated_kw=Decimal(10), online=True)
    await process_readings([IncomingReading(meter.id, Reading(T0, Decimal("1200.00")))], now=T0)
    await record_counter_payment(account.id, "cash", cash_fen, f"RC{account.id}", actor="staff:0")
    return account, meter


async def _post(b: Browser, url: str, **form: str):  # type: ignore[no-untyped-def]
    return await b.post(url, data={"csrf_token": await b.csrf(), **form})


async def test_close_with_a_counter_refund_a_second_person_approves(admin_app: AdminApp) -> None:
    account, meter = await a_tenant(80_000)  # above the 500 元 approval threshold
    org = await (await account.site).organisation  # type: ignore[attr-defined]
    await create_staff("clerk", StaffRole.SITE_ADMIN, org)
    await create_staff("cashier", StaffRole.FINANCE, org)
    await create_staff("watcher", StaffRole.VIEWER, org)
    room = account.room_id  # type: ignore[attr-defined]
    async with signed_in(admin_app, "watcher") as viewer:
        panel = await viewer.get(f"/admin/rooms/{room}/closing")
        assert panel.status_code == 200 and "无权销户" in panel.text
        assert (await viewer.get(f"/admin/accounts/{account.id}/close")).status_code == 403
        refused = await _post(viewer, f"/admin/accounts/{account.id}/close")
        assert refused.status_code == 403
    async with signed_in(admin_app, "clerk") as clerk:
        room_page = await clerk.get(f"/admin/rooms/{room}")
        assert f'hx-get="/admin/rooms/{room}/closing"' in room_page.text
        panel = await clerk.get(f"/admin/rooms/{room}/closing")
        assert f"/admin/accounts/{account.id}/close" in panel.text
        form = await clerk.get(f"/admin/accounts/{account.id}/close")
        assert form.status_code == 200 and f"reading_{meter.id}" in form.text
        bad = await _post(clerk, f"/admin/accounts/{account.id}/close",
                          **{f"reading_{meter.id}": "abc"})  # fmt: skip
        assert bad.status_code == 422 and "不是数字" in bad.text
        bank = await _post(clerk, f"/admin/accounts/{account.id}/close", refund_channel="bank")
        assert bank.status_code == 422 and "收款账号" in bank.text
        done = await _post(clerk, f"/admin/accounts/{account.id}/close",
                           **{f"reading_{meter.id}": "1210.00", "payee_name": "张三"})  # fmt: skip
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/admin/accounts/{account.id}/statement"
        statement = await clerk.get(done.headers["location"])
        assert "销户中" in statement.text and "1210.00" in statement.text
        assert "¥793.42" in statement.text  # 800 − 6.58 for the last 10 kWh, waiting
        panel = await clerk.get(f"/admin/rooms/{room}/closing")
        assert "销户中" in panel.text
        refund = await CounterRefund.get(account_id=account.id)
        own = await _post(clerk, f"/admin/refunds/counter/{refund.id}/approve")
        assert own.status_code == 403 and "审批人不能是申请人" in own.text
    async with signed_in(admin_app, "cashier") as cashier:
        waiting = await cashier.get("/admin/refunds")
        assert refund.number in waiting.text and "退租商户" in waiting.text
        # finance may approve refunds, not close accounts
        assert (await _post(cashier, f"/admin/accounts/{account.id}/close")).status_code == 403
        approved = await _post(cashier, f"/admin/refunds/counter/{refund.id}/approve")
        assert approved.status_code == 303
        assert refund.number not in (await cashier.get("/admin/refunds")).text
        statement = await cashier.get(f"/admin/accounts/{account.id}/statement")
        assert "已完成" in statement.text and "已退款" in statement.text
    assert (await CounterRefund.get(id=refund.id)).status is CounterRefundStatus.PAID
    closed = await Account.get(id=account.id)
    assert (closed.status, closed.balance_fen) == (AccountStatus.CLOSED, 0)
    assert (await Meter.get(id=meter.id)).account_id is None


async def test_transfer_carries_the_balance_and_gives_a_binding_code(admin_app: AdminApp) -> None:
    account, meter = await a_tenant(10_000)
    org = await (await account.site).organisation  # type: ignore[attr-defined]
    await create_staff("clerk2", StaffRole.SITE_ADMIN, org)
    async with signed_in(admin_app, "clerk2") as clerk:
        form = await clerk.get(f"/admin/accounts/{account.id}/transfer")
        assert form.status_code == 200 and "新户号" in form.text
        missing = await _post(clerk, f"/admin/accounts/{account.id}/transfer", number="N1")
        assert missing.status_code == 422 and "新租户名称" in missing.text
        done = await _post(
            clerk, f"/admin/accounts/{account.id}/transfer", tenant_name="接手公司",
            phone="13900000000", number="N0001", carry_over="1",
        )  # fmt: skip
        assert done.status_code == 200, done.text
        assert "SDB1." in done.text and "原账户已销户" in done.text
    new = await Account.get(number="N0001")
    assert new.balance_fen == 10_000 and new.status is AccountStatus.OPEN
    assert (await Meter.get(id=meter.id)).account_id == new.id
    assert (await Account.get(id=account.id)).status is AccountStatus.CLOSED
