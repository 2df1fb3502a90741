"""Review pages (issue #14): 换表, held readings and alarm records.

- `/admin/meters/<id>/replace` (Action.DEVICES): the old meter's final reading — read now
  (点抄 through the command service; the page follows the command until the meter answers)
  or entered — and the new meter's address, protocol, ratios and start reading; a
  confirmation page; then `billing.pipeline.process_replacement` (the swap, the final
  reading billed, alarms re-evaluated). `/admin/meters/<id>/chain` is the meter page's
  htmx panel: the meters of the installation (predecessor, successor) and the 30-day usage
  of the whole chain as a chart and a table.
- `/admin/readings/held`: readings ingest held for review, filtered and searched, as
  Excel too; accept (`billing.pipeline.process_held_acceptance`: billed once) or reject
  with a reason (`metering.service.held`), Action.DEVICES.
- `/admin/alarms`: the tenants' alarm records, searched and filtered, as Excel too.

Everything is scoped to the staff member's sites (another site's object answers 404).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    field,
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
from server.billing.pipeline import process_held_acceptance, process_replacement
from server.core.errors import Conflict, ValidationFailed
from server.core.excel import Sheet
from server.core.money import yuan
from server.core.paging import Paging
from server.metering.service.alarm_records import (
    ALARM_KIND_LABELS,
    LEVEL_LABELS,
    AlarmFilter,
    AlarmRow,
    list_alarms,
)
from server.metering.service.devices.meter_views import meter_detail
from server.metering.service.held import (
    REASON_LABELS,
    STATUS_LABELS,
    HeldFilter,
    HeldRow,
    held_reading,
    list_held,
    reject_held,
)
from server.metering.service.replacement_views import (
    ReplacementInput,
    chain_days,
    check_free,
    meter_chain,
    read_state,
    request_read,
)
from server.metering.vocabulary import PROTOCOL_LABELS, MeterKind, MeterProtocol
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_review")
METERS, HELD, ALARMS = f"{PATH}/meters", f"{PATH}/readings/held", f"{PATH}/alarms"
_KIND_PROTOCOLS = {
    MeterKind.ELECTRICITY: [p for p in MeterProtocol if p is not MeterProtocol.CJT188],
    MeterKind.WATER: [p for p in MeterProtocol if p is not MeterProtocol.DLT645],
}


def _form(request: Request) -> dict[str, str]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in dict(request.form or {}).items()}


def _today(request: Request) -> date:
    return datetime.now(UTC).astimezone(request.app.ctx.settings.tz).date()


# -- 换表 -------------------------------------------------------------------------------------
async def _replace_page(
    request: Request,
    meter_id: int,
    values: dict[str, str],
    error: str = "",
    status: int = 200,
) -> HTTPResponse:
    detail = await meter_detail(await scope_ids(request), meter_id)
    m = detail.meter
    if m.status.value != "active":
        raise Conflict("仪表已拆除，不能再换表")
    read = None
    command_id = int_arg(request, "read")
    if command_id is not None:
        read = await read_state(await scope_ids(request), meter_id, command_id)
        if read.total is not None and arg(request, "use") == "1":
            values = {**values, "old_final": f"{read.total}"}
    return render(
        request, "review/replace.html", status=status, d=detail, m=m, values=values,
        error=error, read=read, protocols=[(p.value, PROTOCOL_LABELS[p]) for p in
                                           _KIND_PROTOCOLS[m.kind]],
    )  # fmt: skip


@bp.get(f"{METERS}/<meter_id:int>/replace")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def replace_form(request: Request, meter_id: int) -> HTTPResponse:
    detail = await meter_detail(await scope_ids(request), meter_id)
    m = detail.meter
    values = {
        "protocol": m.protocol.value, "unit": str(m.unit or ""), "ct_ratio": str(m.ct_ratio),
        "pt_ratio": str(m.pt_ratio), "model": m.model, "new_first": "0",
    }  # fmt: skip
    return await _replace_page(request, meter_id, values)


@bp.post(f"{METERS}/<meter_id:int>/replace/read")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def replace_read(request: Request, meter_id: int) -> HTTPResponse:
    command_id = await request_read(
        await scope_ids(request), meter_id, actor=staff_of(request).actor
    )
    return redirect(f"{METERS}/{meter_id}/replace?read={command_id}", status=303)


@bp.get(f"{METERS}/<meter_id:int>/replace/read")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def replace_read_state(request: Request, meter_id: int) -> HTTPResponse:
    """The htmx fragment that follows the READ command until the meter answers."""
    state = await read_state(await scope_ids(request), meter_id, int_arg(request, "command") or 0)
    return render(request, "review/_read.html", read=state, meter_id=meter_id)


@bp.post(f"{METERS}/<meter_id:int>/replace")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def replace_submit(request: Request, meter_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    detail = await meter_detail(site_ids, meter_id)  # NotFound outside the scope
    form = _form(request)
    try:
        data = ReplacementInput.of(form, detail.meter.kind)
        await check_free(site_ids, meter_id, data)
    except (ValidationFailed, Conflict) as exc:
        return await _replace_page(request, meter_id, form, exc.message, exc.status_code)
    if form.get("confirm") != "1":
        last = detail.last_reading
        closing = None
        if last is not None:
            closing = (data.old_final - last.total) * detail.meter.ct_ratio * detail.meter.pt_ratio
        return render(
            request, "review/replace_confirm.html", d=detail, m=detail.meter, data=data,
            values=form, closing=closing,
        )  # fmt: skip
    try:
        result = await process_replacement(
            meter_id, at=datetime.now(UTC), new_meter=data.new_meter(),
            old_final_reading=data.old_final, new_first_reading=data.new_first,
            actor=staff_of(request).actor,
        )  # fmt: skip
    except (ValidationFailed, Conflict) as exc:
        return await _replace_page(request, meter_id, form, exc.message, exc.status_code)
    return redirect(f"{METERS}/{result.new_meter_id}", status=303)


@bp.get(f"{METERS}/<meter_id:int>/chain")
@openapi.exclude()
@staff_required
async def meter_chain_panel(request: Request, meter_id: int) -> HTTPResponse:
    """The meter page's panel: the installation's meters and their 30 days, continuous."""
    site_ids = await scope_ids(request)
    chain = await meter_chain(site_ids, meter_id)
    days = await chain_days(chain, end=_today(request))
    unit = "kWh"
    detail = await meter_detail(site_ids, meter_id)
    if detail.meter.kind is MeterKind.WATER:
        unit = "m³"
    chart = {
        "days": [d.day.strftime("%m-%d") for d in days],
        "quantity": [str(d.quantity) for d in days],
        "unit": unit,
    }
    return render(
        request, "review/_chain.html", chain=chain, days=days, meter_id=meter_id, unit=unit,
        chart=chart,
    )  # fmt: skip


# -- held readings ------------------------------------------------------------------------------
def _status(request: Request) -> str:
    """The status filter: open by default, `all` for every status (a blank value is dropped
    from the query string, so it cannot mean "every")."""
    status = arg(request, "status")
    return "" if status == "all" else status or HeldFilter().status


def _held_filter(request: Request) -> HeldFilter:
    return HeldFilter(
        site_id=int_arg(request, "site"), meter_id=int_arg(request, "meter"),
        reason=arg(request, "reason"),
        status=_status(request),
        q=arg(request, "q"),
    )  # fmt: skip


def _held_sheet(request: Request, rows: list[HeldRow]) -> Sheet:
    return Sheet(
        "待审读数",
        ["编号", "站点", "仪表", "房间", "账户", "读数时间", "读数", "原因", "说明", "来源",
         "状态", "处理人", "处理时间", "处理结果"],
        [
            [
                h.id, h.site_name, h.meter_address, h.room, h.account,
                local_time(request, h.taken_at), h.total, h.reason_label, h.reason, h.source_label,
                h.status_label, h.decided_by or "", local_time(request, h.decided_at),
                h.decision or "",
            ]
            for h in rows
        ],
        widths=[8, 14, 16, 18, 22, 18, 14, 10, 40, 10, 8, 12, 18, 30],
    )  # fmt: skip


@bp.get(HELD)
@openapi.exclude()
@staff_required
async def held_list(request: Request) -> HTTPResponse:
    f = _held_filter(request)
    scope = staff_of(request).scope
    site_ids = await scope.site_ids_of(f.site_id)
    if arg(request, "format") == "xlsx":
        every = await list_held(site_ids, Paging.everything(), f)
        return xlsx("待审读数.xlsx", _held_sheet(request, list(every.items)))
    page = await list_held(site_ids, paging(request), f)
    return render(
        request, "review/held.html", page=page, f=f, sites=await scope.sites(),
        reasons=REASON_LABELS, statuses=STATUS_LABELS, args=request.args, done=arg(request, "done"),
    )  # fmt: skip


def _back(request: Request, done: str) -> HTTPResponse:
    """Back to the list the staff member came from (its filters kept), saying what happened."""
    back = urlsplit(field(request, "back"))
    path = back.path if back.path == HELD and not back.netloc and not back.scheme else HELD
    pairs = [(k, v) for k, v in parse_qsl(back.query) if k != "done"] + [("done", done)]
    return redirect(f"{path}?{urlencode(pairs)}", status=303)


@bp.post(f"{HELD}/<held_id:int>/accept")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def held_accept(request: Request, held_id: int) -> HTTPResponse:
    result = await process_held_acceptance(
        await scope_ids(request), held_id, actor=staff_of(request).actor, now=datetime.now(UTC)
    )
    return _back(request, f"accepted-{result.held_id}")


@bp.post(f"{HELD}/<held_id:int>/reject")
@openapi.exclude()
@staff_required
@requires(Action.DEVICES)
async def held_reject(request: Request, held_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    await held_reading(site_ids, held_id)  # NotFound first, whatever the form says
    await reject_held(
        site_ids, held_id, actor=staff_of(request).actor, reason=field(request, "reason"),
        now=datetime.now(UTC),
    )  # fmt: skip
    return _back(request, f"rejected-{held_id}")


# -- alarm records ------------------------------------------------------------------------------
def _date_arg(request: Request, name: str) -> date | None:
    try:
        return date.fromisoformat(arg(request, name))
    except ValueError:
        return None


def _alarm_filter(request: Request) -> AlarmFilter:
    return AlarmFilter(
        site_id=int_arg(request, "site"), kind=arg(request, "kind"),
        level=int_arg(request, "level"), start=_date_arg(request, "start"),
        end=_date_arg(request, "end"), q=arg(request, "q"),
    )  # fmt: skip


def _alarm_sheet(request: Request, rows: list[AlarmRow]) -> Sheet:
    return Sheet(
        "告警记录",
        ["时间", "站点", "账户", "租户", "房间", "类型", "级别", "当时余额（元）", "内容",
         "通知时间"],
        [
            [
                local_time(request, a.created_at), a.site_name, a.account_number, a.tenant_name,
                a.room, a.kind_label, a.level_label, yuan(a.balance_fen), a.message,
                local_time(request, a.notified_at),
            ]
            for a in rows
        ],
        widths=[18, 14, 12, 24, 18, 10, 12, 14, 40, 18],
    )  # fmt: skip


@bp.get(ALARMS)
@openapi.exclude()
@staff_required
async def alarms(request: Request) -> HTTPResponse:
    f = _alarm_filter(request)
    scope = staff_of(request).scope
    site_ids = await scope.site_ids_of(f.site_id)
    tz = request.app.ctx.settings.tz
    if arg(request, "format") == "xlsx":
        every = await list_alarms(site_ids, Paging.everything(), f, tz=tz)
        return xlsx("告警记录.xlsx", _alarm_sheet(request, list(every.items)))
    page = await list_alarms(site_ids, paging(request), f, tz=tz)
    return render(
        request, "review/alarms.html", page=page, f=f, sites=await scope.sites(),
        kinds=ALARM_KIND_LABELS, levels=LEVEL_LABELS, args=request.args,
    )  # fmt: skip
