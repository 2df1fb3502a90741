"""Property billing pages (物业计费, issue #17) over `server.property.service`:

- `/admin/fees`: the scope's fee items (收费项目: 租金、物业费、服务费、自定义) — list, Excel, a
  new item, each site's rules (费用可断电, days to pay); `/admin/fees/<fee_item_id>`: edit;
- `/admin/runs`: the monthly runs (月度计费) — a site's month previewed (试算) or posted (正式
  计费); `/admin/runs/<run_id>`: what the run did per account, item and period, Excel;
- `/admin/bills`: bills (账单) by status, Excel; `/admin/bills/<bill_id>`: a bill's lines and
  its actions — 审核 and 出账 (postpaid), 缴费 (from the wallet, cash or bank transfer);
- `/admin/arrears`: issued bills past their due date (欠费), Excel.

Fee items need Action.TARIFFS, runs and bills Action.MONEY; the services write the
operation log.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
from server.core.errors import ValidationFailed
from server.core.excel import Sheet
from server.core.money import yuan
from server.ledger.posting import Channel
from server.property.fees import BASIS_LABELS, COLLECTION_LABELS, CYCLE_LABELS, KIND_LABELS
from server.property.service import bills, items, run
from server.property.service.bills import BillFilter
from server.property.service.items import ItemForm
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_property")
LABELS = {
    "basis": BASIS_LABELS,
    "cycle": CYCLE_LABELS,
    "collection": COLLECTION_LABELS,
    "kind": KIND_LABELS,
}
PAY_CHANNELS = {"wallet": "从余额扣缴", "cash": "现金", "bank": "银行转账"}


def _actor(request: Request) -> str:
    return f"staff:{staff_of(request).id}"


def _today(request: Request) -> datetime:
    return datetime.now(UTC).astimezone(request.app.ctx.settings.tz)


def _form(request: Request) -> ItemForm:
    return ItemForm(
        name=field(request, "name"),
        kind=field(request, "kind"),
        basis=field(request, "basis"),
        amount_yuan=field(request, "amount"),
        cycle=field(request, "cycle"),
        billing_day=field(request, "billing_day") or "1",
        due=field(request, "due"),
        collection=field(request, "collection") or "deduct",
        active=field(request, "active") != "off",
    )


async def _site(request: Request) -> int:
    """The form's site, checked against the scope (outside it: 404)."""
    value = field(request, "site_id")
    if not value.isdigit() or len(value) > 9:
        raise ValidationFailed("请选择园区")
    return (await staff_of(request).scope.site(int(value))).id


# -- fee items --------------------------------------------------------------------------------


@bp.get(f"{PATH}/fees")
@openapi.exclude()
@staff_required
async def fee_items(request: Request) -> HTTPResponse:
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    found = await items.list_items(site_ids)
    if arg(request, "format") == "xlsx":
        rows = [
            (
                i.name,
                KIND_LABELS[i.kind],
                BASIS_LABELS[i.basis],
                i.amount_yuan,
                CYCLE_LABELS[i.cycle],
                i.billing_day,
                i.due,
                COLLECTION_LABELS[i.collection],
                "启用" if i.active else "停用",
                i.revenue_code,
            )
            for i in found
        ]
        headers = [
            "名称",
            "类型",
            "计费方式",
            "金额（元或元/m²）",
            "周期",
            "计费日",
            "收费日期",
            "收取方式",
            "状态",
            "收入科目",
        ]
        return xlsx("收费项目.xlsx", Sheet("收费项目", headers, rows))
    sites = await staff_of(request).scope.sites()
    names = {s.id: s.name for s in sites}
    settings = {s.id: await items.settings_of(s.id) for s in sites}
    return render(
        request,
        "property/fees.html",
        items=found,
        sites=sites,
        names=names,
        settings=settings,
        labels=LABELS,
        site=int_arg(request, "site"),
    )


