"""Tariff plans (资费, /admin/tariffs): the list of the scope's plans (Excel), a plan's page
(its versions, a price preview for a sample month, the accounts on it), a version's page (the
set-price batch that wrote it into the meter-billed meters, with every meter's result), the
editor for a new plan or a price change (effective now or at a set time), and assigning a
plan to the open accounts of a building, a floor or a search. Every change goes through
server/tariffs/service (validated by the engine itself, in the operation log) and needs the
TARIFFS action."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.tariff_form import BANDS, SEASONS, SHAPES, STARTER, form_of, spec_of
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
from server.core.errors import NotFound, ShuidianError, ValidationFailed
from server.core.excel import Sheet
from server.metering.service import batches
from server.staff.service.permissions import Action
from server.tariffs import push
from server.tariffs import service as tariffs
from server.tariffs.service import KIND_LABELS, VERSION_STATE_LABELS, TariffKind

bp = admin_blueprint("admin_tariffs")
TARIFFS = f"{PATH}/tariffs"
UNITS = {TariffKind.ELECTRICITY: "kWh", TariffKind.WATER: "m³"}


def _now() -> datetime:
    return datetime.now().astimezone()


def _form(request: Request) -> dict[str, str]:
    return {k: str(v[0] if isinstance(v, list) else v) for k, v in (request.form or {}).items()}


def _month(text: str) -> date:
    try:
        return date.fromisoformat(f"{text}-01") if text else date.today().replace(day=1)
    except ValueError:
        raise ValidationFailed("示例月份格式应为 YYYY-MM", month=text) from None


def _decimal(text: str, default: str, label: str) -> Decimal:
    try:
        value = Decimal(text or default)
    except InvalidOperation:
        raise ValidationFailed(f"{label}必须是数字", value=text) from None
    if not value.is_finite() or value < 0 or value > Decimal("1e9"):
        raise ValidationFailed(f"{label}必须是不小于零的数字", value=text)
    return value


def _when(request: Request, text: str) -> datetime | None:
    """An effective time typed in the park's zone ('' = now)."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("生效时间格式无效", effective_from=text) from None
    return at.replace(tzinfo=request.app.ctx.settings.tz) if at.utcoffset() is None else at


def _preview(values: dict[str, str], unit: str) -> tuple[Any, str]:
    """(preview, error) of the editor's plan for its sample month, quantity and kVA / kW."""
    try:
        result = tariffs.preview(
            spec_of(values, unit), _month(values.get("month", "")),
            _decimal(values.get("quantity", ""), "1000", "示例用量"),
            _decimal(values.get("basic_amount", ""), "100", "容量/需量"),
        )  # fmt: skip
    except ShuidianError as exc:
        return None, exc.message
    return result, ""


@bp.get(TARIFFS)
@openapi.exclude()
@staff_required
async def plan_list(request: Request) -> HTTPResponse:
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    found = await tariffs.plans(
        site_ids, now=_now(), kind=arg(request, "kind"), search=arg(request, "q")
    )
    if arg(request, "format") == "xlsx":
        rows = [
            (p.site_name, p.name, KIND_LABELS[p.kind], p.current.summary if p.current else "",
             p.current.effective_from.astimezone(request.app.ctx.settings.tz).replace(tzinfo=None)
             if p.current else None, p.pending, p.assigned)
            for p in found
        ]  # fmt: skip
        headers = ["园区", "方案", "类型", "当前价格", "生效时间", "待生效版本", "账户数"]
        return xlsx("价格方案.xlsx", Sheet("价格方案", headers, rows, widths=(16, 20, 8, 60)))
    return render(
        request, "tariffs/list.html", plans=found, args=request.args, kinds=KIND_LABELS,
        sites=await staff_of(request).scope.sites(),
    )  # fmt: skip


def _editor(request: Request, status: int = 200, **context: Any) -> HTTPResponse:
    values = context.pop("values")
    unit = context.pop("unit", "kWh")
    previewed, preview_error = _preview(values, unit) if values.get("shape") else (None, "")
    return render(
        request, "tariffs/editor.html", status=status, values=values, shapes=SHAPES,
        bands=BANDS, seasons=range(SEASONS), kinds=KIND_LABELS, unit=unit, preview=previewed,
        preview_error=preview_error, **context,
    )  # fmt: skip


@bp.get(f"{TARIFFS}/new")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def new_form(request: Request) -> HTTPResponse:
    sites = await staff_of(request).scope.sites()
    return _editor(request, values=dict(STARTER), sites=sites, plan=None)


