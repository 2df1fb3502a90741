"""Staff sign-in, sessions, CSRF and the sign-in rate limit, over the real app (HTTP)."""

from __future__ import annotations

from server.audit.models import OperationLog
from server.staff.config import StaffSettings
from server.staff.models import StaffRole
from tests.admin.conftest import PASSWORD, AdminApp, create_staff, csrf_in


async def test_sign_in_opens_the_dashboard_and_logs_it(admin_app: AdminApp) -> None:
    user = await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as browser:
        assert (await browser.get("/admin/")).headers["location"] == "/admin/login"
        answer = await browser.sign_in("root")
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
        [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("sd_admin=")]
        assert "sd_admin=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Path=/admin" in cookie and "Secure" not in cookie  # plain HTTP here
        page = await browser.get("/admin/")
    assert page.status_code == 200 and "概览" in page.text and "在线表计" in page.text
    assert page.headers["cache-control"] == "no-store"
    [row] = await OperationLog.filter(action="staff.signin")
    assert row.actor == f"staff:{user.id}" and row.detail == {"ip": "127.0.0.1"}


async def test_a_wrong_password_gets_the_generic_error_and_is_logged(
    admin_app: AdminApp,
) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as browser:
        wrong = await browser.sign_in("root", "not-the-password")
        unknown = await browser.sign_in("nobody", PASSWORD)
        assert (await browser.get("/admin/")).status_code == 303
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "用户名或密码错误，或尝试次数过多，请稍后再试" in answer.text
    rows = await OperationLog.filter(action="staff.signin_failed").order_by("id")
    assert [(r.detail["username"], r.detail["ip"]) for r in rows] == [
        ("root", "127.0.0.1"),
        ("nobody", "127.0.0.1"),
    ]


async def test_five_failures_lock_the_username_for_fifteen_minutes(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    limit = StaffSettings().signin_failures
    async with admin_app.browser() as browser:
        for _ in range(limit):
            assert (await browser.sign_in("root", "guess-guess-guess")).status_code == 401
        locked = await browser.sign_in("root")  # the right password, too late
        assert locked.status_code == 401 and "sd_admin=" not in locked.headers.get(
            "set-cookie", ""
        ).replace("sd_admin_pre=", "")
    assert (await OperationLog.filter(action="staff.signin_failed").order_by("-id").first()).detail[
        "locked"
    ]


async def test_five_failures_from_one_ip_lock_every_username(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as browser:
        for i in range(StaffSettings().signin_failures):
            assert (await browser.sign_in(f"guess{i}", "guess-guess-guess")).status_code == 401
        assert (await browser.sign_in("root")).status_code == 401


async def test_sign_in_without_the_form_token_is_refused(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as browser:
        answer = await browser.post("/admin/login", data={"username": "root", "password": PASSWORD})
    assert answer.status_code == 403 and "sd_admin=" not in answer.headers.get("set-cookie", "")


async def test_a_state_change_without_the_csrf_token_is_refused(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as browser:
        await browser.sign_in("root")
        token = await browser.csrf()
        refused = await browser.post("/admin/logout")
        wrong = await browser.post("/admin/logout", headers={"X-CSRF-Token": "x" + token})
        assert refused.status_code == 403 and wrong.status_code == 403
        assert "页面已过期" in refused.text
        assert (await browser.get("/admin/")).status_code == 200  # still signed in
        by_header = await browser.post("/admin/logout", headers={"X-CSRF-Token": token})
        assert by_header.status_code == 303


async def test_sign_out_ends_the_session_on_the_server(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as browser:
        await browser.sign_in("root")
        stolen = browser.cookies["sd_admin"]
        answer = await browser.post("/admin/logout", data={"csrf_token": await browser.csrf()})
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
    async with admin_app.browser() as thief:
        thief.cookies.set("sd_admin", stolen)
        assert (await thief.get("/admin/")).status_code == 303
    assert await OperationLog.filter(action="staff.signout").count() == 1


async def test_a_session_ends_after_30_idle_minutes(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as browser:
        await browser.sign_in("root")
        admin_app.clock.advance(29 * 60)
        assert (await browser.get("/admin/")).status_code == 200  # used: idle time restarts
        admin_app.clock.advance(29 * 60)
        assert (await browser.get("/admin/")).status_code == 200
        admin_app.clock.advance(30 * 60 + 1)
        assert (await browser.get("/admin/")).status_code == 303


async def test_a_session_ends_at_its_absolute_timeout_however_busy(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    ttl = StaffSettings().session_ttl_s
    async with admin_app.browser() as browser:
        await browser.sign_in("root")
        for _ in range(ttl // (20 * 60)):
            admin_app.clock.advance(20 * 60)
            if (await browser.get("/admin/")).status_code != 200:
                break
        assert admin_app.clock.now - 1_800_000_000.0 >= ttl - 20 * 60
        admin_app.clock.advance(20 * 60)
        assert (await browser.get("/admin/")).status_code == 303


async def test_password_change_needs_the_old_one_and_ends_other_sessions(
    admin_app: AdminApp,
) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as laptop, admin_app.browser() as tablet:
        await laptop.sign_in("root")
        await tablet.sign_in("root")
        form = {"old": "wrong-wrong-wrong", "new": "a-new-password-1", "again": "a-new-password-1"}
        token = await laptop.csrf()
        wrong = await laptop.post("/admin/password", data=form | {"csrf_token": token})
        assert wrong.status_code == 422 and "原密码不正确" in wrong.text
        form["old"] = PASSWORD
        token = await laptop.csrf()
        done = await laptop.post("/admin/password", data=form | {"csrf_token": token})
        assert done.status_code == 200 and "密码已修改" in done.text
        assert (await laptop.get("/admin/")).status_code == 200  # a new session for the caller
        assert (await tablet.get("/admin/")).status_code == 303
    async with admin_app.browser() as browser:
        assert (await browser.sign_in("root")).status_code == 401
        assert (await browser.sign_in("root", "a-new-password-1")).status_code == 303


async def test_the_demo_staff_is_seeded_once_and_signs_in(admin_app: AdminApp) -> None:
    from server.seed import seed_staff
    from server.staff.models import AdminUser
    from tests.factories import create_site

    site = await create_site()
    username, password = await seed_staff(site.id)
    assert await seed_staff(site.id) == (username, password)
    user = await AdminUser.get(username=username)
    assert user.role is StaffRole.ORG_ADMIN and user.organisation_id == site.organisation_id  # type: ignore[attr-defined]
    async with admin_app.browser() as browser:
        assert (await browser.sign_in(username, password)).status_code == 303


async def test_signing_in_again_ends_the_previous_session(admin_app: AdminApp) -> None:
    await create_staff("root", StaffRole.SUPERADMIN)
    async with admin_app.browser() as first, admin_app.browser() as browser:
        await first.sign_in("root")
        before = first.cookies["sd_admin"]
        form = await browser.get("/admin/login")
        browser.cookies.set("sd_admin", before, domain="127.0.0.1", path="/admin")
        answer = await browser.post(
            "/admin/login",
            data={"username": "root", "password": PASSWORD, "csrf_token": csrf_in(form)},
        )
        assert answer.status_code == 303 and browser.cookies["sd_admin"] != before
        assert (await first.get("/admin/")).status_code == 303
        assert (await browser.get("/admin/")).status_code == 200
