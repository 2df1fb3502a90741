"""The dashboard: its figures from the core's tables, scoped to the staff member's
organisation and sites; a site outside the scope answers 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from server.ledger import service as ledger
from server.ledger.posting import Channel, ChargeType
from server.metering.models import AccountAlarmState, AlarmRecord, CommandOp, DailyUsage
from server.metering.service.commands import queue_command
from server.metering.vocabulary import MeterKind, RelayState
from server.places.models import Site
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff
from tests.factories import create_account, create_meter, create_organisation, create_site

TZ = ZoneInfo("Asia/Shanghai")


def figure(page: httpx.Response, label: str) -> str:
    found = re.search(rf'data-figure="{re.escape(label)}">([^<]*)<', page.text)
    assert found, label
    return found.group(1)


async def a_busy_site(site: Site, n: int) -> None:
    """`n` accounts with an online meter each, the first in alarm, tripped and in arrears,
    the second with a relay command on its way; ¥100 in today per account through the books
    (¥80 online, ¥30 at the counter, ¥10 refunded; a refund still held and a charge are not
    income); 12.5 kWh used today per meter."""
    now = datetime.now(UTC)
    for i in range(n):
        account = await create_account(site=site)
        meter = await create_meter(
            account, online=True, relay_state=RelayState.OPEN if i == 0 else RelayState.CLOSED
        )
        await AccountAlarmState.create(account=account, state={"level": 2 if i == 0 else 0})
        await money_of_a_day(account.id, arrears=i == 0)
        if i == 1:
            await queue_command(
                meter.id, CommandOp.TRIP, {}, actor="staff:1", reason="测试", now=now
            )
        await DailyUsage.create(
            meter=meter, account=account, day=now.astimezone(TZ).date(),
            quantity_e4=125_000, updated_at=now,
        )  # fmt: skip
        if i == 0:
            await AlarmRecord.create(
                account=account, kind="balance", level=2, balance_fen=-500,
                message="余额不足，已停电", created_at=now - timedelta(minutes=5),
            )  # fmt: skip
    await create_meter(await create_account(site=site), online=False, kind=MeterKind.WATER)


async def money_of_a_day(account_id: int, *, arrears: bool) -> None:
    """¥110 recharged, ¥10 refunded to the channel (¥100 in); then either a charge that
    leaves the wallet ¥5 in arrears, or a refund of ¥5 held and not yet paid out."""
    key = f"dash:{account_id}"
    await ledger.recharge(account_id, Channel.WECHAT, 8_000, key=f"{key}:wx", actor="tenant:o")
    await ledger.recharge(account_id, Channel.CASH, 3_000, key=f"{key}:cash", actor="staff:1")
    await ledger.refund_hold(account_id, Channel.WECHAT, 1_000, key=f"{key}:rh", actor="staff:1")
    await ledger.refund_settle(f"{key}:rh", key=f"{key}:rs", actor="system:pay")
    if arrears:
        await ledger.charge(account_id, ChargeType.ELECTRICITY, 10_500, key=f"{key}:use",
                            actor="system:billing", allow_arrears=True)  # fmt: skip
    else:
        await ledger.refund_hold(account_id, Channel.CASH, 500, key=f"{key}:held", actor="staff:1")


async def test_the_dashboard_counts_the_scope_only(admin_app: AdminApp) -> None:
    org_a, org_b = await create_organisation(), await create_organisation()
    a1, a2, b1 = await create_site(org_a), await create_site(org_a), await create_site(org_b)
    await a_busy_site(a1, 3)
    await a_busy_site(a2, 2)
    await a_busy_site(b1, 4)
    await create_staff("head", StaffRole.ORG_ADMIN, org_a)
    await create_staff("keeper", StaffRole.SITE_ADMIN, org_a, sites=[a2])
    async with admin_app.browser() as head, admin_app.browser() as keeper:
        await head.sign_in("head")
        await keeper.sign_in("keeper")
        everything, one = await head.get("/admin/"), await head.get(f"/admin/?site={a1.id}")
        mine = await keeper.get("/admin/")
        partial = await keeper.get("/admin/figures")
        outside = [
            await head.get(f"/admin/?site={b1.id}"),
            await keeper.get(f"/admin/?site={a1.id}"),
            await keeper.get(f"/admin/figures?site={b1.id}"),
            await keeper.get("/admin/?site=x"),
        ]
    expected = {  # org A: 5 busy accounts in 2 sites, one idle water meter in each
        "在线表计": "5", "离线表计": "2", "告警账户": "2", "已断电账户": "2",
        "欠费账户": "2", "今日收入": "¥500.00", "今日用电 (kWh)": "62.5", "执行中命令": "2",
    }  # fmt: skip
    assert {k: figure(everything, k) for k in expected} == expected
    assert figure(one, "在线表计") == "3" and figure(one, "今日收入") == "¥300.00"
    assert figure(mine, "在线表计") == "2" and figure(mine, "今日用电 (kWh)") == "25.0"
    assert a1.name not in mine.text and b1.name not in everything.text
    assert partial.status_code == 200 and "<html" not in partial.text
    assert figure(partial, "在线表计") == "2"
    assert "余额不足，已停电" in everything.text
    for answer in outside:
        assert answer.status_code == 404 and "站点不存在" in answer.text


async def test_a_superadmin_sees_every_organisation(admin_app: AdminApp) -> None:
    await a_busy_site(await create_site(), 1)
    await a_busy_site(await create_site(), 1)
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as root:
        await root.sign_in("root")
        page = await root.get("/admin/")
    assert figure(page, "在线表计") == "2" and figure(page, "离线表计") == "2"


async def test_a_viewer_signs_in_and_sees_its_scope(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    await a_busy_site(site, 1)
    await create_staff("reader", StaffRole.VIEWER, org, sites=[site])
    async with admin_app.browser() as reader:
        assert (await reader.sign_in("reader")).status_code == 303
        page = await reader.get("/admin/")
    assert "只读" in page.text and figure(page, "在线表计") == "1"
