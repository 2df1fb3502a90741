"""The notifier's pages: the delivery log (/admin/notify: every message of the scope's sites,
searched by account number, recipient, channel, state, site and dates, paged, exported to
Excel; a failed message resent as a new one) and the template editor
(/admin/notify/templates: an organisation's own texts, checked in the Jinja2 sandbox on save,
and a site's quiet hours for voice calls); an account's recipients and their channels per
message kind (/admin/accounts/<id>/recipients: the owner, the accountants bound in WeChat,
the contacts staff add). Resending, quiet hours and recipients need the NOTIFY action,
templates (organisation-wide) the STAFF action (the page itself: NOTIFY); each change is in
the operation log."""

from __future__ import annotations

from datetime import date

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    PATH,
    NotAllowed,
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
from server.core.errors import NotFound, ValidationFailed
from server.core.excel import Sheet
from server.core.paging import Paging
from server.notify import templates
from server.notify.service import deliveries, overrides, recipients
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_notify")
NOTIFY = f"{PATH}/notify"


def _day(request: Request, name: str) -> date | None:
    try:
        return date.fromisoformat(arg(request, name))
    except ValueError:
        return None


@bp.get(NOTIFY)
@openapi.exclude()
@staff_required
async def delivery_log(request: Request) -> HTTPResponse:
    # A site outside the scope is a 404, as on every list.
    site_ids = await staff_of(request).scope.site_ids_of(int_arg(request, "site"))
    wanted = deliveries.Search.of(
        account=arg(request, "account"), phone=arg(request, "phone"),
        channel=arg(request, "channel"), state=arg(request, "state"),
        site_id=int_arg(request, "site"), since=_day(request, "since"),
        until=_day(request, "until"),
    )  # fmt: skip
    export = arg(request, "format") == "xlsx"
    tz = request.app.ctx.settings.tz
    found = await deliveries.search_rows(
        site_ids, wanted, Paging.everything() if export else paging(request), tz
    )
    if export:
        rows = [
            (r.at, r.site, r.account, r.channel_label, r.role_label, r.recipient, r.text,
             r.state_label, r.attempts, r.provider, r.error_code, r.error_reason, r.sent_at,
             r.delivered_at)
            for r in found.items
        ]  # fmt: skip
        headers = ["时间", "园区", "账户", "渠道", "接收人", "号码/地址", "内容", "状态",
                   "尝试次数", "服务商", "错误码", "原因", "发送时间", "送达时间"]  # fmt: skip
        return xlsx("消息记录.xlsx", Sheet("消息记录", headers, rows, widths=(20, 14, 24)))
    return render(
        request, "notify_log.html", page=found, args=request.args, wanted=wanted,
        sites=await staff_of(request).scope.sites(), channels=deliveries.CHANNELS,
        states=deliveries.STATES, resent=int_arg(request, "resent"),
    )  # fmt: skip


@bp.post(f"{NOTIFY}/resend")
@openapi.exclude()
@staff_required
@requires(Action.NOTIFY)
async def resend(request: Request) -> HTTPResponse:
    message_id = field(request, "message")
    if not message_id.isdigit() or len(message_id) > 18:
        raise NotFound("消息不存在")
    new = await deliveries.resend(
        await scope_ids(request), int(message_id), actor=staff_of(request).actor
    )
    return redirect(f"{NOTIFY}?resent={new.id}", status=303)


async def _editor(request: Request, site_id: int | None, status: int = 200, **extra: object):  # type: ignore[no-untyped-def]
    staff = staff_of(request)
    if not staff.may(Action.NOTIFY):  # the roles with STAFF have NOTIFY too
        raise NotAllowed(Action.NOTIFY)
    sites = await staff.scope.sites()
    if not sites:
        raise NotFound("没有可管理的园区")
    site_ids = [s.id for s in sites]
    site_id = site_id if site_id is not None else sites[0].id
    views = await overrides.template_views(site_ids, site_id)
    quiet = await overrides.quiet_hours(site_ids, site_id)
    return render(
        request, "notify_templates.html", status=status, views=views, quiet=quiet,
        sites=sites, site_id=site_id, free_text=overrides.FREE_TEXT_LABEL, **extra,
    )  # fmt: skip


@bp.get(f"{NOTIFY}/templates")
@openapi.exclude()
@staff_required
async def templates_page(request: Request) -> HTTPResponse:
    return await _editor(
        request, int_arg(request, "site"), saved=arg(request, "saved"), key=arg(request, "key")
    )


