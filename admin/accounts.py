"""Accounts (/admin/accounts) and 开户 from a room: the clerk's list of accounts (filters,
search, available balance, Excel), an account's page (tenant, room, meters, WeChat
bindings, recent records, a binding QR for the tenant), the room page's account panel and
the 开户 form, pre-filled from the room with all its free meters ticked (一键开户).

Reads go through `server/tenancy/service/accounts.py`, 开户 through
`server/tenancy/service/opening.py`; writes need the accounts action (开户销户). Everything
is scoped: another organisation's room or account answers 404.
"""

from __future__ import annotations

from decimal import InvalidOperation
from typing import Any

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
from server.accounts.config import TenantSettings
from server.accounts.service.keys import secret_key
from server.core.errors import ShuidianError, ValidationFailed
from server.core.excel import Cell, Sheet
from server.core.money import parse_yuan, yuan
from server.core.paging import Paging
from server.places.service.buildings import building_choices
from server.staff.service.permissions import Action
from server.tenancy.service import accounts, opening

bp = admin_blueprint("admin_accounts")
STATUS_CHOICES = {"open": "在用", "closed": "已销户", "": "全部"}
COMMON = {
    "status_choices": STATUS_CHOICES,
    "billing_labels": accounts.BILLING_LABELS,
    "type_labels": accounts.TYPE_LABELS,
    "channel_labels": opening.CHANNEL_LABELS,
}


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTTPResponse:
    """`render` with the labels these pages share."""
    return render(request, name, status=status, **COMMON, **context)


# -- the list ---------------------------------------------------------------------------------
HEADERS = ["站点", "户号", "租户", "类型", "电话", "房间", "计费方式", "状态", "表计数",
           "可用余额(元)", "开户时间", "销户时间"]  # fmt: skip


def _cells(r: accounts.AccountRow) -> list[Cell]:
    money = yuan(r.available.total_fen) if r.available else None
    return [
        r.site_name, r.number, r.tenant_name, r.type_label, r.phone, r.room, r.billing_label,
        r.status_label, r.meters, money, r.opened_at.strftime("%Y-%m-%d %H:%M"),
        r.closed_at.strftime("%Y-%m-%d %H:%M") if r.closed_at else "",
    ]  # fmt: skip


