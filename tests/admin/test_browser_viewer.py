"""In Debian's Chromium: a head-office admin creates a read-only viewer on the staff page and
reads the password shown once; the viewer signs in in a second browser context, finds no
write button on any page the router lists, and a forged POST (with the viewer's own valid
CSRF token) is refused with 403. Screenshots in the artefacts dir of test_browser."""

from __future__ import annotations

import re

from playwright.async_api import Page

from server.staff.models import AdminUser, StaffRole
from tests.admin.chromium import ARTEFACTS, browser_only, chromium
from tests.admin.conftest import PASSWORD, AdminApp, create_staff
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_gateway,
    create_meter,
    create_organisation,
    create_room,
    create_site,
)

pytestmark = browser_only
# Pages a viewer may still post from: its own sign-out and password.
OWN = ("/admin/logout", "/admin/password")
DETAIL = re.compile(r"/admin/[a-z]+/[0-9]+")


async def sign_in(page: Page, url: str, username: str, password: str) -> None:
    await page.goto(f"{url}/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/admin/")


def readable_pages(admin_app: AdminApp) -> list[str]:
    """Every admin page without a path parameter, from the router."""
    return sorted(
        "/" + route.path
        for route in admin_app.app.router.routes
        if route.path.startswith("admin") and "GET" in route.methods and "<" not in route.path
        and route.path not in ("admin/login", "admin/figures", "admin/password")
    )  # fmt: skip


async def test_a_viewer_created_on_the_staff_page_cannot_change_anything(
    admin_app: AdminApp,
) -> None:
    org = await create_organisation(name="示范物业集团")
    site = await create_site(org, name="科技园")
    room = await create_room(await create_floor(await create_building(site)))
    await create_meter(await create_account(room, site))
    await create_gateway(site)
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    async with chromium() as browser:
        admin = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page = await admin.new_page()
        await sign_in(page, admin_app.url, "boss", PASSWORD)
        await page.click("nav >> text=员工")
        await page.click("text=新建员工")
        await page.fill("#username", "kanke")
        await page.fill("#display_name", "访客小张")
        await page.select_option("#role", "viewer")
        await page.fill("#phone", "13800138009")
        await page.click("button[type=submit] >> text=创建并生成初始密码")
        password = (await page.inner_text("[data-password]")).strip()
        await page.screenshot(path=str(ARTEFACTS / "staff-created.png"), full_page=True)
        assert re.fullmatch(r"\w{4}-\w{4}-\w{4}", password)
        await page.click("text=完成")
        assert "访客小张" in await page.inner_text("h1")
        await page.screenshot(path=str(ARTEFACTS / "staff-detail.png"), full_page=True)
        await page.goto(f"{admin_app.url}/admin/staff")
        await page.screenshot(path=str(ARTEFACTS / "staff-list.png"), full_page=True)

        tablet = await browser.new_context(viewport={"width": 820, "height": 1180}, locale="zh-CN")
        viewer = await tablet.new_page()
        errors: list[str] = []
        viewer.on("pageerror", lambda exc: errors.append(str(exc)))
        await sign_in(viewer, admin_app.url, "kanke", password)
        assert "只读" in await viewer.inner_text("nav")
        nav = await viewer.inner_text("nav")
        assert "员工" not in nav and "操作日志" not in nav
        pages, seen = readable_pages(admin_app), set()
        while pages:  # the router's pages, then the detail pages their lists link to
            path = pages.pop(0)
            seen.add(path)
            answer = await viewer.goto(f"{admin_app.url}{path}")
            assert answer is not None
            if answer.status != 200:
                assert answer.status == 403, path  # staff and log pages: not for a viewer
                continue
            posts = await viewer.eval_on_selector_all(
                "form[method=post]", "fs => fs.map(f => f.getAttribute('action'))"
            )
            assert [a for a in posts if a not in OWN] == [], (path, posts)
            assert await viewer.locator("a[href$='/new']").count() == 0, path
            links = await viewer.eval_on_selector_all(
                "main a[href^='/admin/']", "as => as.map(a => a.getAttribute('href'))"
            )
            pages += [h for h in links if DETAIL.fullmatch(h) and h not in seen and h not in pages]
        await viewer.goto(f"{admin_app.url}/admin/")
        await viewer.screenshot(path=str(ARTEFACTS / "viewer.png"), full_page=True)
        token = await viewer.get_attribute("form[action='/admin/logout'] input", "value")
        forged = await viewer.request.post(
            f"{admin_app.url}/admin/staff/new",
            form={"csrf_token": token or "", "username": "mine", "role": "org_admin"},
            max_redirects=0,
        )
        assert forged.status == 403
        assert (await viewer.goto(f"{admin_app.url}/admin/")).status == 200  # still in
        assert errors == []
        await page.goto(f"{admin_app.url}/admin/oplog")
        assert "kanke 登录" in await page.inner_text("main")
        await page.screenshot(path=str(ARTEFACTS / "oplog.png"), full_page=True)
    assert not await AdminUser.exists(username="mine")
    assert (await AdminUser.get(username="kanke")).role is StaffRole.VIEWER
