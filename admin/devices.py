"""The devices pages (/admin/gateways, /admin/meters): buses and gateways, meters.

Each kind has the admin's rhythm: a filtered, searchable, paged list (meters also as Excel),
a detail page with its edit form, and an action with a confirmation (retire a gateway,
remove a meter). Pages call `server.metering.service.devices` with the staff member's site
ids, so an object of another organisation or site answers 404; changes need Action.DEVICES.
A form that does not pass comes back with the staff member's input and the reason (422).
"""

from __future__ import annotations

from typing import Any

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    int_arg,
    local_time,
    paging,
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
    xlsx,
)
from server.core.errors import Conflict, ShuidianError, ValidationFailed
from server.core.excel import Sheet
from server.core.paging import Paging
from server.metering.service.devices.gateways import (
    GATEWAY_KIND_LABELS,
    GatewayInput,
    create_gateway,
    edit_gateway,
    gateway_choices,
    gateway_detail,
    list_gateways,
    retire_gateway,
)
from server.metering.service.devices.meter_views import (
    BILLING_LABELS,
    STATUS_LABELS,
    MeterFilter,
    MeterRow,
    list_meters,
    meter_detail,
    room_choices,
)
from server.metering.service.devices.meters import (
    MeterInput,
    edit_meter,
    register_meter,
    remove_meter,
)
from server.metering.vocabulary import KIND_LABELS, PROTOCOL_LABELS
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_devices")
GATEWAYS, METERS = f"{PATH}/gateways", f"{PATH}/meters"


def _form(request: Request) -> dict[str, str]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in dict(request.form or {}).items()}


def _labels() -> dict[str, Any]:
    return {
        "gateway_kinds": GATEWAY_KIND_LABELS, "meter_kinds": KIND_LABELS,
        "protocols": PROTOCOL_LABELS, "billings": BILLING_LABELS, "statuses": STATUS_LABELS,
    }  # fmt: skip


# -- gateways ---------------------------------------------------------------------------------
@bp.get(GATEWAYS)
@openapi.exclude()
@staff_required
async def gateways(request: Request) -> HTTPResponse:
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    q, kind, retired = arg(request, "q"), arg(request, "kind"), arg(request, "retired") == "1"
    page = await list_gateways(site_ids, paging(request), q=q, kind=kind, retired=retired)
    return render(
        request, "gateways.html", page=page, q=q, kind=kind, retired=retired,
        site_id=int_arg(request, "site"), sites=await staff_of(request).scope.sites(),
        args=request.args, **_labels(),
    )  # fmt: skip


async def _gateway_form(
    request: Request, values: dict[str, str], error: str = "", status: int = 200
) -> HTTPResponse:
    return render(
        request, "gateway_new.html", status=status, values=values, error=error,
        sites=await staff_of(request).scope.sites(), **_labels(),
    )  # fmt: skip


@bp.get(f"{GATEWAYS}/new")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def gateway_new(request: Request) -> HTTPResponse:
    return await _gateway_form(request, {"kind": next(iter(GATEWAY_KIND_LABELS)).value})


@bp.post(f"{GATEWAYS}/new")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def gateway_create(request: Request) -> HTTPResponse:
    form = _form(request)
    site_id = int(form["site_id"]) if form.get("site_id", "").isdigit() else -1
    try:
        gateway_id = await create_gateway(
            await scope_ids(request), site_id, GatewayInput.of(form),
            actor=staff_of(request).actor,
        )  # fmt: skip
    except (ValidationFailed, Conflict) as exc:
        return await _gateway_form(request, form, exc.message, exc.status_code)
    return redirect(f"{GATEWAYS}/{gateway_id}", status=303)


async def _gateway_page(
    request: Request,
    gateway_id: int,
    values: dict[str, str] | None = None,
    error: ShuidianError | None = None,
) -> HTTPResponse:
    gw = await gateway_detail(await scope_ids(request), gateway_id)
    shown = values or {"code": gw.code, "name": gw.name, "kind": gw.kind.value,
                       "host": gw.host, "port": str(gw.port or "")}  # fmt: skip
    return render(
        request, "gateway.html", status=error.status_code if error else 200, gw=gw,
        values=shown, error=error.message if error else "",
        last_seen=local_time(request, gw.last_seen_at), retired=local_time(request, gw.retired_at),
        **_labels(),
    )  # fmt: skip


@bp.get(f"{GATEWAYS}/<gateway_id:int>")
@openapi.exclude()
@staff_required
async def gateway(request: Request, gateway_id: int) -> HTTPResponse:
    return await _gateway_page(request, gateway_id)


