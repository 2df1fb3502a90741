"""公摊 / 线损 / 合规 (issue #17) over `server/sharing/service/`: the common accounts (master
meter, tariff, members, rule) and their period's split, previewed then posted once; the
site's period of line losses (grid readings and bill entered, previewed, posted once — or
录入 for the monthly run to post, /admin/losses/entry); the
resale compliance statement, printable. Every list exports to Excel. Reading is the scope's
business; changes need the MONEY action (they charge wallets)."""

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
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
    xlsx,
)
from server.core.errors import NotFound
from server.core.excel import Sheet
from server.core.money import yuan
from server.sharing.allocation import METHOD_LABELS
from server.sharing.compliance import FLAG_LABELS
from server.sharing.losses import LossNotPositive
from server.sharing.service import losses as loss_service
from server.sharing.service import pools as pool_service
from server.sharing.service.sharing import preview, run_sharing
from server.sharing.service.statements import site_statement
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_sharing")


def _tz(request: Request):  # type: ignore[no-untyped-def]
    return request.app.ctx.settings.tz


def _last_month(request: Request) -> str:
    first = datetime.now(_tz(request)).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def _period(request: Request) -> str:
    return arg(request, "period")[:7] or _last_month(request)


async def _site_filter(request: Request) -> tuple[list[int], int | None]:
    """The scope's site ids, narrowed by `?site=` (a site outside the scope: 404)."""
    site_id = int_arg(request, "site")
    return await staff_of(request).scope.site_ids_of(site_id), site_id


# -- 公摊 -------------------------------------------------------------------------------------
@bp.get(f"{PATH}/sharing")
@openapi.exclude()
@staff_required
async def sharing_list(request: Request) -> HTTPResponse:
    ids, site_id = await _site_filter(request)
    found = await pool_service.pools(ids)
    if arg(request, "format") == "xlsx":
        rows = [
            (p.site, p.name, p.meter_address, p.plan, p.method_label, len(p.members)) for p in found
        ]
        headers = ["园区", "公摊账户", "总表地址", "价格方案", "分摊方式", "分摊户数"]
        return xlsx("公摊账户.xlsx", Sheet("公摊账户", headers, rows, widths=(20, 20, 16, 20)))
    return render(
        request, "sharing/pools.html", pools=found, site_id=site_id,
        sites=await staff_of(request).scope.sites(), methods=METHOD_LABELS,
        plans=await pool_service.plan_choices(ids), period=_period(request),
        done=arg(request, "done"),
    )  # fmt: skip


