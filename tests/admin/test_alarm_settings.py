"""Alarm settings (/admin/alarm-settings, /admin/accounts/<id>/alarm-settings, /admin/protected):
a site's levels and no-cut windows saved and refused by the alarm rules themselves, an
account's own amounts merged onto them, the 保电 list with its Excel; scoped, and changed
only by the roles with the CONTROL action."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from server.audit.models import OperationLog
from server.metering.models import AccountAlarmState, MeteringPolicy
from server.metering.service import config
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_account, create_meter, create_organisation, create_site

LEVELS = {
    "threshold_1": "80", "repeat_1": "1", "interval_1": "24",
    "threshold_2": "30.50", "repeat_2": "3", "interval_2": "12",
    "threshold_3": "0", "repeat_3": "1", "interval_3": "24",
    "night_start": "21:00", "night_end": "07:30", "weekends": "1", "holidays": "1",
    "unknown_year": "no_cut", "auto_trip": "1", "auto_close": "1",
}  # fmt: skip


async def test_site_and_account_settings_and_the_protected_list(admin_app: AdminApp) -> None:
    org = await create_organisation(name="甲物业")
    site = await create_site(org, name="北园")
    theirs = await create_site(await create_organisation(name="乙物业"), name="西园")
    account = await create_account(site=site, number="A101", tenant_name="星火科技")
    await create_meter(account, address="000000001234", protected=True)
    await create_meter(await create_account(site=theirs), address="000000009999", protected=True)
    await create_staff("ops", StaffRole.OPERATOR, org)
    await create_staff("cash", StaffRole.FINANCE, org)
    async with signed_in(admin_app, "ops") as ops:
        token = await ops.csrf()
        page = main_of(await ops.get("/admin/alarm-settings"))
        assert "50.00" in page and "20:00" in page and "000000001234" in page  # the defaults
        assert "000000009999" not in page
        wrong = LEVELS | {"threshold_2": "90", "csrf_token": token, "site_id": site.id}
        refused = await ops.post("/admin/alarm-settings", data=wrong)
        assert refused.status_code == 422 and "逐级递减" in main_of(refused)
        same = LEVELS | {"night_end": "21:00", "csrf_token": token, "site_id": site.id}
        assert "夜间不断电时段" in main_of(await ops.post("/admin/alarm-settings", data=same))
        assert await MeteringPolicy.filter(site_id=site.id).count() == 0
        saved = await ops.post(
            "/admin/alarm-settings", data=LEVELS | {"csrf_token": token, "site_id": site.id}
        )
        assert saved.status_code == 303
        foreign = await ops.post(
            "/admin/alarm-settings", data=LEVELS | {"csrf_token": token, "site_id": theirs.id}
        )
        assert foreign.status_code == 404

        url = f"/admin/accounts/{account.id}/alarm-settings"
        own = {"csrf_token": token, "threshold_2": "40", "repeat_2": "", "night_start": "",
               "night_end": "", "weekends": "1", "holidays": "1"}  # fmt: skip
        assert (await ops.post(url, data=own | {"threshold_2": "100"})).status_code == 422
        assert (await ops.post(url, data=own | {"own_no_cut": "1"})).status_code == 303
        page = main_of(await ops.get(url))
        assert "2 级 ≤ ¥40.00 提醒 3 次" in page
        sheet = await ops.get("/admin/protected?format=xlsx")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.values)
        assert [r[1] for r in rows] == ["表地址", "000000001234"]
    policy = await MeteringPolicy.get(site_id=site.id)
    rules = config.site_config(policy.alarm)
    assert [lv.threshold_fen for lv in rules.levels] == [8000, 3050, 0]
    assert (rules.no_cut.night_start.hour, rules.no_cut.night_end.minute) == (21, 30)
    state = await AccountAlarmState.get(account_id=account.id)
    merged = config.effective_config(policy.alarm, state.override, 0)
    assert [lv.threshold_fen for lv in merged.levels] == [8000, 4000, 0]
    assert merged.no_cut.night_start is None  # the account's own windows: no night window
    assert await OperationLog.filter(action__startswith="修改").count() == 2

    async with signed_in(admin_app, "cash") as cash:  # finance: no CONTROL
        token = await cash.csrf()
        assert "保存" not in main_of(await cash.get("/admin/alarm-settings"))
        answer = await cash.post(
            "/admin/alarm-settings", data=LEVELS | {"csrf_token": token, "site_id": site.id}
        )
        assert answer.status_code == 403