@bp.post(f"{PATH}/fees")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def fee_item_create(request: Request) -> HTTPResponse:
    item = await items.create_item(await _site(request), _form(request), actor=_actor(request))
    return redirect(f"{PATH}/fees/{item.id}", status=303)


@bp.post(f"{PATH}/fees/settings")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def fee_settings(request: Request) -> HTTPResponse:
    days = field(request, "due_days")
    if not days.isdigit() or len(days) > 4:
        raise ValidationFailed("账单缴费期限须为 1–365 天")
    may_cut = field(request, "fees_may_cut") == "on"
    site_id = await _site(request)
    await items.set_settings(
        site_id, fees_may_cut=may_cut, due_days=int(days), actor=_actor(request)
    )
    return redirect(f"{PATH}/fees", status=303)


@bp.get(f"{PATH}/fees/<fee_item_id:int>")
@openapi.exclude()
@staff_required
async def fee_item(request: Request, fee_item_id: int) -> HTTPResponse:
    item = await items.get_item(await scope_ids(request), fee_item_id)
    return render(request, "property/fee.html", item=item, labels=LABELS)


@bp.post(f"{PATH}/fees/<fee_item_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.TARIFFS)
async def fee_item_update(request: Request, fee_item_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    await items.get_item(site_ids, fee_item_id)  # 404 first, then the form's errors
    await items.update_item(site_ids, fee_item_id, _form(request), actor=_actor(request))
    return redirect(f"{PATH}/fees/{fee_item_id}", status=303)


# -- monthly runs -----------------------------------------------------------------------------


@bp.get(f"{PATH}/runs")
@openapi.exclude()
@staff_required
async def runs(request: Request) -> HTTPResponse:
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    sites = await staff_of(request).scope.sites()
    today = _today(request)
    month = f"{today.year:04d}-{today.month:02d}"
    return render(
        request,
        "property/runs.html",
        runs=await run.list_runs(site_ids),
        sites=sites,
        names={s.id: s.name for s in sites},
        month=month,
        labels=run.STATUS_LABELS,
        entered=arg(request, "entered")[:7],
    )


@bp.post(f"{PATH}/runs")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def run_create(request: Request) -> HTTPResponse:
    site_id = await _site(request)
    preview = field(request, "mode") != "post"
    done = await run.run_month(
        site_id,
        field(request, "month"),
        preview=preview,
        actor=_actor(request),
        tz=request.app.ctx.settings.tz,
    )
    return redirect(f"{PATH}/runs/{done.id}", status=303)


@bp.get(f"{PATH}/runs/<run_id:int>")
@openapi.exclude()
@staff_required
async def run_detail(request: Request, run_id: int) -> HTTPResponse:
    found, lines = await run.get_run(await scope_ids(request), run_id)
    if arg(request, "format") == "xlsx":
        rows = [
            (
                ln.account_number,
                ln.tenant_name,
                ln.item_name,
                ln.period_start,
                ln.period_end,
                ln.days,
                ln.period_days,
                yuan(ln.full_fen),
                yuan(ln.amount_fen),
                yuan(ln.deducted_fen),
                yuan(ln.billed_fen),
                run.OUTCOME_LABELS[ln.outcome],
            )
            for ln in lines
        ]
        headers = [
            "账户号",
            "租户",
            "收费项目",
            "周期起",
            "周期止（不含）",
            "计费天数",
            "周期天数",
            "整期金额",
            "本次金额",
            "余额扣除",
            "转入账单",
            "结果",
        ]
        return xlsx(f"计费批次{found.id}.xlsx", Sheet(f"{found.month} 计费明细", headers, rows))
    return render(
        request,
        "property/run.html",
        run=found,
        lines=lines,
        outcomes=run.OUTCOME_LABELS,
        labels=run.STATUS_LABELS,
    )


# -- bills and arrears ------------------------------------------------------------------------


def _bill_rows(found: list[bills.BillView], today: datetime) -> list[tuple[object, ...]]:
    return [
        (
            b.number,
            b.kind_label,
            b.account_number,
            b.tenant_name,
            b.period_start,
            b.status_label + ("（逾期）" if b.overdue(today.date()) else ""),
            yuan(b.total_fen),
            yuan(b.paid_fen),
            yuan(b.owed_fen),
            b.due_date,
        )
        for b in found
    ]


BILL_HEADERS = [
    "账单号",
    "类型",
    "账户号",
    "租户",
    "账期",
    "状态",
    "金额",
    "已缴",
    "欠缴",
    "缴费期限",
]


async def _bills_page(request: Request, status: str, title: str, template: str) -> HTTPResponse:
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    today = _today(request)
    export = arg(request, "format") == "xlsx"
    wanted = BillFilter(site_ids, status=status, search=arg(request, "q")[:50])
    found = await bills.list_bills(wanted, today=today.date(), limit=None if export else 500)
    if export:
        return xlsx(f"{title}.xlsx", Sheet(title, BILL_HEADERS, _bill_rows(found, today)))
    return render(
        request,
        template,
        bills=found,
        today=today.date(),
        bill_status=status,  # not `status`: render() takes that as the HTTP status
        statuses=bills.STATUS_LABELS,
        sites=await staff_of(request).scope.sites(),
        site=int_arg(request, "site"),
        q=arg(request, "q"),
        title=title,
    )


@bp.get(f"{PATH}/bills")
@openapi.exclude()
@staff_required
async def bill_list(request: Request) -> HTTPResponse:
    return await _bills_page(request, arg(request, "status")[:16], "账单", "property/bills.html")


@bp.get(f"{PATH}/arrears")
@openapi.exclude()
@staff_required
async def arrears(request: Request) -> HTTPResponse:
    return await _bills_page(request, "overdue", "欠费账单", "property/bills.html")


@bp.get(f"{PATH}/bills/<bill_id:int>")
@openapi.exclude()
@staff_required
async def bill_detail(request: Request, bill_id: int) -> HTTPResponse:
    bill = await bills.get_bill(await scope_ids(request), bill_id)
    return render(
        request,
        "property/bill.html",
        bill=bill,
        today=_today(request).date(),
        channels=PAY_CHANNELS,
    )


@bp.post(f"{PATH}/bills/<bill_id:int>/confirm")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def bill_confirm(request: Request, bill_id: int) -> HTTPResponse:
    await bills.confirm_bill(await scope_ids(request), bill_id, actor=_actor(request))
    return redirect(f"{PATH}/bills/{bill_id}", status=303)


@bp.post(f"{PATH}/bills/<bill_id:int>/issue")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def bill_issue(request: Request, bill_id: int) -> HTTPResponse:
    await bills.issue_bill(
        await scope_ids(request), bill_id, actor=_actor(request), tz=request.app.ctx.settings.tz
    )
    return redirect(f"{PATH}/bills/{bill_id}", status=303)


@bp.post(f"{PATH}/bills/<bill_id:int>/pay")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def bill_pay(request: Request, bill_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    await bills.get_bill(site_ids, bill_id)  # 404 before the form's errors
    how = field(request, "channel") or "wallet"
    if how not in PAY_CHANNELS:
        raise ValidationFailed("请选择缴费方式")
    amount: int | None = None
    if how != "wallet" and field(request, "amount"):
        from server.core.money import parse_yuan

        try:
            amount = parse_yuan(field(request, "amount")[:16])
        except (ValueError, ArithmeticError):
            raise ValidationFailed("金额格式不正确（元，至多两位小数）") from None
    channel = None if how == "wallet" else Channel(how)
    await bills.pay_bill(
        site_ids, bill_id, actor=_actor(request), channel=channel, amount_fen=amount
    )
    return redirect(f"{PATH}/bills/{bill_id}", status=303)
