"""Alarm settings (告警设置, /admin/alarm-settings): a site's alarm levels (amounts, repeats,
hours between repeats), its no-cut windows (night, weekends, statutory holidays by the
maintained calendar) and automatic trip/close; an account's own levels
(/admin/accounts/<id>/alarm-settings); the 保电 list (/admin/protected, Excel), whose meters
are switched on their own control card. Over server/metering/service/alarm_settings.py;
changes need the CONTROL action and are in the operation log."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    int_arg,
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
    xlsx,
)
from server.core.errors import NotFound, ValidationFailed
from server.core.excel import Sheet
from server.metering.service import alarm_settings as settings
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_alarm_settings")
SETTINGS = f"{PATH}/alarm-settings"
RELAY_LABELS = {"open": "已分闸", "closed": "已合闸", "unknown": "未知"}
KIND_LABELS = {"electricity": "电表", "water": "水表"}


def _form(request: Request) -> dict[str, str]:
    return {k: str(v[0] if isinstance(v, list) else v) for k, v in (request.form or {}).items()}


async def _page(request: Request, site_id: int | None, status: int = 200, **extra: object):  # type: ignore[no-untyped-def]
    sites = await staff_of(request).scope.sites()
    if not sites:
        raise NotFound("没有可管理的园区")
    site_id = site_id if site_id is not None else sites[0].id
    site_ids = [s.id for s in sites]
    view = extra.pop("view", None) or await settings.site_settings(site_ids, site_id)
    protected = await settings.protected_meters([site_id])
    return render(
        request, "alarm_settings/site.html", status=status, view=view, sites=sites,
        site_id=site_id, protected=protected, unknown_years=settings.UNKNOWN_YEAR_LABELS,
        relay=RELAY_LABELS, kinds=KIND_LABELS, **extra,
    )  # fmt: skip


@bp.get(SETTINGS)
@openapi.exclude()
@staff_required
async def site_page(request: Request) -> HTTPResponse:
    return await _page(request, int_arg(request, "site"), saved=arg(request, "saved"))


@bp.post(SETTINGS)
@openapi.exclude()
@staff_required
@requires(Action.CONTROL)
async def save_site(request: Request) -> HTTPResponse:
    site = (request.form or {}).get("site_id", "") or ""
    site_id = int(site) if site.isdigit() and len(site) < 10 else -1
    try:
        await settings.save_site_settings(
            await scope_ids(request), site_id, _form(request), actor=staff_of(request).actor
        )
    except ValidationFailed as exc:
        return await _page(request, site_id, status=exc.status_code, error=exc.message)
    return redirect(f"{SETTINGS}?site={site_id}&saved=1", status=303)


@bp.get(f"{PATH}/accounts/<account_id:int>/alarm-settings")
@openapi.exclude()
@staff_required
async def account_page(request: Request, account_id: int) -> HTTPResponse:
    view = await settings.account_settings(await scope_ids(request), account_id)
    return render(
        request, "alarm_settings/account.html", view=view, saved=arg(request, "saved"),
        unknown_years=settings.UNKNOWN_YEAR_LABELS,
    )  # fmt: skip


@bp.post(f"{PATH}/accounts/<account_id:int>/alarm-settings")
@openapi.exclude()
@staff_required
@requires(Action.CONTROL)
async def save_account(request: Request, account_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    try:
        await settings.save_account_settings(
            site_ids, account_id, _form(request), actor=staff_of(request).actor
        )
    except ValidationFailed as exc:
        view = await settings.account_settings(site_ids, account_id)
        return render(
            request, "alarm_settings/account.html", status=exc.status_code, view=view,
            error=exc.message, unknown_years=settings.UNKNOWN_YEAR_LABELS,
        )  # fmt: skip
    return redirect(f"{PATH}/accounts/{account_id}/alarm-settings?saved=1", status=303)


@bp.get(f"{PATH}/protected")
@openapi.exclude()
@staff_required
async def protected_list(request: Request) -> HTTPResponse:
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    meters = await settings.protected_meters(site_ids)
    if arg(request, "format") == "xlsx":
        rows = [
            (m.site, m.address, KIND_LABELS.get(m.kind, m.kind), m.room, m.account, m.tenant,
             RELAY_LABELS.get(m.relay_state, m.relay_state))
            for m in meters
        ]  # fmt: skip
        headers = ["园区", "表地址", "类型", "房间", "户号", "租户", "通断状态"]
        return xlsx("保电名单.xlsx", Sheet("保电名单", headers, rows, widths=(16, 16)))
    return render(
        request, "alarm_settings/protected.html", meters=meters, args=request.args,
        sites=await staff_of(request).scope.sites(), relay=RELAY_LABELS, kinds=KIND_LABELS,
    )  # fmt: skip
