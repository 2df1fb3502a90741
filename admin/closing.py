"""The account's end pages (销户 / 过户) and the refund approvals (/admin/refunds).

- `/admin/rooms/<room_id>/closing`: the room page's panel (htmx): the open account's buttons
  销户 / 过户, or its closing state (销户中) with the refunds it waits for;
- `/admin/accounts/<account_id>/close` and `/transfer`: the forms — a final reading per meter
  (entered, or the latest one after 点抄, `/read-now`), the counter refund's channel and
  payee; 过户 also the new tenant and whether the balance goes over to them;
- `/admin/accounts/<account_id>/statement`: the settlement statement (结算单), printable;
- `/admin/refunds`: counter and online refunds waiting for a second person, approve / reject.

Everything is `server.tenancy.service` and `server.payments.service` with the staff member's
site ids (a foreign object answers 404). Closing and transfer need Action.ACCOUNTS, refund
approvals Action.MONEY; every step is in the operation log (the services write it).
"""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    field,
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
)
from server.accounts.service.keys import secret_key
from server.core.errors import Conflict, ShuidianError, ValidationFailed
from server.payments.service import (
    approve_counter_refund,
    approve_refund,
    reject_counter_refund,
    reject_refund,
)
from server.payments.service.counter_refunds import (
    CHANNEL_LABELS,
    online_refund_in_scope,
    refund_lines,
)
from server.staff.service.permissions import Action
from server.tenancy.service.closing import (
    CloseRequest,
    FinalReading,
    close_account,
    closing_panel,
    closing_statement,
    complete_after_refund,
    continue_closing,
    open_account_in_scope,
    parse_total,
    read_meters_now,
)
from server.tenancy.service.transfer import NewTenant, transfer_account

bp = admin_blueprint("admin_closing")
ACCOUNTS, REFUNDS = f"{PATH}/accounts", f"{PATH}/refunds"
CHANNELS = {channel.value: label for channel, label in CHANNEL_LABELS.items()}


def _tz(request: Request):  # type: ignore[no-untyped-def]
    return request.app.ctx.settings.tz


# -- the room page's panel --------------------------------------------------------------------
@bp.get(f"{PATH}/rooms/<room_id:int>/closing")
@openapi.exclude()
@staff_required
async def room_closing(request: Request, room_id: int) -> HTTPResponse:
    panel = await closing_panel(await scope_ids(request), room_id)
    return render(request, "closing/_panel.html", panel=panel, tz=_tz(request))


# -- close / transfer forms -------------------------------------------------------------------
async def _form(
    request: Request, account_id: int, template: str, error: str = "", status: int = 200
) -> HTTPResponse:
    site_ids = await scope_ids(request)
    account = await open_account_in_scope(site_ids, account_id)
    if account.room_id is None:  # type: ignore[attr-defined]
        raise Conflict("该账户没有房间")
    panel = await closing_panel(site_ids, account.room_id)  # type: ignore[attr-defined]
    if panel.account is None or panel.account.id != account.id:
        raise Conflict("该账户已销户")
    values = {k: (v[0] if isinstance(v, list) else v) for k, v in dict(request.form or {}).items()}
    return render(
        request, template, status=status, panel=panel, error=error, values=values,
        channels=CHANNELS, tz=_tz(request),
    )  # fmt: skip


def _close_request(request: Request, meter_ids: list[int]) -> CloseRequest:
    readings = tuple(
        FinalReading(m, parse_total(field(request, f"reading_{m}"), f"表{m}")) for m in meter_ids
    )
    channel = field(request, "refund_channel") or "cash"
    if channel not in CHANNELS:
        raise ValidationFailed("退款方式无效", field="refund_channel")
    return CloseRequest(
        readings, channel, field(request, "payee_name"),
        field(request, "payee_account"), field(request, "reason") or "销户退款",
    )  # fmt: skip


@bp.get(f"{ACCOUNTS}/<account_id:int>/close")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def close_form(request: Request, account_id: int) -> HTTPResponse:
    return await _form(request, account_id, "closing/close.html")


