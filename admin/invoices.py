"""The 发票 pages: every invoice of the scope's sites, filtered by state, site, the month it
was issued in (the finance month) and a number or buyer, paged and exported to Excel; one
invoice with its lines, the payments it covers, the platform's answer and its red/blue pair.
Approving, rejecting a request and sending a failed invoice again need the MONEY action (收费
退费); the issuing worker does the rest (server/invoices/service/issuing.py)."""

from __future__ import annotations

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
    xlsx_stream,
)
from server.core.excel import StreamSheet
from server.invoices.service import issuing, listing
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_invoices")
INVOICES = f"{PATH}/invoices"


@bp.get(INVOICES)
@openapi.exclude()
@staff_required
async def invoice_list(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await staff.scope.site_ids_of(int_arg(request, "site"))  # outside: 404
    wanted = listing.InvoiceFilter.of(
        status=arg(request, "status"), site_id=int_arg(request, "site"),
        month=arg(request, "month"), q=arg(request, "q"),
    )  # fmt: skip
    tz = request.app.ctx.settings.tz
    if arg(request, "format") == "xlsx":
        name = f"发票{wanted.month_text or ''}.xlsx"
        sheet = StreamSheet(
            "发票", listing.EXPORT_COLUMNS, listing.export_chunks(site_ids, wanted, tz)
        )
        return await xlsx_stream(request, name, sheet)
    page = await listing.search(site_ids, wanted, paging(request), tz)
    return render(
        request, "invoices/list.html", page=page, args=request.args, wanted=wanted,
        sites=await staff.scope.sites(), statuses=listing.STATUSES,
    )  # fmt: skip


@bp.get(f"{INVOICES}/<invoice_id:int>")
@openapi.exclude()
@staff_required
async def invoice_page(request: Request, invoice_id: int) -> HTTPResponse:
    invoice = await listing.detail(await scope_ids(request), invoice_id)
    return render(request, "invoices/detail.html", invoice=invoice, done=arg(request, "done"))


@bp.post(f"{INVOICES}/<invoice_id:int>/approve")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def approve(request: Request, invoice_id: int) -> HTTPResponse:
    await issuing.approve(
        invoice_id, actor=staff_of(request).actor, site_ids=await scope_ids(request)
    )
    return redirect(f"{INVOICES}/{invoice_id}?done=approved", status=303)


@bp.post(f"{INVOICES}/<invoice_id:int>/reject")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def reject(request: Request, invoice_id: int) -> HTTPResponse:
    await issuing.reject(
        invoice_id, field(request, "note"), actor=staff_of(request).actor,
        site_ids=await scope_ids(request),
    )  # fmt: skip
    return redirect(f"{INVOICES}/{invoice_id}?done=rejected", status=303)


@bp.post(f"{INVOICES}/<invoice_id:int>/retry")
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def retry(request: Request, invoice_id: int) -> HTTPResponse:
    await issuing.retry(
        invoice_id, actor=staff_of(request).actor, site_ids=await scope_ids(request)
    )
    return redirect(f"{INVOICES}/{invoice_id}?done=retried", status=303)
