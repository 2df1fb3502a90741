"""Staff users over the real app: create (a generated password shown once), edit roles and
sites, disable (their open session is refused at once), enable, reset password; the guards
(last org_admin, no escalation to superadmin, no other organisation's staff or sites)."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from server.audit.models import OperationLog
from server.audit.service import verify_chain
from server.staff.models import AdminUser, StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_organisation, create_site


def password_in(page: str) -> str:
    found = re.search(r"data-password>([^<]+)<", page)
    assert found, page[:800]
    return found.group(1).strip()


async def test_an_org_admin_creates_a_site_admin_who_signs_in_with_the_shown_password(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation(name="华南物业")
    site, other = await create_site(org, name="科技园"), await create_site(org, name="工业园")
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    async with signed_in(admin_app, "boss") as boss:
        form = await boss.get("/admin/staff/new")
        assert form.status_code == 200 and "科技园" in form.text and "超级管理员" not in form.text
        answer = await boss.post("/admin/staff/new", data={
            "csrf_token": await boss.csrf(), "username": "li.si", "display_name": "李四",
            "role": "site_admin", "site_ids": [str(site.id)], "phone": "13800138001",
            "email": "lisi@example.com",
        })  # fmt: skip
        assert answer.status_code == 200 and "只显示这一次" in answer.text
        password = password_in(answer.text)
        listed = await boss.get("/admin/staff?q=李")
        assert "li.si" in listed.text and "boss" not in main_of(listed)
    user = await AdminUser.get(username="li.si").prefetch_related("sites")
    assert (user.role, user.organisation_id, user.phone) == (
        StaffRole.SITE_ADMIN,
        org.id,
        "13800138001",
    )  # type: ignore[attr-defined]
    assert [s.id for s in user.sites] == [site.id] and other.id != site.id
    [row] = await OperationLog.filter(action="staff.create", target_id=str(user.id))
    assert row.actor.startswith("staff:") and password not in str(row.detail) + row.reason
    async with admin_app.browser() as clerk:
        assert (await clerk.sign_in("li.si", password)).status_code == 303


async def test_a_bad_form_is_shown_again_with_the_reason(admin_app: AdminApp) -> None:
    org = await create_organisation()
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    async with signed_in(admin_app, "boss") as boss:
        token = await boss.csrf()
        base = {"csrf_token": token, "role": "viewer", "display_name": "王五"}
        bad_name = await boss.post("/admin/staff/new", data=base | {"username": "a b"})
        taken = await boss.post("/admin/staff/new", data=base | {"username": "boss"})
        bad_mail = await boss.post(
            "/admin/staff/new", data=base | {"username": "wang5", "email": "not-mail"}
        )
    assert bad_name.status_code == 422 and "用户名为" in bad_name.text and "王五" in bad_name.text
    assert taken.status_code == 409 and "已存在" in taken.text
    assert bad_mail.status_code == 422 and "邮箱格式不正确" in bad_mail.text
    assert await AdminUser.all().count() == 1


async def test_edit_changes_role_sites_and_contacts_and_logs_what_changed(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation()
    site = await create_site(org)
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    clerk = await create_staff("clerk", StaffRole.VIEWER, org)
    async with signed_in(admin_app, "boss") as boss:
        answer = await boss.post(f"/admin/staff/{clerk.id}", data={
            "csrf_token": await boss.csrf(), "display_name": "小王", "role": "operator",
            "site_ids": [str(site.id)], "phone": "+86 138-0013-8000", "email": "",
        })  # fmt: skip
        assert answer.status_code == 303
        page = await boss.get(answer.headers["location"])
        assert "已保存" in page.text and "小王" in page.text
    clerk = await AdminUser.get(id=clerk.id).prefetch_related("sites")
    assert clerk.role is StaffRole.OPERATOR and [s.id for s in clerk.sites] == [site.id]
    [row] = await OperationLog.filter(action="staff.edit")
    assert row.detail["role"] == ["viewer", "operator"] and row.detail["site_ids"] == [
        [],
        [site.id],
    ]
    assert await verify_chain() == []


async def test_disabling_ends_the_open_session_at_once_and_enabling_lets_them_back(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation()
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    clerk = await create_staff("clerk", StaffRole.SITE_ADMIN, org)
    async with signed_in(admin_app, "boss") as boss, signed_in(admin_app, "clerk") as c:
        assert (await c.get("/admin/")).status_code == 200
        answer = await boss.post(
            f"/admin/staff/{clerk.id}/disable", data={"csrf_token": await boss.csrf()}
        )
        assert answer.status_code == 303
        assert (await c.get("/admin/")).status_code == 303  # the very next request
        assert (await c.sign_in("clerk")).status_code == 401
        await boss.post(f"/admin/staff/{clerk.id}/enable", data={"csrf_token": await boss.csrf()})
        assert (await c.sign_in("clerk")).status_code == 303
    actions = await OperationLog.filter(target_id=str(clerk.id), target_type="staff").values_list(
        "action", flat=True
    )
    assert "staff.disable" in actions and "staff.enable" in actions


async def test_reset_password_ends_their_sessions_and_the_old_password(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation()
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    clerk = await create_staff("clerk", StaffRole.FINANCE, org)
    async with signed_in(admin_app, "boss") as boss, signed_in(admin_app, "clerk") as c:
        answer = await boss.post(
            f"/admin/staff/{clerk.id}/password", data={"csrf_token": await boss.csrf()}
        )
        assert answer.status_code == 200 and "此前的所有登录已退出" in answer.text
        password = password_in(answer.text)
        assert (await c.get("/admin/")).status_code == 303
        assert (await c.sign_in("clerk")).status_code == 401
        assert (await c.sign_in("clerk", password)).status_code == 303
    assert await OperationLog.filter(action="staff.reset_password").count() == 1


async def test_the_last_active_org_admin_stays(admin_app: AdminApp) -> None:
    org = await create_organisation()
    boss = await create_staff("boss", StaffRole.ORG_ADMIN, org)
    async with signed_in(admin_app, "boss") as browser:
        token = await browser.csrf()
        demote = await browser.post(
            f"/admin/staff/{boss.id}", data={"csrf_token": token, "role": "viewer"}
        )
        itself = await browser.post(f"/admin/staff/{boss.id}/disable", data={"csrf_token": token})
        assert demote.status_code == 409 and "至少需要保留一名启用的集团管理员" in demote.text
        assert itself.status_code == 409
        second = await create_staff("deputy", StaffRole.ORG_ADMIN, org)
        # with a second org_admin, the first may step down; the second is then the last
        assert (
            await browser.post(
                f"/admin/staff/{boss.id}", data={"csrf_token": token, "role": "site_admin"}
            )
        ).status_code == 303
    async with signed_in(admin_app, "deputy") as deputy:
        token = await deputy.csrf()
        assert (
            await deputy.post(
                f"/admin/staff/{second.id}", data={"csrf_token": token, "role": "viewer"}
            )
        ).status_code == 409
    assert (await AdminUser.get(id=second.id)).role is StaffRole.ORG_ADMIN


async def test_an_org_admin_cannot_make_a_superadmin_nor_reach_another_org(
    admin_app: AdminApp,
) -> None:
    org, other = await create_organisation(), await create_organisation(name="别家物业")
    foreign_site = await create_site(other, name="别家园区")
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    clerk = await create_staff("clerk", StaffRole.VIEWER, org)
    stranger = await create_staff("stranger", StaffRole.VIEWER, other)
    root = await create_staff("root", StaffRole.SUPERADMIN)
    async with signed_in(admin_app, "boss") as boss:
        token = await boss.csrf()
        make_root = await boss.post(
            "/admin/staff/new", data={"csrf_token": token, "username": "evil", "role": "superadmin"}
        )
        promote = await boss.post(
            f"/admin/staff/{clerk.id}", data={"csrf_token": token, "role": "superadmin"}
        )
        foreign = await boss.post("/admin/staff/new", data={
            "csrf_token": token, "username": "spy", "role": "viewer",
            "site_ids": [str(foreign_site.id)], "organisation_id": str(other.id),
        })  # fmt: skip
        assert make_root.status_code == 403 and promote.status_code == 403
        assert foreign.status_code == 404
        for user in (stranger, root):
            assert (await boss.get(f"/admin/staff/{user.id}")).status_code == 404
            for action in ("", "/disable", "/password"):
                answer = await boss.post(
                    f"/admin/staff/{user.id}{action}", data={"csrf_token": token, "role": "viewer"}
                )
                assert answer.status_code == 404, action
        listed = await boss.get("/admin/staff")
        assert "stranger" not in main_of(listed) and "root" not in main_of(listed)
    assert await AdminUser.filter(username__in=["evil", "spy"]).count() == 0
    assert (await AdminUser.get(id=clerk.id)).role is StaffRole.VIEWER
    assert (await AdminUser.get(id=stranger.id)).is_active


async def test_roles_without_the_staff_action_cannot_open_the_pages(admin_app: AdminApp) -> None:
    org = await create_organisation()
    await create_staff("site", StaffRole.SITE_ADMIN, org)
    async with signed_in(admin_app, "site") as browser:
        assert (await browser.get("/admin/staff")).status_code == 403
        assert "员工" not in (await browser.get("/admin/")).text.split("<main")[0]


async def test_the_list_filters_and_exports_to_excel(admin_app: AdminApp) -> None:
    org = await create_organisation()
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    await create_staff("viewer1", StaffRole.VIEWER, org)
    gone = await create_staff("viewer2", StaffRole.VIEWER, org)
    await AdminUser.filter(id=gone.id).update(is_active=False)
    async with signed_in(admin_app, "boss") as boss:
        viewers = await boss.get("/admin/staff?role=viewer&active=1")
        assert "viewer1" in viewers.text and "viewer2" not in viewers.text
        assert "boss" not in main_of(viewers)
        sheet = await boss.get("/admin/staff?format=xlsx&role=viewer")
    assert sheet.status_code == 200
    rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("用户名", "姓名", "角色")
    assert sorted(r[0] for r in rows[1:]) == ["viewer1", "viewer2"]


async def test_a_superadmin_creates_staff_of_any_organisation_and_other_superadmins(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation(name="乙物业")
    site = await create_site(org, name="西园")
    await create_staff("root", StaffRole.SUPERADMIN)
    async with signed_in(admin_app, "root") as root:
        token = await root.csrf()
        head = await root.post("/admin/staff/new", data={
            "csrf_token": token, "username": "yi.boss", "role": "org_admin",
            "organisation_id": str(org.id), "site_ids": [str(site.id)],
        })  # fmt: skip
        second = await root.post(
            "/admin/staff/new",
            data={"csrf_token": token, "username": "root2", "role": "superadmin"},
        )
        orphan = await root.post(
            "/admin/staff/new", data={"csrf_token": token, "username": "nobody1", "role": "viewer"}
        )
        assert head.status_code == 200 and second.status_code == 200
        assert orphan.status_code == 422 and "请选择所属组织" in orphan.text
    boss = await AdminUser.get(username="yi.boss")
    assert boss.organisation_id == org.id  # type: ignore[attr-defined]
    assert (await AdminUser.get(username="root2")).organisation_id is None  # type: ignore[attr-defined]


async def test_an_admin_limited_to_some_sites_gives_only_those(admin_app: AdminApp) -> None:
    org = await create_organisation()
    mine, theirs = await create_site(org, name="北园"), await create_site(org, name="南园")
    await create_staff("north", StaffRole.ORG_ADMIN, org, sites=[mine])
    async with signed_in(admin_app, "north") as north:
        token = await north.csrf()
        base = {"csrf_token": token, "role": "viewer"}
        everywhere = await north.post("/admin/staff/new", data=base | {"username": "view1"})
        other = await north.post(
            "/admin/staff/new", data=base | {"username": "view2", "site_ids": [str(theirs.id)]}
        )
        fine = await north.post(
            "/admin/staff/new", data=base | {"username": "view3", "site_ids": [str(mine.id)]}
        )
    assert everywhere.status_code == 422 and "请选择负责园区" in everywhere.text
    assert other.status_code == 404 and fine.status_code == 200
    assert await AdminUser.filter(username__in=["view1", "view2"]).count() == 0