@bp.post(f"{TARIFFS}/new")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def create(request: Request) -> HTTPResponse:
    values = _form(request)
    site = field(request, "site_id")
    kind = values.get("kind", "")
    unit = UNITS.get(kind, "kWh")  # type: ignore[call-overload]
    try:
        plan = await tariffs.new_plan(
            await scope_ids(request), int(site) if site.isdigit() and len(site) < 10 else -1,
            field(request, "name"), kind, spec_of(values, unit),
            effective_from=_when(request, field(request, "effective_from")) or _now(),
            actor=staff_of(request).actor,
        )  # fmt: skip
    except (ValidationFailed, tariffs.PlanNameTaken) as exc:
        sites = await staff_of(request).scope.sites()
        return _editor(
            request, status=exc.status_code, values=values, unit=unit, sites=sites, plan=None,
            error=exc.message,
        )  # fmt: skip
    return redirect(f"{TARIFFS}/{plan.id}?created=1", status=303)


@bp.post(f"{TARIFFS}/preview")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def preview_part(request: Request) -> HTTPResponse:
    """The editor's live preview (htmx): the plan as filled in, priced for the sample month."""
    values = _form(request)
    unit = UNITS.get(values.get("kind", ""), values.get("unit", "kWh"))  # type: ignore[call-overload]
    previewed, error = _preview(values, unit)
    return render(request, "tariffs/_preview.html", preview=previewed, preview_error=error)


@bp.get(f"{TARIFFS}/<plan_id:int>")
@openapi.exclude()
@staff_required
async def plan_page(request: Request, plan_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    plan = await tariffs.plan_view(site_ids, plan_id, now=_now())
    shown = plan.current or plan.newest
    values = form_of(shown.spec) | {
        "month": arg(request, "month"), "quantity": arg(request, "quantity"),
        "basic_amount": arg(request, "basic_amount"),
    }  # fmt: skip
    previewed, error = _preview(values, UNITS[plan.kind])
    buildings, floors = await tariffs.places_of(plan.site_id)
    return render(
        request, "tariffs/plan.html", plan=plan, shown=shown, preview=previewed,
        preview_error=error, values=values, states=VERSION_STATE_LABELS, kinds=KIND_LABELS,
        buildings=buildings, floors=floors, created=arg(request, "created"),
        changed=arg(request, "changed"), assigned=arg(request, "assigned"),
    )  # fmt: skip


@bp.get(f"{TARIFFS}/<plan_id:int>/change")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def change_form(request: Request, plan_id: int) -> HTTPResponse:
    plan = await tariffs.plan_view(await scope_ids(request), plan_id, now=_now())
    return _editor(request, values=form_of(plan.newest.spec), unit=UNITS[plan.kind], plan=plan)


@bp.post(f"{TARIFFS}/<plan_id:int>/change")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def change(request: Request, plan_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    plan = await tariffs.plan_view(site_ids, plan_id, now=_now())
    values = _form(request)
    try:
        now = field(request, "when") == "now"
        at = None if now else _when(request, field(request, "effective_from"))
        if at is None and not now:
            raise ValidationFailed("请填写生效时间，或选择立即生效")
        version = await tariffs.change_price(
            site_ids, plan_id, spec_of(values, UNITS[plan.kind]), effective_from=at,
            now=_now(), actor=staff_of(request).actor,
        )  # fmt: skip
    except ValidationFailed as exc:
        return _editor(
            request, status=exc.status_code, values=values, unit=UNITS[plan.kind], plan=plan,
            error=exc.message,
        )  # fmt: skip
    if at is None:  # in force now: its set-price batch at once (else the scheduler's tick)
        await push.push_version(version.id, now=_now())
    return redirect(f"{TARIFFS}/{plan_id}?changed=1", status=303)


@bp.get(f"{TARIFFS}/<plan_id:int>/versions/<version_id:int>")
@openapi.exclude()
@staff_required
async def version_page(request: Request, plan_id: int, version_id: int) -> HTTPResponse:
    """A version: its prices and what became of them in the meter-billed meters (the
    set-price batch with every meter's result, linked to its 批量操作 page)."""
    site_ids = await scope_ids(request)
    plan = await tariffs.plan_view(site_ids, plan_id, now=_now())
    version = next((v for v in plan.versions if v.id == version_id), None)
    if version is None:
        raise NotFound("价格版本不存在", version_id=version_id)
    pushed = await push.version_push(site_ids, plan_id, version_id, now=_now())
    items = None
    if pushed.batch is not None:
        items = await batches.batch_items(site_ids, pushed.batch.id, paging(request))
    return render(
        request, "tariffs/version.html", plan=plan, v=version, pushed=pushed, page=items,
        states=VERSION_STATE_LABELS, args=request.args,
    )  # fmt: skip


@bp.post(f"{TARIFFS}/<plan_id:int>/assign")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def assign(request: Request, plan_id: int) -> HTTPResponse:
    def number(name: str) -> int | None:
        value = field(request, name)
        return int(value) if value.isdigit() and len(value) < 10 else None

    count = await tariffs.assign_where(
        await scope_ids(request), plan_id, building_id=number("building_id"),
        floor_id=number("floor_id"), search=field(request, "q"), actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{TARIFFS}/{plan_id}?assigned={count}#assign", status=303)