@bp.post(f"{ACCOUNTS}/<account_id:int>/close")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def close(request: Request, account_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    account = await open_account_in_scope(site_ids, account_id)
    try:
        panel = await closing_panel(site_ids, account.room_id or 0)  # type: ignore[attr-defined]
        req = _close_request(request, [m.id for m in panel.meters])
        await close_account(
            request.app.ctx.payments, site_ids, account.id, req, actor=staff_of(request).actor
        )
    except (ValidationFailed, Conflict) as exc:
        return await _form(request, account_id, "closing/close.html", exc.message, exc.status_code)
    return redirect(f"{ACCOUNTS}/{account_id}/statement", status=303)


@bp.post(f"{ACCOUNTS}/<account_id:int>/read-now")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def read_now(request: Request, account_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    await read_meters_now(site_ids, account_id, actor=staff_of(request).actor)
    back = field(request, "back")
    target = "transfer" if back == "transfer" else "close"
    return redirect(f"{ACCOUNTS}/{account_id}/{target}?read=1", status=303)


@bp.post(f"{ACCOUNTS}/<account_id:int>/close/continue")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def close_continue(request: Request, account_id: int) -> HTTPResponse:
    await continue_closing(
        request.app.ctx.payments, await scope_ids(request), account_id,
        actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{ACCOUNTS}/{account_id}/statement", status=303)


@bp.get(f"{ACCOUNTS}/<account_id:int>/transfer")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def transfer_form(request: Request, account_id: int) -> HTTPResponse:
    return await _form(request, account_id, "closing/transfer.html")


@bp.post(f"{ACCOUNTS}/<account_id:int>/transfer")
@openapi.exclude()
@staff_required
@requires(Action.ACCOUNTS)
async def transfer(request: Request, account_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    account = await open_account_in_scope(site_ids, account_id)
    ctx = request.app.ctx
    secret = getattr(ctx, "tenant_secret", None) or secret_key(ctx.settings)
    tenant = NewTenant(
        field(request, "tenant_name"), field(request, "phone"), field(request, "number"),
        field(request, "tenant_type") or "company",
    )  # fmt: skip
    try:
        panel = await closing_panel(site_ids, account.room_id or 0)  # type: ignore[attr-defined]
        req = _close_request(request, [m.id for m in panel.meters])
        done = await transfer_account(
            ctx.payments, secret, site_ids, account.id, tenant, req,
            carry_over=field(request, "carry_over") == "1", actor=staff_of(request).actor,
        )  # fmt: skip
    except (ValidationFailed, Conflict) as exc:
        return await _form(
            request, account_id, "closing/transfer.html", exc.message, exc.status_code
        )
    statement = await closing_statement(site_ids, account.id)
    return render(request, "closing/transferred.html", done=done, s=statement, tz=_tz(request))


@bp.get(f"{ACCOUNTS}/<account_id:int>/statement")
@openapi.exclude()
@staff_required
async def statement(request: Request, account_id: int) -> HTTPResponse:
    s = await closing_statement(await scope_ids(request), account_id)
    return render(request, "closing/statement.html", s=s, tz=_tz(request))


# -- refund approvals -------------------------------------------------------------------------
@bp.get(REFUNDS)
@openapi.exclude()
@staff_required
async def refunds(request: Request) -> HTTPResponse:
    lines = await refund_lines(await scope_ids(request), pending_only=True)
    return render(request, "closing/refunds.html", lines=lines, tz=_tz(request))


async def _after(request: Request, account_id: int) -> HTTPResponse:
    await complete_after_refund(account_id, actor=staff_of(request).actor)
    return redirect(REFUNDS, status=303)


@bp.post(f"{REFUNDS}/counter/<counter_refund_id:int>/approve")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def counter_approve(request: Request, counter_refund_id: int) -> HTTPResponse:
    refund = await approve_counter_refund(
        await scope_ids(request), counter_refund_id, actor=staff_of(request).actor
    )
    return await _after(request, refund.account_id)  # type: ignore[attr-defined]


@bp.post(f"{REFUNDS}/counter/<counter_refund_id:int>/reject")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def counter_reject(request: Request, counter_refund_id: int) -> HTTPResponse:
    refund = await reject_counter_refund(
        await scope_ids(request), counter_refund_id, actor=staff_of(request).actor,
        reason=field(request, "reason"),
    )  # fmt: skip
    return await _after(request, refund.account_id)  # type: ignore[attr-defined]


@bp.post(f"{REFUNDS}/online/<refund_id:int>/approve")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def online_approve(request: Request, refund_id: int) -> HTTPResponse:
    account_id = await online_refund_in_scope(await scope_ids(request), refund_id)
    try:
        await approve_refund(request.app.ctx.payments, refund_id, actor=staff_of(request).actor)
    except ShuidianError as exc:
        if exc.status_code in (403, 404, 409):
            raise
        # approved and held; the platform call failed: the payments poller retries it
    return await _after(request, account_id)


@bp.post(f"{REFUNDS}/online/<refund_id:int>/reject")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def online_reject(request: Request, refund_id: int) -> HTTPResponse:
    account_id = await online_refund_in_scope(await scope_ids(request), refund_id)
    reason = field(request, "reason")
    if not reason:
        raise ValidationFailed("驳回必须填写原因", field="reason")
    await reject_refund(refund_id, actor=staff_of(request).actor, reason=reason)
    return await _after(request, account_id)
