"""Finance pages (财务管理, issue #15) over `server.finance.service` and the payments services:

- `/admin/finance`: the order overview (订单总览) — every posting that moved a wallet, filtered
  by site, channel, type, status, account and local dates, with the filter's totals, paged;
  `?format=xlsx` streams every row of the filter to Excel.

- `/admin/finance/counter`: the counter (收费台) — cash / 公对公 recharge (then its printable
  receipt `/admin/finance/receipts/<id>` on the organisation's print template, `?format=pdf`
  its PDF), a counter refund and a balance adjustment, each
  with a reason; above the thresholds they wait for a second person (refunds on
  /admin/refunds, adjustments here: approve / reject, never by the requester).

- `/admin/finance/income`: income (收入概况) by day, month or year over any range of local
  days — money in by channel and revenue by item (electricity, water, fees), each as an
  ECharts chart with its table, adding up to the ledger; Excel of both tables.

- `/admin/finance/reconciliation?day=`: the day's three-way reconciliation — the channels'
  bills ↔ our orders ↔ the ledger ↔ the meters' purchase counts and money registers — every
  mismatch with the way to resolve it; bills downloaded and matched again on demand, the
  quarantined notifications and held orders resolved with a note (MONEY action).

Every page reads within the staff member's scope (`?site=` outside it is a 404); money moves
only through the services, which write the operation log.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from decimal import InvalidOperation
from urllib.parse import urlencode

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.printing import paper
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
    xlsx_stream,
)
from server.core.errors import NotFound, ShuidianError, ValidationFailed
from server.core.excel import Column, Kind, StreamSheet
from server.core.money import parse_yuan, yuan
from server.finance.service import counter, income, orders, reconciliation
from server.property.service import prints
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_finance")
FINANCE = f"{PATH}/finance"


def _day(request: Request, name: str) -> date | None:
    try:
        return date.fromisoformat(arg(request, name))
    except ValueError:
        return None


def _today(request: Request) -> date:
    return datetime.now(request.app.ctx.settings.tz).date()


@bp.get(FINANCE)
@openapi.exclude()
@staff_required
async def order_overview(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await staff.scope.site_ids_of(int_arg(request, "site"))
    today = _today(request)
    given = "since" in request.args or "until" in request.args
    wanted = orders.OrderFilter.of(
        site_id=int_arg(request, "site"), channel=arg(request, "channel"),
        type=arg(request, "type"), status=arg(request, "status"),
        account=arg(request, "account"),
        since=_day(request, "since") if given else today - timedelta(days=29),
        until=_day(request, "until") if given else today,
    )  # fmt: skip
    tz = request.app.ctx.settings.tz
    if arg(request, "format") == "xlsx":
        sheet = StreamSheet(
            "订单总览", orders.EXPORT_COLUMNS, orders.export_chunks(site_ids, wanted, tz)
        )
        return await xlsx_stream(request, "订单总览.xlsx", sheet)
    page = await orders.search(site_ids, wanted, paging(request), tz)
    return render(
        request, "finance/orders.html", page=page, args=request.args, wanted=wanted,
        totals=await orders.totals(site_ids, wanted, tz), sites=await staff.scope.sites(),
        channels=orders.CHANNEL_LABELS, types=orders.TYPE_LABELS,
        statuses=orders.STATUS_LABELS, tab="orders",
    )  # fmt: skip


# -- the counter --------------------------------------------------------------------------------
def _amount(request: Request, name: str, label: str, *, signed: bool = False) -> int:
    raw = field(request, name).replace(",", "").replace("¥", "").replace("，", "")
    try:
        fen = parse_yuan(raw)
    except (ValueError, InvalidOperation):
        raise ValidationFailed(f"{label}须为金额（元，最多两位小数）", field=name) from None
    if fen == 0 or (fen < 0 and not signed) or abs(fen) >= 10**11:
        raise ValidationFailed(f"{label}须为{'非零' if signed else '大于零的'}金额", field=name)
    return fen


async def _counter_page(
    request: Request, *, error: str = "", status: int = 200, form: str = ""
) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await scope_ids(request)
    tz = request.app.ctx.settings.tz
    values = {k: (v[0] if isinstance(v, list) else v) for k, v in dict(request.form or {}).items()}
    if not values and arg(request, "account"):
        values = {"account": arg(request, "account"), "site": arg(request, "site")}
    return render(
        request, "finance/counter.html", status=status, error=error, form=form, values=values,
        sites=await staff.scope.sites(), channels=counter.CHANNEL_LABELS,
        receipts=await counter.recent_receipts(site_ids, tz),
        adjustments=await counter.pending_adjustments(site_ids, tz),
        request_key=f"{staff.id}:{secrets.token_urlsafe(12)}", done=arg(request, "done"),
        settings=request.app.ctx.payments.settings, tab="counter",
    )  # fmt: skip


@bp.get(f"{FINANCE}/counter")
@openapi.exclude()
@staff_required
async def counter_page(request: Request) -> HTTPResponse:
    return await _counter_page(request)


async def _account(request: Request) -> counter.AccountRef:
    return await counter.find_account(
        await scope_ids(request), field(request, "account"), int_arg_form(request, "site")
    )


def int_arg_form(request: Request, name: str) -> int | None:
    value = field(request, name)
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.post(f"{FINANCE}/counter")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def counter_recharge(request: Request) -> HTTPResponse:
    try:
        account = await _account(request)
        payment_id, _ = await counter.counter_recharge(
            await scope_ids(request), account, field(request, "channel"),
            _amount(request, "amount", "金额"), field(request, "reference"),
            payer_name=field(request, "payer_name")[:100], memo=field(request, "memo")[:200],
            actor=staff_of(request).actor,
        )  # fmt: skip
    except ShuidianError as exc:
        if exc.status_code == 403:
            raise
        return await _counter_page(request, error=exc.message, status=exc.status_code, form="pay")
    return redirect(f"{FINANCE}/receipts/{payment_id}", status=303)


@bp.get(f"{FINANCE}/receipts/<counter_payment_id:int>")
@openapi.exclude()
@staff_required
async def receipt(request: Request, counter_payment_id: int) -> HTTPResponse:
    """The receipt on the organisation's print template (admin/printing.py), or its PDF."""
    printed = await prints.print_receipt(
        await scope_ids(request), counter_payment_id, request.app.ctx.settings.tz
    )
    return await paper(
        request, printed, filename=f"{printed.title}.pdf", back=(f"{FINANCE}/counter", "返回收费台")
    )


