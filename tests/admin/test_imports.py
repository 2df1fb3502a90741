"""The Excel import pages: upload → preview (errors by sheet/row/column, no confirm button
while there are any) → confirm; the previewed file waits server-side for its staff member
only; scope (another organisation's site is 404), roles (a viewer gets 403) and CSRF."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from server.audit.models import OperationLog
from server.core.excel import MAX_UPLOAD_BYTES, XLSX_TYPE, read_xlsx
from server.metering.models import GatewayKind, Meter
from server.places.models import Room, Site
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, Browser, create_staff
from tests.factories import (
    create_building,
    create_floor,
    create_gateway,
    create_organisation,
    create_room,
    create_site,
)
from tests.imports.books import book, meter, room, tenant


async def a_park() -> tuple[Site, Site]:
    """A site with a gateway, and a site of another organisation."""
    org = await create_organisation(name="甲物业")
    site = await create_site(org, name="科技园")
    await create_gateway(site, code="GW-T", kind=GatewayKind.TCP_TRANSPARENT)
    return site, await create_site(await create_organisation(name="乙物业"), name="别家园区")


@asynccontextmanager
async def signed_in(
    admin_app: AdminApp, role: StaffRole = StaffRole.ORG_ADMIN
) -> AsyncIterator[Browser]:
    site = await Site.get(name="科技园").prefetch_related("organisation")
    await create_staff(f"u{role.value}", role, site.organisation)
    async with admin_app.browser() as browser:
        assert (await browser.sign_in(f"u{role.value}")).status_code == 303
        yield browser


async def upload(
    browser: Browser, site_id: int, data: bytes, name: str = "园区.xlsx"
) -> httpx.Response:
    return await browser.post(
        f"/admin/import/{site_id}",
        data={"csrf_token": await browser.csrf()},
        files={"file": (name, data, XLSX_TYPE)},
    )


def key_in(page: httpx.Response) -> str:
    found = re.search(r'name="key" value="([^"]+)"', page.text)
    assert found, page.text[-1500:]
    return found.group(1)


GOOD = book([room()], [tenant()], [meter(start="12.5")])
BAD = book([room()], [tenant()], [meter("12345", start="12.5")])


async def test_upload_preview_confirm(admin_app: AdminApp) -> None:
    site, _ = await a_park()
    async with signed_in(admin_app) as browser:
        listing = await browser.get("/admin/import")
        assert "科技园" in listing.text and "别家园区" not in listing.text
        template = await browser.get("/admin/import/template")
        assert template.headers["content-type"] == XLSX_TYPE
        assert set(read_xlsx(template.content)) == {"房间", "租户", "仪表", "说明"}
        assert (await browser.get(f"/admin/import/{site.id}")).status_code == 200
        seen = await upload(browser, site.id, GOOD)
        assert seen.status_code == 200
        assert 'data-count="rooms">1<' in seen.text and "确认导入" in seen.text
        assert await Room.all().count() == 0
        done = await browser.post(
            f"/admin/import/{site.id}/commit",
            data={"csrf_token": await browser.csrf(), "key": key_in(seen)},
        )
        assert done.status_code == 200 and "data-imported" in done.text
        assert await Room.all().count() == 1 and await Meter.all().count() == 1
        log = await OperationLog.get(action="import.park")
        assert log.actor.startswith("staff:") and log.detail["file"] == "园区.xlsx"
        again = await browser.post(
            f"/admin/import/{site.id}/commit",
            data={"csrf_token": await browser.csrf(), "key": key_in(seen)},
        )
        assert again.status_code == 404 and "预览已过期" in again.text  # one commit per preview


async def test_errors_are_listed_and_nothing_can_be_confirmed(admin_app: AdminApp) -> None:
    site, _ = await a_park()
    async with signed_in(admin_app) as browser:
        seen = await upload(browser, site.id, BAD)
        assert 'data-problems="1"' in seen.text and "确认导入" not in seen.text
        assert "<td>仪表</td><td>2</td><td>表号/地址</td>" in seen.text
        assert "DL/T 645-2007 表地址应为 12 位数字" in seen.text
        not_excel = await upload(browser, site.id, b"PK\x03\x04 nonsense", "park.xlsx")
        assert not_excel.status_code == 422 and "无法读取文件" in not_excel.text
        csv = await upload(browser, site.id, b"a,b", "park.csv")
        assert csv.status_code == 422 and "请上传 .xlsx 文件" in csv.text
        try:  # Sanic refuses the body past REQUEST_MAX_SIZE: 413, or the connection closed
            too_big = await upload(browser, site.id, b"x" * (MAX_UPLOAD_BYTES + (2 << 20)))
            assert too_big.status_code == 413
        except httpx.TransportError:
            pass
        assert (await browser.get("/admin/import")).status_code == 200
    assert await Room.all().count() == 0


async def test_another_organisations_site_is_not_found(admin_app: AdminApp) -> None:
    site, other = await a_park()
    async with signed_in(admin_app) as browser:
        assert (await browser.get(f"/admin/import/{other.id}")).status_code == 404
        assert (await upload(browser, other.id, GOOD)).status_code == 404
        seen = await upload(browser, site.id, GOOD)
        stolen = await browser.post(  # a key of this site is no key for another
            f"/admin/import/{other.id}/commit",
            data={"csrf_token": await browser.csrf(), "key": key_in(seen)},
        )
        assert stolen.status_code == 404
    assert await Room.all().count() == 0


async def test_a_draft_belongs_to_the_staff_member_who_previewed_it(admin_app: AdminApp) -> None:
    site, _ = await a_park()
    async with signed_in(admin_app) as first:
        key = key_in(await upload(first, site.id, GOOD))
    async with signed_in(admin_app, StaffRole.SITE_ADMIN) as second:
        answer = await second.post(
            f"/admin/import/{site.id}/commit", data={"csrf_token": await second.csrf(), "key": key}
        )
        assert answer.status_code == 404
    assert await Room.all().count() == 0


async def test_a_viewer_may_not_import_and_csrf_is_required(admin_app: AdminApp) -> None:
    site, _ = await a_park()
    async with signed_in(admin_app, StaffRole.VIEWER) as viewer:
        assert (await viewer.get("/admin/import")).status_code == 403
        assert (await upload(viewer, site.id, GOOD)).status_code == 403
        assert "/admin/import" not in (await viewer.get("/admin/")).text
    async with signed_in(admin_app) as browser:
        no_token = await browser.post(
            f"/admin/import/{site.id}", files={"file": ("园区.xlsx", GOOD, XLSX_TYPE)}
        )
        assert no_token.status_code == 403
    assert await Room.all().count() == 0


async def test_a_site_changed_since_the_preview_is_checked_again(admin_app: AdminApp) -> None:
    site, _ = await a_park()
    async with signed_in(admin_app) as browser:
        key = key_in(await upload(browser, site.id, GOOD))
        building = await create_building(site, name="A栋")  # someone else, meanwhile
        await create_room(await create_floor(building, name="1"), name="101")
        answer = await browser.post(
            f"/admin/import/{site.id}/commit", data={"csrf_token": await browser.csrf(), "key": key}
        )
        assert answer.status_code == 422 and "本站点已有房间 A栋 101" in answer.text
        assert "确认导入" not in answer.text
    assert await Room.all().count() == 1 and await Meter.all().count() == 0