@bp.get(f"{PATH}/accounts")
@openapi.exclude()
@staff_required
async def account_list(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await staff.scope.site_ids_of(int_arg(request, "site"))
    raw_status = request.args.get("status")
    status = "open" if raw_status is None else arg(request, "status")
    listed = accounts.AccountFilter(
        site_ids, building_id=int_arg(request, "building"),
        status=status if status in STATUS_CHOICES else "open",
        billing_mode=arg(request, "billing"), q=arg(request, "q"),
    )  # fmt: skip
    if arg(request, "format") == "xlsx":
        page = await accounts.list_accounts(listed, Paging.everything())
        rows = [_cells(r) for r in page.items]
        widths = [16, 12, 28, 6, 14, 18, 10, 8, 8, 12, 17, 17]
        return xlsx("账户.xlsx", Sheet("账户", HEADERS, rows, widths=widths))
    page = await accounts.list_accounts(listed, paging(request))
    return _page(
        request, "accounts/list.html", page=page, filter=listed, request_args=request.args,
        site_id=int_arg(request, "site"), sites=await staff.scope.sites(),
        buildings=await building_choices(site_ids),
    )  # fmt: skip


# -- one account ------------------------------------------------------------------------------
@bp.get(f"{PATH}/accounts/<account_id:int>")
@openapi.exclude()
@staff_required
async def account_page(request: Request, account_id: int) -> HTTPResponse:
    detail = await accounts.account_detail(await scope_ids(request), account_id)
    return _page(
        request, "accounts/account.html", detail=detail, a=detail.account,
        opened=arg(request, "opened") == "1",
    )  # fmt: skip


@bp.post(f"{PATH}/accounts/<account_id:int>/binding-code")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def binding_code(request: Request, account_id: int) -> HTTPResponse:
    """A new one-use binding QR for the tenant (an htmx fragment on the account page)."""
    ctx = request.app.ctx
    secret = getattr(ctx, "tenant_secret", None) or secret_key(ctx.settings)
    tenant_settings = getattr(ctx, "tenant_settings", None) or TenantSettings()
    card = await accounts.binding_card_for(
        await scope_ids(request), account_id, secret=secret,
        hours=tenant_settings.qr_ticket_hours, actor=staff_of(request).actor,
    )  # fmt: skip
    return _page(request, "accounts/_binding_card.html", card=card)


# -- the room's panel and 开户 ----------------------------------------------------------------
@bp.get(f"{PATH}/rooms/<room_id:int>/account")
@openapi.exclude()
@staff_required
async def room_account_panel(request: Request, room_id: int) -> HTTPResponse:
    room, account = await accounts.account_of_room(await scope_ids(request), room_id)
    return _page(request, "accounts/_room_panel.html", room=room, a=account)


@bp.get(f"{PATH}/rooms/<room_id:int>/open")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def open_form(request: Request, room_id: int) -> HTTPResponse:
    form = await opening.opening_form(await scope_ids(request), room_id)
    return _page(request, "accounts/open.html", form=form, values={}, ticked=form.ticked)


def _fen(request: Request, name: str, label: str) -> int:
    raw = field(request, name).replace(",", "").replace("¥", "")
    if not raw:
        return 0
    try:
        fen = parse_yuan(raw)
    except (ValueError, InvalidOperation):
        raise ValidationFailed(f"{label}须为金额（元，最多两位小数）") from None
    if fen < 0:
        raise ValidationFailed(f"{label}不能为负数")
    return fen


def _choice(raw: str, enum: type, label: str):  # type: ignore[no-untyped-def]
    if raw not in enum._value2member_map_:
        raise ValidationFailed(f"请选择{label}")
    return enum(raw)


def _meter_ids(request: Request) -> list[int]:
    raw = (request.form or {}).getlist("meter_id") or []
    if any(not v.isdigit() or len(v) > 9 for v in raw):
        raise ValidationFailed("表计选择无效，请刷新页面后重试")
    return [int(v) for v in raw]


@bp.post(f"{PATH}/rooms/<room_id:int>/open")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def open_submit(request: Request, room_id: int) -> HTTPResponse:
    scope = await scope_ids(request)
    try:
        tenant = opening.Tenant(
            field(request, "tenant_name"), field(request, "phone"),
            _choice(field(request, "tenant_type") or "company", opening.TenantType, "租户类型"),
            _choice(field(request, "billing_mode") or "prepaid", opening.BillingMode, "计费方式"),
            _fen(request, "credit_limit", "信用额度"),
        )  # fmt: skip
        amount = _fen(request, "opening_amount", "预存金额")
        money = None
        if amount:
            channel = _choice(field(request, "channel"), opening.CounterChannel, "收款方式")
            money = opening.OpeningBalance(amount, channel, field(request, "reference"))
        opened = await opening.open_account(
            scope, room_id, tenant, _meter_ids(request), actor=staff_of(request).actor,
            number=field(request, "number"), opening=money,
        )  # fmt: skip
    except ShuidianError as exc:
        if exc.status_code == 404:
            raise
        form = await opening.opening_form(scope, room_id)  # the form again, as it was filled
        values = {k: field(request, k) for k in (
            "tenant_name", "phone", "tenant_type", "billing_mode", "credit_limit", "number",
            "opening_amount", "channel", "reference")}  # fmt: skip
        ticked = [int(v) for v in (request.form or {}).getlist("meter_id") or [] if v.isdigit()]
        return _page(
            request, "accounts/open.html", status=exc.status_code, form=form, values=values,
            ticked=ticked, error=exc,
        )  # fmt: skip
    return redirect(f"{PATH}/accounts/{opened.account_id}?opened=1", status=303)
