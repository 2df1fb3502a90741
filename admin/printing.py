"""Print templates (自定义打印模板, issue #17) over `server.property.service.prints`:

- `/admin/print-templates?site=&kind=bill|receipt`: the site's organisation's template for
  bills or counter receipts — its source, the variables it may use, a preview with the site's
  newest real bill or receipt; POST: 预览 a draft, 保存 (only a template that renders), 恢复默认;
- `/admin/bills/<bill_id>/print`: the bill on paper (the browser prints it: print CSS hides
  the toolbar), `?format=pdf` the same page as PDF (WeasyPrint);
- `paper(...)` answers both for the counter receipt too (`/admin/finance/receipts/<id>`).

A template that fails shows its error (422), never a 500. Editing needs Action.MONEY (the
clerks who print bills and receipts); everyone in scope may read and print.
"""

from __future__ import annotations

from urllib.parse import quote

from sanic import Request
from sanic.response import HTTPResponse, html, raw, redirect
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
    templates,
)
from server.core.errors import NotFound, ValidationFailed
from server.property.printing import KIND_LABELS, PrintKind
from server.property.service import prints
from server.property.service.prints import Printed
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_printing")
PRINTS = f"{PATH}/print-templates"
PRINT_SCRIPT = '<script src="/admin/static/closing.js" defer></script>'


async def paper(
    request: Request, printed: Printed, *, filename: str, back: tuple[str, str]
) -> HTTPResponse:
    """The printable page (toolbar: back, print, PDF, the template), or with `?format=pdf`
    the PDF download; a failed template answers its message with 422."""
    toolbar = templates.get_template("print/_toolbar.html").render(
        back=back, pdf=f"{request.path}?format=pdf", kind=printed.kind, site_id=printed.site_id,
        problem=printed.problem, staff=staff_of(request),
    )  # fmt: skip
    status = 422 if printed.problem else 200
    if arg(request, "format") != "pdf" or printed.problem:
        return html(printed.html(head=PRINT_SCRIPT, before=toolbar), status=status)
    data = await prints.pdf_of(printed.html())
    return raw(
        data,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f"attachment; filename=\"print.pdf\"; filename*=UTF-8''"
            f"{quote(filename)}"
        },
    )


async def _editor(
    request: Request, site_id: int | None, kind: PrintKind, *, status: int = 200, **extra: object
) -> HTTPResponse:
    sites = await staff_of(request).scope.sites()
    if not sites:
        raise NotFound("没有可管理的园区")
    site_ids = [s.id for s in sites]
    site_id = site_id if site_id is not None else sites[0].id
    view = await prints.template_of(site_ids, site_id, kind)
    draft = extra.pop("draft", None)
    tz = request.app.ctx.settings.tz
    shown = extra.pop("shown", None) or await prints.preview(site_ids, site_id, kind, None, tz)
    return render(
        request, "print/templates.html", status=status, view=view, sites=sites,
        site_id=site_id, kind=kind, kinds=KIND_LABELS,
        source=view.source if draft is None else draft, shown=shown,
        preview_html=shown.html() if not shown.problem else "", **extra,
    )  # fmt: skip


@bp.get(PRINTS)
@openapi.exclude()
@staff_required
async def template_page(request: Request) -> HTTPResponse:
    kind = prints.kind_of(arg(request, "kind") or PrintKind.BILL.value)
    return await _editor(request, int_arg(request, "site"), kind, saved=arg(request, "saved"))


@bp.post(PRINTS)
@openapi.exclude()
@staff_required
@requires(Action.MONEY)
async def template_save(request: Request) -> HTTPResponse:
    site = field(request, "site_id")
    if not site.isdigit() or len(site) > 9:
        raise NotFound("站点不存在")
    site_id = (await staff_of(request).scope.site(int(site))).id  # outside the scope: 404
    kind = prints.kind_of(field(request, "kind"))
    source = ((request.form or {}).get("source") or "").replace("\r\n", "\n")
    site_ids, actor = await scope_ids(request), staff_of(request).actor
    tz = request.app.ctx.settings.tz
    action = field(request, "action")
    if action == "reset":
        await prints.reset_template(site_ids, site_id, kind, actor=actor)
        return redirect(f"{PRINTS}?site={site_id}&kind={kind.value}&saved=reset", status=303)
    if action == "preview":
        shown = await prints.preview(site_ids, site_id, kind, source, tz)
        status = 422 if shown.problem else 200
        return await _editor(request, site_id, kind, status=status, draft=source, shown=shown)
    try:
        await prints.save_template(site_ids, site_id, kind, source, actor=actor, tz=tz)
    except ValidationFailed as exc:
        shown = await prints.preview(site_ids, site_id, kind, source, tz)
        return await _editor(
            request, site_id, kind, status=exc.status_code, error=exc.message, draft=source,
            shown=shown,
        )  # fmt: skip
    return redirect(f"{PRINTS}?site={site_id}&kind={kind.value}&saved=1", status=303)


@bp.get(f"{PATH}/bills/<bill_id:int>/print")
@openapi.exclude()
@staff_required
async def bill_print(request: Request, bill_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    printed = await prints.print_bill(site_ids, bill_id, request.app.ctx.settings.tz)
    back = (f"{PATH}/bills/{bill_id}", "返回账单")
    return await paper(request, printed, filename=f"{printed.title}.pdf", back=back)
