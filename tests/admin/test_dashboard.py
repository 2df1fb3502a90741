"""The dashboard: its figures from the core's tables, scoped to the staff member's
organisation and sites; a site outside the scope answers 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from server.metering.models import AccountAlarmState, AlarmRecord, DailyUsage
from server.metering.vocabulary import MeterKind, RelayState
from server.payments.models import OrderStatus, RechargeOrder
from server.payments.providers.base import Channel
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
    """`n` accounts with an online meter each, the first in alarm, tripped and in arrears;
    ¥100 paid today per account; 12.5 kWh used today per meter."""
    now = datetime.now(UTC)
    for i in range(n):
        account = await create_account(site=site, balance_fen=-500 if i == 0 else 10_000)
        meter = await create_meter(
            account, online=True, relay_state=RelayState.OPEN if i == 0 else RelayState.CLOSED
        )
        await AccountAlarmState.create(account=account, state={"level": 2 if i == 0 else 0})
        await RechargeOrder.create(
            out_trade_no=f"T{site.id}x{i}", account=account, channel=Channel.WECHAT,
            amount_fen=10_000, status=OrderStatus.PAID, expires_at=now, paid_at=now,
            created_by="tenant:o-x",
        )  # fmt: skip
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
        "欠费账户": "2", "今日收入": "¥500.00", "今日用电 (kWh)": "62.5",
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
