"""The structure pages over the real app: scoped lists and 404s across organisations,
create/edit/retire through the forms, the generator, retire refused with an open account,
the Excel export, CSRF refusal, and the viewer refused on every write."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openpyxl
import pytest

from server.audit.models import OperationLog
from server.places.models import Building, Floor, Room, RoomUse, Site
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, Browser, create_staff
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_meter,
    create_organisation,
    create_room,
    create_site,
)


@asynccontextmanager
async def signed_in(admin_app: AdminApp, username: str) -> AsyncIterator[Browser]:
    async with admin_app.browser() as browser:
        assert (await browser.sign_in(username)).status_code == 303
        yield browser


async def a_room_of(site: Site, **kw: object) -> Room:
    return await create_room(await create_floor(await create_building(site)), **kw)


async def test_an_org_admin_builds_a_site_through_the_forms(admin_app: AdminApp) -> None:
    org = await create_organisation()
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    async with signed_in(admin_app, "boss") as b:
        token = await b.csrf()
        made = await b.post(
            "/admin/sites", data={"csrf_token": token, "name": "滨江园", "address": "江南大道 1 号"}
        )
        assert made.status_code == 303
        site = await Site.get(name="滨江园")
        assert site.organisation_id == org.id  # type: ignore[attr-defined]
        built = await b.post(f"/admin/sites/{site.id}/buildings", data={
            "csrf_token": token, "name": "1号楼", "floors": "3", "rooms_per_floor": "5",
            "pattern": "{floor}{nn}", "area_m2": "60.5", "use": "shop",
        })  # fmt: skip
        assert built.status_code == 303
        building = await Building.get(site_id=site.id)
        assert built.headers["location"] == f"/admin/buildings/{building.id}"
        page = await b.get(f"/admin/buildings/{building.id}")
        assert page.status_code == 200 and ">305<" in page.text and "3层" in page.text
        assert await Room.filter(floor__building_id=building.id, use=RoomUse.SHOP).count() == 15
        again = await b.post(
            f"/admin/sites/{site.id}/buildings", data={"csrf_token": token, "name": "1号楼"}
        )
        assert again.status_code == 409 and "1号楼" in again.text
        floor = await Floor.get(building_id=building.id, name="2层")
        added = await b.post(f"/admin/buildings/{building.id}/rooms", data={
            "csrf_token": token, "floor_id": str(floor.id), "name": "2A", "area_m2": "12",
            "use": "common",
        })  # fmt: skip
        assert added.status_code == 303
        elsewhere = await Building.create(site=site, name="2号楼")
        other = await Floor.create(building=elsewhere, name="1层")
        wrong = await b.post(f"/admin/buildings/{building.id}/rooms", data={
            "csrf_token": token, "floor_id": str(other.id), "name": "X1", "use": "common",
        })  # fmt: skip
        assert wrong.status_code == 404
        room = await Room.get(name="2A")
        edited = await b.post(f"/admin/rooms/{room.id}", data={
            "csrf_token": token, "name": "2B", "area_m2": "13.25", "use": "office",
        })  # fmt: skip
        assert edited.status_code == 303
        await room.refresh_from_db()
        assert (room.name, str(room.area_m2), room.use) == ("2B", "13.25", RoomUse.OFFICE)
        gone = await b.post(f"/admin/rooms/{room.id}/retire", data={"csrf_token": token})
        assert gone.status_code == 303
        await room.refresh_from_db()
        assert room.retired_at is not None
        assert "已停用" in (await b.get(f"/admin/rooms/{room.id}")).text
    actions = [
        log.action for log in await OperationLog.filter(actor__startswith="staff:").order_by("id")
    ]
    assert [a for a in actions if not a.startswith("staff.")] == [
        "site.create", "building.create", "room.create", "room.edit", "room.retire",
    ]  # fmt: skip


async def test_a_site_admin_cannot_create_sites(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    await create_staff("keeper", StaffRole.SITE_ADMIN, org, [site])
    async with signed_in(admin_app, "keeper") as b:
        assert "新建站点" not in (await b.get("/admin/sites")).text
        refused = await b.post("/admin/sites", data={"csrf_token": await b.csrf(), "name": "X"})
        assert refused.status_code == 403
    assert await Site.all().count() == 1


async def test_a_superadmin_picks_the_organisation(admin_app: AdminApp) -> None:
    org = await create_organisation(name="远方集团")
    await create_staff("root", StaffRole.SUPERADMIN)
    async with signed_in(admin_app, "root") as b:
        assert "远方集团" in (await b.get("/admin/sites")).text
        made = await b.post("/admin/sites", data={
            "csrf_token": await b.csrf(), "name": "远方园", "organisation_id": str(org.id),
        })  # fmt: skip
        assert made.status_code == 303
    assert (await Site.get(name="远方园")).organisation_id == org.id  # type: ignore[attr-defined]


async def test_other_organisations_objects_answer_404(admin_app: AdminApp) -> None:
    org_a, org_b = await create_organisation(), await create_organisation()
    mine, theirs = await create_site(org_a, name="甲园"), await create_site(org_b, name="乙园")
    await a_room_of(mine, name="A101")
    room = await a_room_of(theirs, name="B101")
    floor = await Floor.get(id=room.floor_id)  # type: ignore[attr-defined]
    building_id = floor.building_id  # type: ignore[attr-defined]
    await create_staff("alice", StaffRole.ORG_ADMIN, org_a)
    async with signed_in(admin_app, "alice") as b:
        token = await b.csrf()
        listed = await b.get("/admin/sites")
        assert "甲园" in listed.text and "乙园" not in listed.text
        rooms = await b.get("/admin/rooms")
        assert "A101" in rooms.text and "B101" not in rooms.text
        assert (await b.get(f"/admin/rooms?site={theirs.id}")).status_code == 404
        for path in (f"/admin/sites/{theirs.id}", f"/admin/buildings/{building_id}",
                     f"/admin/floors/{floor.id}", f"/admin/rooms/{room.id}"):  # fmt: skip
            assert (await b.get(path)).status_code == 404, path
            retire = await b.post(f"{path}/retire", data={"csrf_token": token})
            assert retire.status_code == 404, path
            edit = await b.post(path, data={"csrf_token": token, "name": "偷改", "use": "shop"})
            assert edit.status_code == 404, path
        b_path, f_path = f"/admin/buildings/{building_id}", f"/admin/floors/{floor.id}"
        for path in (f"/admin/sites/{theirs.id}/buildings", f"{b_path}/floors",
                     f"{b_path}/generate", f"{b_path}/rooms", f"{f_path}/rooms"):  # fmt: skip
            made = await b.post(path, data={
                "csrf_token": token, "name": "新", "use": "shop", "floors": "1",
                "floor_id": str(floor.id),
            })  # fmt: skip
            assert made.status_code == 404, path
    assert not await Room.filter(name="偷改").exists()
    assert await Room.filter(retired_at__isnull=False).count() == 0


async def test_retire_is_refused_naming_the_open_account(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    room = await a_room_of(site, name="808")
    await create_account(room=room, site=site, number="H000808", tenant_name="海风书店")
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    async with signed_in(admin_app, "boss") as b:
        page = await b.get(f"/admin/rooms/{room.id}")
        assert "H000808" in page.text and "海风书店" in page.text and "data-confirm" in page.text
        refused = await b.post(
            f"/admin/rooms/{room.id}/retire", data={"csrf_token": await b.csrf()}
        )
        assert (
            refused.status_code == 409 and "H000808" in refused.text and "海风书店" in refused.text
        )
    await room.refresh_from_db()
    assert room.retired_at is None


async def test_the_room_list_exports_what_the_filter_selects(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org, name="出口园")
    floor = await create_floor(await create_building(site, name="A座"), name="1层")
    for name in ("101", "102", "103"):
        await create_room(floor, name=name)
    account = await create_account(
        room=await Room.get(name="102"), site=site, number="H1", tenant_name="=cmd|calc"
    )
    await create_meter(account)
    await create_staff("clerk", StaffRole.VIEWER, org)
    async with signed_in(admin_app, "clerk") as b:
        page = await b.get("/admin/rooms?q=10&per_page=2")
        assert page.status_code == 200 and "共 3 条" in page.text
        export = await b.get("/admin/rooms?q=10&per_page=2&format=xlsx")
    assert export.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(export.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("站点", "楼栋", "楼层", "房间")
    assert [r[3] for r in rows[1:]] == ["101", "102", "103"]
    assert rows[2][6:9] == ("H1", "'=cmd|calc", 1)


async def test_a_write_without_the_csrf_token_is_refused(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    room = await a_room_of(site)
    await create_staff("boss", StaffRole.ORG_ADMIN, org)
    async with signed_in(admin_app, "boss") as b:
        assert (await b.post(f"/admin/rooms/{room.id}/retire")).status_code == 403
        assert (await b.post("/admin/sites", data={"name": "无令牌园"})).status_code == 403
    await room.refresh_from_db()
    assert room.retired_at is None and not await Site.exists(name="无令牌园")


@pytest.mark.parametrize("role", [StaffRole.VIEWER, StaffRole.FINANCE, StaffRole.OPERATOR])
async def test_roles_without_structure_are_refused_every_write(
    admin_app: AdminApp, role: StaffRole
) -> None:
    org = await create_organisation()
    site = await create_site(org)
    room = await a_room_of(site)
    floor = await Floor.get(id=room.floor_id)  # type: ignore[attr-defined]
    b_id = floor.building_id  # type: ignore[attr-defined]
    await create_staff("reader", role, org)
    async with signed_in(admin_app, "reader") as b:
        token = await b.csrf()
        page = await b.get(f"/admin/rooms/{room.id}")
        assert page.status_code == 200 and "停用房间" not in page.text
        for path in ("/admin/sites", f"/admin/sites/{site.id}", f"/admin/sites/{site.id}/retire",
                     f"/admin/sites/{site.id}/buildings", f"/admin/buildings/{b_id}",
                     f"/admin/buildings/{b_id}/retire", f"/admin/buildings/{b_id}/floors",
                     f"/admin/buildings/{b_id}/generate", f"/admin/buildings/{b_id}/rooms",
                     f"/admin/floors/{floor.id}",
                     f"/admin/floors/{floor.id}/retire", f"/admin/floors/{floor.id}/rooms",
                     f"/admin/rooms/{room.id}", f"/admin/rooms/{room.id}/retire"):  # fmt: skip
            answer = await b.post(path, data={"csrf_token": token, "name": "改", "use": "shop"})
            assert answer.status_code == 403, path
    assert not await OperationLog.filter(action__not_in=["staff.create", "staff.signin"]).exists()
