"""The park's structure (/admin/sites, buildings, floors, rooms): organisation → sites →
buildings → floors → rooms. Lists, details and forms; every write is a POST with the CSRF
token, for roles that may change the structure, and answers with a redirect to the page it
changed. Everything is scoped: another organisation's ids answer 404."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    field,
    int_arg,
    paging,
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
    xlsx,
)
from server.core.errors import Forbidden, ValidationFailed
from server.core.excel import Cell, Sheet
from server.core.paging import Paging
from server.metering.service.balance import available_balance
from server.metering.service.devices.meter_views import MeterFilter, list_meters, meter_counts
from server.places.service import buildings, floors, rooms, sites
from server.places.service.buildings import Layout
from server.places.service.common import Status, checked_area
from server.places.vocabulary import ROOM_USE_LABELS, RoomUse
from server.staff.service.permissions import Action
from server.staff.service.signin import Staff

bp = admin_blueprint("admin_structure")
STATUS_LABELS = {Status.ACTIVE: "在用", Status.RETIRED: "已停用", Status.ALL: "全部"}
COMMON = {"use_labels": ROOM_USE_LABELS, "status_labels": STATUS_LABELS}


def _number(request: Request, name: str, label: str, default: int = 0) -> int:
    raw = field(request, name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"{label}须为整数") from None


def _use(raw: str) -> RoomUse:
    if raw not in RoomUse._value2member_map_:
        raise ValidationFailed("请选择房间用途")
    return RoomUse(raw)


def _layout(request: Request) -> Layout:
    return Layout(
        floors=_number(request, "floors", "楼层数"),
        rooms_per_floor=_number(request, "rooms_per_floor", "每层房间数"),
        first_floor=_number(request, "first_floor", "起始楼层", 1),
        pattern=field(request, "pattern") or "{floor}{nn}",
        area_m2=checked_area(field(request, "area_m2")),
        use=_use(field(request, "use") or RoomUse.OFFICE),
    )


def _to(path: str) -> HTTPResponse:
    return redirect(f"{PATH}{path}", status=303)


def _site_creator(staff: Staff) -> bool:
    """Sites are created by organisation-wide staff: a site-scoped member cannot."""
    return staff.may(Action.STRUCTURE) and staff.scope.site_ids is None


# -- sites ----------------------------------------------------------------------------------
@bp.get(f"{PATH}/sites")
@openapi.exclude()
@staff_required
async def site_list(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    status = Status.of(arg(request, "status"))
    page = await sites.list_sites(
        await scope_ids(request), q=arg(request, "q"), status=status, paging=paging(request)
    )
    superadmin = staff.scope.organisation_id is None
    return render(
        request, "structure/sites.html", page=page, q=arg(request, "q"), shown=status,
        request_args=request.args,
        may_create=_site_creator(staff),
        organisations=await sites.organisations() if superadmin else [], **COMMON,
    )  # fmt: skip


@bp.post(f"{PATH}/sites")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def site_create(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    if not _site_creator(staff):
        raise Forbidden("只有集团管理员可以新建站点")
    if staff.scope.organisation_id is None:  # superadmin: picks the organisation
        organisation_id = _number(request, "organisation_id", "所属组织")
    else:
        organisation_id = staff.scope.organisation_id or -1
    site_id = await sites.create_site(
        organisation_id=organisation_id, name=field(request, "name"),
        address=field(request, "address"), actor=staff.actor,
    )  # fmt: skip
    return _to(f"/sites/{site_id}")


@bp.get(f"{PATH}/sites/<site_id:int>")
@openapi.exclude()
@staff_required
async def site_page(request: Request, site_id: int) -> HTTPResponse:
    detail = await sites.site_detail(await scope_ids(request), site_id)
    return render(request, "structure/site.html", detail=detail, **COMMON)


@bp.post(f"{PATH}/sites/<site_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def site_edit(request: Request, site_id: int) -> HTTPResponse:
    await sites.edit_site(
        await scope_ids(request), site_id, name=field(request, "name"),
        address=field(request, "address"), actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/sites/{site_id}")


@bp.post(f"{PATH}/sites/<site_id:int>/retire")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def site_retire(request: Request, site_id: int) -> HTTPResponse:
    await sites.retire_site(await scope_ids(request), site_id, actor=staff_of(request).actor)
    return _to(f"/sites/{site_id}")


@bp.post(f"{PATH}/sites/<site_id:int>/buildings")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def building_create(request: Request, site_id: int) -> HTTPResponse:
    building_id = await buildings.create_building(
        await scope_ids(request), site_id, name=field(request, "name"),
        layout=_layout(request), actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/buildings/{building_id}")


# -- buildings and floors -------------------------------------------------------------------
@bp.get(f"{PATH}/buildings/<building_id:int>")
@openapi.exclude()
@staff_required
async def building_page(request: Request, building_id: int) -> HTTPResponse:
    view = await buildings.building_view(await scope_ids(request), building_id)
    return render(request, "structure/building.html", building=view, **COMMON)


@bp.post(f"{PATH}/buildings/<building_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def building_edit(request: Request, building_id: int) -> HTTPResponse:
    await buildings.edit_building(
        await scope_ids(request), building_id, name=field(request, "name"),
        actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/buildings/{building_id}")


@bp.post(f"{PATH}/buildings/<building_id:int>/retire")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def building_retire(request: Request, building_id: int) -> HTTPResponse:
    scope = await scope_ids(request)
    await buildings.retire_building(scope, building_id, actor=staff_of(request).actor)
    return _to(f"/buildings/{building_id}")


@bp.post(f"{PATH}/buildings/<building_id:int>/floors")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def floor_create(request: Request, building_id: int) -> HTTPResponse:
    await floors.add_floor(
        await scope_ids(request), building_id, name=field(request, "name"),
        sort_order=_number(request, "sort_order", "楼层顺序"), actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/buildings/{building_id}")


@bp.post(f"{PATH}/buildings/<building_id:int>/generate")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def floors_generate(request: Request, building_id: int) -> HTTPResponse:
    await buildings.add_floors(
        await scope_ids(request), building_id, layout=_layout(request),
        actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/buildings/{building_id}")


@bp.post(f"{PATH}/buildings/<building_id:int>/rooms")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def building_room_create(request: Request, building_id: int) -> HTTPResponse:
    await rooms.create_room(
        await scope_ids(request), _number(request, "floor_id", "楼层"), building_id=building_id,
        name=field(request, "name"), area_m2=field(request, "area_m2"),
        use=_use(field(request, "use")), actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/buildings/{building_id}")


@bp.get(f"{PATH}/floors/<floor_id:int>")
@openapi.exclude()
@staff_required
async def floor_page(request: Request, floor_id: int) -> HTTPResponse:
    scope = await scope_ids(request)
    facts = await floors.floor_facts(scope, floor_id)
    listed = rooms.RoomFilter(scope, floor_id=floor_id, status=Status.ALL)
    page = await rooms.list_rooms(listed, Paging.everything())
    counts = await meter_counts([r.id for r in page.items])
    return render(
        request, "structure/floor.html", floor=facts, rooms=page.items, counts=counts, **COMMON
    )


@bp.post(f"{PATH}/floors/<floor_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def floor_edit(request: Request, floor_id: int) -> HTTPResponse:
    await floors.edit_floor(
        await scope_ids(request), floor_id, name=field(request, "name"),
        sort_order=_number(request, "sort_order", "楼层顺序"), actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/floors/{floor_id}")


@bp.post(f"{PATH}/floors/<floor_id:int>/retire")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def floor_retire(request: Request, floor_id: int) -> HTTPResponse:
    await floors.retire_floor(await scope_ids(request), floor_id, actor=staff_of(request).actor)
    return _to(f"/floors/{floor_id}")


@bp.post(f"{PATH}/floors/<floor_id:int>/rooms")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def room_create(request: Request, floor_id: int) -> HTTPResponse:
    room_id = await rooms.create_room(
        await scope_ids(request), floor_id, name=field(request, "name"),
        area_m2=field(request, "area_m2"), use=_use(field(request, "use")),
        actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/rooms/{room_id}")


# -- rooms ----------------------------------------------------------------------------------
ROOM_HEADERS = [
    "站点",
    "楼栋",
    "楼层",
    "房间",
    "用途",
    "面积(m²)",
    "账户",
    "租户",
    "表计数",
    "状态",
]


def _room_cells(r: rooms.RoomRow, meters: int) -> list[Cell]:
    state = "已停用" if r.retired_at else "在用"
    return [
        r.site_name, r.building_name, r.floor_name, r.name, ROOM_USE_LABELS[r.use],
        r.area_m2, r.account_number, r.tenant_name, meters, state,
    ]  # fmt: skip


def _room_sheet(items: list[rooms.RoomRow], counts: dict[int, int]) -> Sheet:
    rows = [_room_cells(r, counts.get(r.id, 0)) for r in items]
    return Sheet("房间", ROOM_HEADERS, rows, widths=[16, 12, 8, 10, 8, 10, 14, 28, 8, 8])


@bp.get(f"{PATH}/rooms")
@openapi.exclude()
@staff_required
async def room_list(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await staff.scope.site_ids_of(int_arg(request, "site"))
    raw_use = arg(request, "use")
    listed = rooms.RoomFilter(
        site_ids, building_id=int_arg(request, "building"), floor_id=int_arg(request, "floor"),
        use=RoomUse(raw_use) if raw_use in RoomUse._value2member_map_ else None,
        status=Status.of(arg(request, "status")), q=arg(request, "q"),
    )  # fmt: skip
    if arg(request, "format") == "xlsx":
        page = await rooms.list_rooms(listed, Paging.everything())
        counts = await meter_counts([r.id for r in page.items])
        return xlsx("房间.xlsx", _room_sheet(list(page.items), counts))
    page = await rooms.list_rooms(listed, paging(request))
    return render(
        request, "structure/rooms.html", page=page, filter=listed, request_args=request.args,
        counts=await meter_counts([r.id for r in page.items]),
        site_id=int_arg(request, "site"), sites=await staff.scope.sites(),
        buildings=await buildings.building_choices(site_ids), **COMMON,
    )  # fmt: skip


@bp.get(f"{PATH}/rooms/<room_id:int>")
@openapi.exclude()
@staff_required
async def room_page(request: Request, room_id: int) -> HTTPResponse:
    scope = await scope_ids(request)
    detail = await rooms.room_detail(scope, room_id)
    meters = await list_meters(scope, Paging(), MeterFilter(status="", room_id=room_id))
    # The one balance staff see (server/metering/service/balance.py), never the raw wallet.
    available = await available_balance(detail.account.id) if detail.account else None
    return render(
        request, "structure/room.html", detail=detail, meters=meters.items,
        available_fen=available.alarm_fen if available else None, **COMMON,
    )  # fmt: skip


@bp.post(f"{PATH}/rooms/<room_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def room_edit(request: Request, room_id: int) -> HTTPResponse:
    await rooms.edit_room(
        await scope_ids(request), room_id, name=field(request, "name"),
        area_m2=field(request, "area_m2"), use=_use(field(request, "use")),
        actor=staff_of(request).actor,
    )  # fmt: skip
    return _to(f"/rooms/{room_id}")


@bp.post(f"{PATH}/rooms/<room_id:int>/retire")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def room_retire(request: Request, room_id: int) -> HTTPResponse:
    await rooms.retire_room(await scope_ids(request), room_id, actor=staff_of(request).actor)
    return _to(f"/rooms/{room_id}")