@bp.post(f"{GATEWAYS}/<gateway_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def gateway_edit(request: Request, gateway_id: int) -> HTTPResponse:
    form = _form(request)
    site_ids = await scope_ids(request)
    try:
        data = GatewayInput.of(form)
        await edit_gateway(site_ids, gateway_id, data, actor=staff_of(request).actor)
    except (ValidationFailed, Conflict) as exc:
        return await _gateway_page(request, gateway_id, form, exc)
    return redirect(f"{GATEWAYS}/{gateway_id}", status=303)


@bp.post(f"{GATEWAYS}/<gateway_id:int>/retire")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def gateway_retire(request: Request, gateway_id: int) -> HTTPResponse:
    await retire_gateway(await scope_ids(request), gateway_id, actor=staff_of(request).actor)
    return redirect(f"{GATEWAYS}/{gateway_id}", status=303)


# -- meters -----------------------------------------------------------------------------------
def _filter(request: Request) -> MeterFilter:
    status = arg(request, "status")
    return MeterFilter(
        site_id=int_arg(request, "site"), gateway_id=int_arg(request, "gateway"),
        kind=arg(request, "kind"), protocol=arg(request, "protocol"),
        online=arg(request, "online"),
        status=status if "status" in request.args else MeterFilter().status,
        q=arg(request, "q"),
    )  # fmt: skip


def _sheet(request: Request, rows: list[MeterRow]) -> Sheet:
    headers = ["编号", "站点", "类型", "协议", "表地址", "从站地址", "网关", "型号", "CT", "PT",
               "计费方式", "房间", "账户", "状态", "在线", "继电器", "最后抄表"]  # fmt: skip
    return Sheet(
        "仪表",
        headers,
        [
            [
                m.id,
                m.site_name,
                m.kind_label,
                m.protocol_label,
                m.address,
                m.unit or None,
                m.gateway_code,
                m.model,
                m.ct_ratio,
                m.pt_ratio,
                m.billing_label,
                m.room,
                m.account,
                m.status_label,
                "在线" if m.online else "离线",
                m.relay_label,
                local_time(request, m.last_reading_at),
            ]
            for m in rows
        ],
        widths=[8, 14, 6, 18, 16, 8, 14, 12, 6, 6, 10, 18, 22, 8, 6, 8, 18],
    )


@bp.get(METERS)
@openapi.exclude()
@staff_required
async def meters(request: Request) -> HTTPResponse:
    f = _filter(request)
    scope = staff_of(request).scope
    site_ids = await scope.site_ids_of(f.site_id)
    if arg(request, "format") == "xlsx":
        every = await list_meters(site_ids, Paging.everything(), f)
        return xlsx("仪表.xlsx", _sheet(request, list(every.items)))
    page = await list_meters(site_ids, paging(request), f)
    return render(
        request, "meters.html", page=page, f=f, sites=await scope.sites(),
        gateways=await gateway_choices(site_ids), args=request.args, **_labels(),
    )  # fmt: skip


async def _meter_form(
    request: Request, values: dict[str, str], error: str = "", status: int = 200
) -> HTTPResponse:
    site_ids = await scope_ids(request)
    return render(
        request, "meter_new.html", status=status, values=values, error=error,
        gateways=await gateway_choices(site_ids), rooms=await room_choices(site_ids),
        **_labels(),
    )  # fmt: skip


@bp.get(f"{METERS}/new")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def meter_new(request: Request) -> HTTPResponse:
    values = {
        "kind": "electricity", "protocol": "dlt645", "ct_ratio": "1", "pt_ratio": "1",
        "billing": next(iter(BILLING_LABELS)).value, "gateway_id": arg(request, "gateway"),
    }  # fmt: skip
    return await _meter_form(request, values)


@bp.post(f"{METERS}/new")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def meter_create(request: Request) -> HTTPResponse:
    form = _form(request)
    try:
        meter_id = await register_meter(
            await scope_ids(request), MeterInput.of(form), actor=staff_of(request).actor
        )
    except (ValidationFailed, Conflict) as exc:
        return await _meter_form(request, form, exc.message, exc.status_code)
    return redirect(f"{METERS}/{meter_id}", status=303)


def _values_of(m: MeterRow) -> dict[str, str]:
    return {
        "kind": m.kind.value, "protocol": m.protocol.value, "address": m.address,
        "unit": str(m.unit or ""), "gateway_id": str(m.gateway_id or ""),
        "room_id": str(m.room_id or ""), "model": m.model, "ct_ratio": str(m.ct_ratio),
        "pt_ratio": str(m.pt_ratio), "billing": m.billing.value,
    }  # fmt: skip


async def _meter_page(
    request: Request,
    meter_id: int,
    values: dict[str, str] | None = None,
    error: ShuidianError | None = None,
) -> HTTPResponse:
    site_ids = await scope_ids(request)
    detail = await meter_detail(site_ids, meter_id)
    m = detail.meter
    return render(
        request, "meter.html", status=error.status_code if error else 200, d=detail, m=m,
        values=values or _values_of(m), error=error.message if error else "",
        gateways=await gateway_choices([m.site_id]),
        rooms=await room_choices([m.site_id]),
        **_labels(),
    )  # fmt: skip


@bp.get(f"{METERS}/<meter_id:int>")
@openapi.exclude()
@staff_required
async def meter(request: Request, meter_id: int) -> HTTPResponse:
    return await _meter_page(request, meter_id)


@bp.post(f"{METERS}/<meter_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def meter_edit(request: Request, meter_id: int) -> HTTPResponse:
    form = _form(request)
    site_ids = await scope_ids(request)
    try:
        await edit_meter(site_ids, meter_id, MeterInput.of(form), actor=staff_of(request).actor)
    except (ValidationFailed, Conflict) as exc:
        return await _meter_page(request, meter_id, form, exc)
    return redirect(f"{METERS}/{meter_id}", status=303)


@bp.post(f"{METERS}/<meter_id:int>/remove")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def meter_remove(request: Request, meter_id: int) -> HTTPResponse:
    await remove_meter(await scope_ids(request), meter_id, actor=staff_of(request).actor)
    return redirect(f"{METERS}/{meter_id}", status=303)
