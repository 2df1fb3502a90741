"""Two-part plans' basic charge (基本电费) in the tariff pages: what it is levied on and what
was levied.

- `GET /admin/tariffs/<plan_id>/basis?month=YYYY-MM`: the open accounts on a plan with their
  transformer capacity (kVA), the month's maximum demand (kW, entered by staff or read from
  the meter) and that month's levy; Excel with `format=xlsx`. The month shown by default is
  the one the scheduler levies next (the month just ended).
- `POST …/basis/<account_id>/capacity` and `…/basis/<account_id>/demand` (TARIFFS): record an
  account's kVA, or its maximum demand in a month (refused once that month is levied).
- `GET /admin/tariffs/levies?month=YYYY-MM&site=`: what was levied for a month (Excel).

Over server/tariffs/levy.py, which the scheduler's monthly levy reads: an account without
its kVA or the month's demand is skipped there and charged by the next run once recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
    xlsx_stream,
)
from server.core.errors import ValidationFailed
from server.core.excel import Column, Kind, StreamSheet
from server.staff.service.oplog import actor_names
from server.staff.service.permissions import Action
from server.tariffs import levy
from server.tariffs import service as tariffs
from server.tariffs.plans import ChargeBasis

bp = admin_blueprint("admin_tariff_levy")
TARIFFS = f"{PATH}/tariffs"
BASIS_LABELS = {ChargeBasis.CAPACITY: "按变压器容量", ChargeBasis.DEMAND: "按最大需量"}


def _month(request: Request, text: str) -> str:
    """'YYYY-MM' asked for, or the month just ended in the park's zone."""
    if text:
        return levy.parse_month(text).isoformat()[:7]
    today = datetime.now(request.app.ctx.settings.tz).date()
    return (today.replace(day=1) - timedelta(days=1)).isoformat()[:7]


async def _basis_page(
    request: Request, plan_id: int, month: str, status: int = 200, **extra: object
) -> HTTPResponse:
    site_ids = await scope_ids(request)
    plan = await tariffs.plan_view(site_ids, plan_id, now=datetime.now().astimezone())
    rows = await levy.basis_rows(site_ids, plan_id, month)
    if arg(request, "format") == "xlsx":
        columns = [
            Column("户号", width=12), Column("租户", width=20),
            Column("变压器容量(kVA)", Kind.NUMBER, 16),
            Column(f"{month}最大需量(kW)", Kind.NUMBER, 18),
            Column("需量来源", width=10), Column(f"{month}基本电费", Kind.MONEY, 16),
        ]  # fmt: skip
        body = [
            (r.number, r.tenant_name, r.kva, r.demand_kw, r.demand_label, r.levied_fen)
            for r in rows
        ]
        sheet = StreamSheet("容量与需量", columns, body, chunked=False)
        return await xlsx_stream(request, f"{plan.name}-容量与需量-{month}.xlsx", sheet)
    basis = await levy.plan_basis(plan_id, month)
    return render(
        request, "tariffs/basis.html", status=status, plan=plan, rows=rows, month=month,
        basis=basis, basis_labels=BASIS_LABELS, saved=arg(request, "saved"),
        names=await actor_names(r.demand_by for r in rows if r.demand_by), **extra,
    )  # fmt: skip


@bp.get(f"{TARIFFS}/<plan_id:int>/basis")
@openapi.exclude()
@staff_required
async def basis_page(request: Request, plan_id: int) -> HTTPResponse:
    return await _basis_page(request, plan_id, _month(request, arg(request, "month")))


@bp.post(f"{TARIFFS}/<plan_id:int>/basis/<account_id:int>/capacity")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def save_capacity(request: Request, plan_id: int, account_id: int) -> HTTPResponse:
    month = _month(request, field(request, "month"))
    site_ids = await scope_ids(request)
    await tariffs.plan_view(site_ids, plan_id, now=datetime.now().astimezone())
    try:
        await levy.set_capacity(
            site_ids, account_id, field(request, "kva"), actor=staff_of(request).actor
        )
    except ValidationFailed as exc:
        return await _basis_page(request, plan_id, month, exc.status_code, error=exc.message)
    return redirect(f"{TARIFFS}/{plan_id}/basis?month={month}&saved=kva#a{account_id}", status=303)


@bp.post(f"{TARIFFS}/<plan_id:int>/basis/<account_id:int>/demand")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def save_demand(request: Request, plan_id: int, account_id: int) -> HTTPResponse:
    month = _month(request, field(request, "month"))
    site_ids = await scope_ids(request)
    await tariffs.plan_view(site_ids, plan_id, now=datetime.now().astimezone())
    try:
        await levy.enter_demand(
            site_ids, account_id, month, field(request, "kw"), actor=staff_of(request).actor
        )
    except ValidationFailed as exc:
        return await _basis_page(request, plan_id, month, exc.status_code, error=exc.message)
    return redirect(f"{TARIFFS}/{plan_id}/basis?month={month}&saved=kw#a{account_id}", status=303)


@bp.get(f"{TARIFFS}/levies")
@openapi.exclude()
@staff_required
async def levies_page(request: Request) -> HTTPResponse:
    month = _month(request, arg(request, "month"))
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    rows = await levy.levies(site_ids, month)
    if arg(request, "format") == "xlsx":
        columns = [
            Column("园区", width=14), Column("户号", width=12), Column("租户", width=20),
            Column("方案", width=18), Column("计费依据", width=12),
            Column("容量/需量", Kind.NUMBER, 12), Column("单位", width=6),
            Column("单价(元/月)", Kind.NUMBER, 12), Column("基本电费", Kind.MONEY, 14),
            Column("征收时间", Kind.DATETIME, 18), Column("征收人", width=14),
        ]  # fmt: skip
        body = [
            (r.site, r.number, r.tenant_name, r.plan, r.basis, r.quantity, r.unit, r.rate,
             r.amount_fen, local_time(request, r.levied_at), r.levied_by)
            for r in rows
        ]  # fmt: skip
        sheet = StreamSheet("基本电费", columns, body, chunked=False)
        return await xlsx_stream(request, f"基本电费-{month}.xlsx", sheet)
    return render(
        request, "tariffs/levies.html", names=await actor_names(r.levied_by for r in rows),
        rows=rows, month=month, args=request.args,
        total_fen=sum(r.amount_fen for r in rows), sites=await staff_of(request).scope.sites(),
    )  # fmt: skip