@bp.post(f"{FINANCE}/refund")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def counter_refund(request: Request) -> HTTPResponse:
    try:
        account = await _account(request)
        key = field(request, "request_key")
        if not key:
            raise ValidationFailed("页面已过期，请刷新后重试", field="request_key")
        refund = await counter.request_refund(
            request.app.ctx.payments.settings, await scope_ids(request), account,
            field(request, "channel"), _amount(request, "amount", "退款金额"),
            reason=field(request, "reason")[:200], payee_name=field(request, "payee_name"),
            payee_account=field(request, "payee_account"), request_key=key[:120],
            actor=staff_of(request).actor,
        )  # fmt: skip
    except ShuidianError as exc:
        if exc.status_code == 403:
            raise
        return await _counter_page(
            request, error=exc.message, status=exc.status_code, form="refund"
        )
    if refund.status == "pending":  # waiting for a second person
        return redirect(f"{PATH}/refunds", status=303)
    return redirect(f"{FINANCE}/counter?done=refund", status=303)


@bp.post(f"{FINANCE}/adjustments")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def adjustment_request(request: Request) -> HTTPResponse:
    try:
        account = await _account(request)
        adjustment = await counter.request_adjust(
            request.app.ctx.payments.settings, await scope_ids(request), account,
            _amount(request, "amount", "调账金额", signed=True),
            reason=field(request, "reason")[:200], actor=staff_of(request).actor,
        )  # fmt: skip
    except ShuidianError as exc:
        if exc.status_code == 403:
            raise
        return await _counter_page(
            request, error=exc.message, status=exc.status_code, form="adjust"
        )
    done = "adjust-pending" if adjustment.status == "pending" else "adjust"
    return redirect(f"{FINANCE}/counter?done={done}", status=303)


@bp.post(f"{FINANCE}/adjustments/<adjustment_id:int>/approve")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def adjustment_approve(request: Request, adjustment_id: int) -> HTTPResponse:
    await counter.approve_adjust(
        await scope_ids(request), adjustment_id, actor=staff_of(request).actor
    )
    return redirect(f"{FINANCE}/counter?done=approved", status=303)


@bp.post(f"{FINANCE}/adjustments/<adjustment_id:int>/reject")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def adjustment_reject(request: Request, adjustment_id: int) -> HTTPResponse:
    await counter.reject_adjust(
        await scope_ids(request), adjustment_id, actor=staff_of(request).actor,
        reason=field(request, "reason")[:200],
    )  # fmt: skip
    return redirect(f"{FINANCE}/counter?done=rejected", status=303)


