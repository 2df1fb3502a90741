"""The operation-log page: newest first, searched by actor, action, target, site and dates,
exported to Excel; only roles with the AUDIT action; each reads only its own scope's rows."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from server.audit.service import record
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_organisation, create_site


async def two_companies() -> dict[str, int]:
    """Organisation A (two sites, an org_admin, a site admin of one site) and B (one site,
    its admin), each with a logged structure change per site."""
    a, b = await create_organisation(name="甲物业"), await create_organisation(name="乙物业")
    north, south = await create_site(a, name="北园"), await create_site(a, name="南园")
    west = await create_site(b, name="西园")
    boss = await create_staff("boss", StaffRole.ORG_ADMIN, a)
    keeper = await create_staff("keeper", StaffRole.SITE_ADMIN, a, sites=[north])
    other = await create_staff("other", StaffRole.ORG_ADMIN, b)
    when = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    for site, who in ((north, keeper), (south, boss), (west, other)):
        await record(
            f"staff:{who.id}", "building.create", target_type="building", target_id=site.id,
            site_id=site.id, reason=f"新建楼栋 {site.name}1号楼", at=when,
        )  # fmt: skip
    return {"north": north.id, "south": south.id, "west": west.id, "boss": boss.id}


async def test_an_org_admin_reads_its_sites_and_its_staff_never_another_company(
    admin_app: AdminApp,
) -> None:
    ids = await two_companies()
    async with signed_in(admin_app, "other"):
        pass  # B's admin signs in: a sign-in row A must not see
    async with signed_in(admin_app, "boss") as boss:
        page = await boss.get("/admin/oplog")
        assert page.status_code == 200
        body = main_of(page)
        assert "北园1号楼" in body and "南园1号楼" in body and "西园" not in body
        assert "staff.signin" in body and "127.0.0.1" in body  # its own sign-in, with the IP
        assert "other" not in body
        assert body.index("staff.signin") < body.index("北园1号楼")  # newest first
        assert (await boss.get(f"/admin/oplog?site={ids['west']}")).status_code == 404
        one = main_of(await boss.get(f"/admin/oplog?site={ids['north']}"))
        assert "北园1号楼" in one and "南园1号楼" not in one


async def test_a_site_admin_reads_its_sites_and_its_own_actions_only(admin_app: AdminApp) -> None:
    await two_companies()
    async with signed_in(admin_app, "boss"):
        pass
    async with signed_in(admin_app, "keeper") as keeper:
        body = main_of(await keeper.get("/admin/oplog"))
    assert "北园1号楼" in body and "南园1号楼" not in body and "西园" not in body
    assert "keeper 登录" in body and "boss 登录" not in body


async def test_search_by_actor_action_target_and_dates(admin_app: AdminApp) -> None:
    ids = await two_companies()
    async with signed_in(admin_app, "boss") as boss:
        by_actor = main_of(await boss.get("/admin/oplog?actor=keep"))
        by_action = main_of(await boss.get("/admin/oplog?action=staff.sign"))
        by_target = main_of(await boss.get(f"/admin/oplog?target=building:{ids['south']}"))
        by_words = main_of(await boss.get("/admin/oplog?target=北园"))
        in_range = main_of(await boss.get("/admin/oplog?since=2026-11-03&until=2026-11-03"))
        before = main_of(await boss.get("/admin/oplog?until=2026-11-02"))
    assert "北园1号楼" in by_actor and "南园1号楼" not in by_actor
    assert "boss 登录" in by_action and "1号楼" not in by_action
    assert "南园1号楼" in by_target and "北园1号楼" not in by_target
    assert "北园1号楼" in by_words and "南园1号楼" not in by_words
    assert "北园1号楼" in in_range and "南园1号楼" in in_range and "boss 登录" not in in_range
    assert "1号楼" not in before and "没有符合条件的记录" in before


async def test_the_export_holds_every_row_the_filter_selects(admin_app: AdminApp) -> None:
    await two_companies()
    async with signed_in(admin_app, "boss") as boss:
        sheet = await boss.get("/admin/oplog?format=xlsx&action=building&per_page=1")
    assert sheet.status_code == 200
    rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
    assert rows[0] == ("时间", "操作人", "操作", "说明", "对象", "园区", "IP")
    assert sorted(r[3] for r in rows[1:]) == ["新建楼栋 北园1号楼", "新建楼栋 南园1号楼"]


async def test_only_roles_with_the_audit_action_read_it(admin_app: AdminApp) -> None:
    org = await create_organisation()
    await create_staff("cashier", StaffRole.FINANCE, org)
    await create_staff("fixer", StaffRole.OPERATOR, org)
    await create_staff("root", StaffRole.SUPERADMIN)
    async with signed_in(admin_app, "cashier") as cashier:
        assert (await cashier.get("/admin/oplog")).status_code == 200
    async with signed_in(admin_app, "fixer") as fixer:
        refused = await fixer.get("/admin/oplog")
        assert refused.status_code == 403 and "操作日志" in refused.text
    async with signed_in(admin_app, "root") as root:
        body = main_of(await root.get("/admin/oplog"))
    assert "cashier 登录" in body and "fixer 登录" in body  # a superadmin reads every row