@bp.post(f"{PATH}/sharing")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def sharing_create(request: Request) -> HTTPResponse:
    site_id = int_arg_form(request, "site_id")
    pool = await pool_service.create_pool(
        await scope_ids(request), site_id if site_id is not None else -1,
        name=field(request, "name"), meter_address=field(request, "meter_address"),
        plan_id=int_arg_form(request, "plan_id") or -1, method=field(request, "method"),
        actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{PATH}/sharing/{pool.id}", status=303)


@bp.post(f"{PATH}/sharing/run")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def sharing_run_all(request: Request) -> HTTPResponse:
    site_id = int_arg_form(request, "site_id")
    ids = await staff_of(request).scope.site_ids_of(site_id if site_id is not None else -1)
    done = await run_sharing(
        field(request, "period"), site_ids=ids, tz=_tz(request), actor=staff_of(request).actor
    )
    return redirect(f"{PATH}/sharing?done={len(done)}", status=303)


def int_arg_form(request: Request, name: str) -> int | None:
    value = field(request, name)
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.get(f"{PATH}/sharing/<pool_id:int>")
@openapi.exclude()
@staff_required
async def sharing_pool(request: Request, pool_id: int) -> HTTPResponse:
    ids = await scope_ids(request)
    view = await pool_service.pool(ids, pool_id)
    period = _period(request)
    computed = await preview(ids, pool_id, period, _tz(request))
    if arg(request, "format") == "xlsx":
        rows = [
            (x.number, x.tenant_name, x.weight, x.quantity, yuan(x.amount_fen))
            for x in computed.lines
        ]
        headers = ["户号", "租户", "权重", "分摊电量(kWh)", "分摊金额(元)"]
        title = f"{view.name} {computed.period}"
        return xlsx(f"公摊_{title}.xlsx", Sheet("公摊分摊", headers, rows, widths=(14, 28)))
    return render(
        request, "sharing/pool.html", pool=view, computed=computed, period=period,
        methods=METHOD_LABELS,
    )  # fmt: skip


@bp.post(f"{PATH}/sharing/<pool_id:int>/members")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def sharing_add_member(request: Request, pool_id: int) -> HTTPResponse:
    await pool_service.add_member(
        await scope_ids(request), pool_id, field(request, "number"), field(request, "ratio"),
        actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{PATH}/sharing/{pool_id}", status=303)


@bp.post(f"{PATH}/sharing/<pool_id:int>/members/remove")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def sharing_remove_member(request: Request, pool_id: int) -> HTTPResponse:
    await pool_service.remove_member(
        await scope_ids(request), pool_id, int_arg_form(request, "account_id") or -1,
        actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{PATH}/sharing/{pool_id}", status=303)


@bp.post(f"{PATH}/sharing/<pool_id:int>/method")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def sharing_method(request: Request, pool_id: int) -> HTTPResponse:
    await pool_service.set_method(
        await scope_ids(request), pool_id, field(request, "method"), actor=staff_of(request).actor
    )
    return redirect(f"{PATH}/sharing/{pool_id}", status=303)


@bp.post(f"{PATH}/sharing/<pool_id:int>/run")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def sharing_run(request: Request, pool_id: int) -> HTTPResponse:
    ids = await scope_ids(request)
    await pool_service.pool_row(ids, pool_id)  # 404 before anything else
    period = field(request, "period")
    await run_sharing(
        period, site_ids=ids, tz=_tz(request), actor=staff_of(request).actor, pool_ids=[pool_id]
    )
    return redirect(f"{PATH}/sharing/{pool_id}?period={period}", status=303)


# -- 线损 -------------------------------------------------------------------------------------
@bp.get(f"{PATH}/losses")
@openapi.exclude()
@staff_required
async def losses_list(request: Request) -> HTTPResponse:
    ids, site_id = await _site_filter(request)
    found = await loss_service.loss_periods(ids)
    if arg(request, "format") == "xlsx":
        rows = [
            (
                v.site,
                v.entry.period,
                v.balance.grid_kwh,
                v.balance.tenant_kwh,
                v.balance.common_kwh,
                v.balance.own_use_kwh,
                v.balance.loss_kwh,
                f"{v.balance.loss_rate * 100:.2f}%",
                yuan(v.balance.bill_fen),
                yuan(v.balance.loss_fen),
                v.method_label,
            )
            for v in found
        ]
        headers = ["园区", "账期", "关口表电量", "租户电量", "公共电量", "自用电量", "损耗电量",
                   "损耗率", "电网账单(元)", "分摊损耗(元)", "分摊方式"]  # fmt: skip
        return xlsx("线变损.xlsx", Sheet("线变损", headers, rows, widths=(20, 10)))
    return render(
        request, "sharing/losses.html", periods=found, site_id=site_id,
        sites=await staff_of(request).scope.sites(), period=_period(request), form={},
    )  # fmt: skip


@bp.post(f"{PATH}/losses/preview")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def losses_preview(request: Request) -> HTTPResponse:
    form = {k: field(request, k) for k in _LOSS_FIELDS}
    site_id = int_arg_form(request, "site_id")
    ids = await scope_ids(request)
    try:
        view = await loss_service.preview_losses(
            ids, site_id if site_id is not None else -1, loss_service.entry_of(form), _tz(request)
        )
    except LossNotPositive as exc:
        return render(
            request, "sharing/losses.html", status=exc.status_code, error=exc,
            periods=await loss_service.loss_periods(ids), site_id=site_id,
            sites=await staff_of(request).scope.sites(), period=form["period"], form=form,
        )  # fmt: skip
    return render(request, "sharing/loss.html", view=view, form=form, site_id=site_id)


_LOSS_FIELDS = ("period", "start_reading", "end_reading", "multiplier", "bill", "own_use",
                "method", "cap_pct")  # fmt: skip


@bp.post(f"{PATH}/losses")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def losses_post(request: Request) -> HTTPResponse:
    form = {k: field(request, k) for k in _LOSS_FIELDS}
    site_id = int_arg_form(request, "site_id")
    view = await loss_service.run_losses(
        await scope_ids(request), site_id if site_id is not None else -1,
        loss_service.entry_of(form), tz=_tz(request), actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{PATH}/losses/{view.id}", status=303)


@bp.post(f"{PATH}/losses/entry")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def losses_enter(request: Request) -> HTTPResponse:
    """录入: keep the figures for the monthly run's losses step (server.property)."""
    form = {k: field(request, k) for k in _LOSS_FIELDS}
    site_id = int_arg_form(request, "site_id")
    entry = await loss_service.enter_losses(
        await scope_ids(request), site_id if site_id is not None else -1,
        loss_service.entry_of(form), tz=_tz(request), actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{PATH}/runs?site={site_id}&entered={entry.period}", status=303)


@bp.get(f"{PATH}/losses/<loss_id:int>")
@openapi.exclude()
@staff_required
async def losses_detail(request: Request, loss_id: int) -> HTTPResponse:
    view = await loss_service.loss_period(await scope_ids(request), loss_id)
    if arg(request, "format") == "xlsx":
        rows = [
            (x.number, x.tenant_name, x.kwh, x.loss_kwh, yuan(x.amount_fen)) for x in view.lines
        ]
        headers = ["户号", "租户", "用电量(kWh)", "分摊损耗电量(kWh)", "分摊金额(元)"]
        name = f"线变损_{view.site}_{view.entry.period}.xlsx"
        return xlsx(name, Sheet("线变损分摊", headers, rows, widths=(14, 28)))
    return render(request, "sharing/loss.html", view=view, form=None, site_id=view.site_id)


# -- 合规 -------------------------------------------------------------------------------------
@bp.get(f"{PATH}/compliance")
@openapi.exclude()
@staff_required
async def compliance(request: Request) -> HTTPResponse:
    ids, site_id = await _site_filter(request)
    sites = await staff_of(request).scope.sites()
    chosen = site_id if site_id is not None else (ids[0] if ids else None)
    period = _period(request)
    found = None
    if chosen is not None:
        try:
            found = await site_statement(ids, chosen, period, _tz(request))
        except NotFound:
            found = None
    if found is not None and arg(request, "format") == "xlsx":
        rows = [
            (
                x.use.number,
                x.use.tenant_name,
                x.use.kwh,
                yuan(x.use.energy_fen),
                yuan(x.use.common_fen),
                yuan(x.use.loss_fen),
                yuan(x.total_fen),
                x.energy_price,
                x.effective_price,
                f"{x.loss_ratio * 100:.2f}%",
                "、".join(FLAG_LABELS[f] for f in x.flags) or "合规",
            )
            for x in found.statement.lines
        ]
        headers = ["户号", "租户", "用电量(kWh)", "电费(元)", "公摊(元)", "损耗分摊(元)",
                   "合计(元)", "电度电价", "综合电价", "损耗占电费", "结论"]  # fmt: skip
        return xlsx(f"转供电合规_{found.site}_{found.period}.xlsx",
                    Sheet("合规说明", headers, rows, widths=(14, 28)))  # fmt: skip
    return render(
        request, "sharing/compliance.html", found=found, sites=sites, site_id=chosen,
        period=period, flags=FLAG_LABELS,
    )  # fmt: skip