# -- income ---------------------------------------------------------------------------------------
@bp.get(f"{FINANCE}/income")
@openapi.exclude()
@staff_required
async def income_page(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await staff.scope.site_ids_of(int_arg(request, "site"))
    grain_arg = arg(request, "grain")
    grain = income.Grain(grain_arg) if grain_arg in income.GRAIN_LABELS else income.Grain.DAY
    today = _today(request)
    default_since = {
        income.Grain.DAY: today - timedelta(days=29),
        income.Grain.MONTH: today.replace(day=1, month=1),
        income.Grain.YEAR: today.replace(day=1, month=1, year=today.year - 4),
    }[grain]
    since = _day(request, "since") or default_since
    until = _day(request, "until") or today
    tz = request.app.ctx.settings.tz
    found = await income.income(site_ids, since, until, grain, tz)
    if arg(request, "format") == "xlsx":
        return await xlsx_stream(request, "收入概况.xlsx", *_income_sheets(found))
    chart = {
        "periods": [p.label for p in found.periods],
        "channels": [
            {"name": label, "values": [str(yuan(p.channels[ch])) for p in found.periods]}
            for ch, label in orders.CHANNEL_LABELS.items()
        ],
        "items": [
            {"name": orders.ITEM_LABELS.get(item, item),
             "values": [str(yuan(p.items[item])) for p in found.periods]}
            for item in found.items
        ],
    }  # fmt: skip
    return render(
        request, "finance/income.html", found=found, chart=chart, grains=income.GRAIN_LABELS,
        channels=orders.CHANNEL_LABELS, item_labels=orders.ITEM_LABELS,
        sites=await staff.scope.sites(), site_id=int_arg(request, "site"), tab="income",
    )  # fmt: skip


def _income_sheets(found: income.Income) -> tuple[StreamSheet, StreamSheet]:
    by_channel = StreamSheet(
        "按渠道",
        [Column("周期", Kind.TEXT, 12)]
        + [Column(label, Kind.MONEY, 14) for label in orders.CHANNEL_LABELS.values()]
        + [Column("合计", Kind.MONEY, 14)],
        [[(p.label, *p.channels.values(), p.money_in_fen) for p in found.periods]
         + [("合计", *found.channel_totals.values(), found.money_in_fen)]],
    )  # fmt: skip
    by_item = StreamSheet(
        "按构成",
        [Column("周期", Kind.TEXT, 12)]
        + [Column(orders.ITEM_LABELS.get(i, i), Kind.MONEY, 14) for i in found.items]
        + [Column("合计", Kind.MONEY, 14)],
        [[(p.label, *p.items.values(), p.revenue_fen) for p in found.periods]
         + [("合计", *found.item_totals.values(), found.revenue_fen)]],
    )  # fmt: skip
    return by_channel, by_item


# -- reconciliation -------------------------------------------------------------------------------
def _unattributed(request: Request) -> bool:
    """Items naming no order of ours belong to no site: the platform's own staff see them."""
    return staff_of(request).role == "superadmin"


@bp.get(f"{FINANCE}/reconciliation")
@openapi.exclude()
@staff_required
async def reconciliation_page(request: Request) -> HTTPResponse:
    day = _day(request, "day") or _today(request) - timedelta(days=1)
    view = await reconciliation.day_view(
        await scope_ids(request), day, request.app.ctx.settings.tz,
        unattributed=_unattributed(request),
    )  # fmt: skip
    return render(
        request, "finance/reconciliation.html", v=view, channels=orders.CHANNEL_LABELS,
        failed=request.args.getlist("failed") or [], done=arg(request, "done"),
        previous=day - timedelta(days=1), next=day + timedelta(days=1), tab="reconciliation",
    )  # fmt: skip


@bp.post(f"{FINANCE}/reconciliation/run")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def reconciliation_run(request: Request) -> HTTPResponse:
    try:
        day = date.fromisoformat(field(request, "day"))
    except ValueError:
        raise ValidationFailed("日期无效", field="day") from None
    failed = await reconciliation.run_bills(
        request.app.ctx.payments, day, _today(request), actor=staff_of(request).actor
    )
    query = urlencode([("day", day.isoformat()), ("done", "run")] + [("failed", f) for f in failed])
    return redirect(f"{FINANCE}/reconciliation?{query}", status=303)


@bp.post(f"{FINANCE}/quarantine/resolve")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def quarantine_resolve(request: Request) -> HTTPResponse:
    number = field(request, "quarantine")
    if not number.isdigit() or len(number) > 18:
        raise NotFound("异常记录不存在")
    await reconciliation.resolve(
        await scope_ids(request), int(number), unattributed=_unattributed(request),
        actor=staff_of(request).actor, resolution=field(request, "resolution")[:500],
    )  # fmt: skip
    day = _day_field(request)
    return redirect(f"{FINANCE}/reconciliation?day={day}&done=resolved", status=303)


def _day_field(request: Request) -> str:
    try:
        return date.fromisoformat(field(request, "day")).isoformat()
    except ValueError:
        return ""