@bp.post(f"{NOTIFY}/templates")
@openapi.exclude()
@staff_required
@requires(Action.STAFF)
async def save_template(request: Request) -> HTTPResponse:
    site = field(request, "site")
    site_id = int(site) if site.isdigit() and len(site) < 10 else -1
    key, text = field(request, "key"), (request.form or {}).get("text", "") or ""
    site_ids = await scope_ids(request)
    actor = staff_of(request).actor
    try:
        if field(request, "drop") == "1":
            await overrides.drop_override(site_ids, site_id, key, actor=actor)
        else:
            await overrides.save_override(site_ids, site_id, key, text.strip(), actor=actor)
    except ValidationFailed as exc:
        return await _editor(
            request, site_id, status=exc.status_code, error=exc.message, key=key, draft=text
        )
    return redirect(f"{NOTIFY}/templates?site={site_id}&saved={key}#t-{key}", status=303)


@bp.post(f"{NOTIFY}/quiet")
@openapi.exclude()
@staff_required
@requires(Action.NOTIFY)
async def save_quiet_hours(request: Request) -> HTTPResponse:
    site = field(request, "site")
    site_id = int(site) if site.isdigit() and len(site) < 10 else -1
    try:
        await overrides.set_quiet_hours(
            await scope_ids(request), site_id, field(request, "start"), field(request, "end"),
            actor=staff_of(request).actor,
        )  # fmt: skip
    except ValidationFailed as exc:
        return await _editor(request, site_id, status=exc.status_code, quiet_error=exc.message)
    return redirect(f"{NOTIFY}/templates?site={site_id}&saved=quiet", status=303)


# -- an account's recipients -----------------------------------------------------------------
RECIPIENTS = f"{PATH}/accounts/<account_id:int>/recipients"


async def _recipients(request: Request, account_id: int, status: int = 200, **extra: object):  # type: ignore[no-untyped-def]
    view = await recipients.account_recipients(await scope_ids(request), account_id)
    return render(
        request, "notify_recipients.html", status=status, v=view,
        kinds=[(k, templates.KINDS[k]) for k in templates.TENANT_KINDS],
        groups=recipients.GROUP_LABELS, applies=recipients.applies,
        roles=[(r.value, recipients.ROLE_LABELS[r]) for r in recipients.CONTACT_ROLES],
        saved=arg(request, "saved"), **extra,
    )  # fmt: skip


@bp.get(RECIPIENTS)
@openapi.exclude()
@staff_required
async def recipients_page(request: Request, account_id: int) -> HTTPResponse:
    return await _recipients(request, account_id)


@bp.post(RECIPIENTS)
@openapi.exclude()
@staff_required
@requires(Action.NOTIFY)
async def add_recipient(request: Request, account_id: int) -> HTTPResponse:
    try:
        await recipients.add_contact(
            await scope_ids(request), account_id, role=field(request, "role"),
            name=field(request, "name"), phone=field(request, "phone"),
            email=field(request, "email"), actor=staff_of(request).actor,
        )  # fmt: skip
    except ValidationFailed as exc:
        form = {k: field(request, k) for k in ("role", "name", "phone", "email")}
        return await _recipients(
            request, account_id, status=exc.status_code, error=exc.message, form=form
        )
    return redirect(f"{PATH}/accounts/{account_id}/recipients?saved=added", status=303)


@bp.post(f"{RECIPIENTS}/remove")
@openapi.exclude()
@staff_required
@requires(Action.NOTIFY)
async def remove_recipient(request: Request, account_id: int) -> HTTPResponse:
    contact = field(request, "contact")
    if not contact.isdigit() or len(contact) > 9:
        raise NotFound("接收人不存在")
    await recipients.remove_contact(
        await scope_ids(request), account_id, int(contact), actor=staff_of(request).actor
    )
    return redirect(f"{PATH}/accounts/{account_id}/recipients?saved=removed", status=303)


@bp.post(f"{RECIPIENTS}/preferences")
@openapi.exclude()
@staff_required
@requires(Action.NOTIFY)
async def save_recipient_preferences(request: Request, account_id: int) -> HTTPResponse:
    who = field(request, "who")
    await recipients.save_preferences(
        await scope_ids(request), account_id, who, recipients.checked(list(request.form or {})),
        actor=staff_of(request).actor,
    )  # fmt: skip
    return redirect(f"{PATH}/accounts/{account_id}/recipients?saved={who}#r-{who}", status=303)
