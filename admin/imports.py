"""The park's Excel import (/admin/import): choose a site, download the template, upload the
workbook, read the preview (what would be created, every problem by sheet, row and column),
confirm. The previewed file waits server-side (server.imports.service.drafts) under a key
only its staff member can use for that site; the confirm form carries the key, never a file.
Every page needs the structure action and a site in the staff member's scope (else 404)."""

from __future__ import annotations

from pathlib import PurePath

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext import openapi

from admin.web import PATH, admin_blueprint, render, requires, staff_of, staff_required, xlsx
from server.core.errors import ValidationFailed
from server.core.excel import MAX_UPLOAD_BYTES
from server.core.sessions import KeyedSessions
from server.imports.service import drafts
from server.imports.service.park import ImportRefused, commit, preview
from server.imports.service.workbook import template
from server.staff.service.permissions import Action
from server.staff.service.scope import SiteRef

bp = admin_blueprint("admin_imports")
TEMPLATE_NAME = "园区导入模板.xlsx"


@bp.before_server_start
async def _start_drafts(app: Sanic) -> None:
    if getattr(app.ctx, "import_drafts", None) is None:
        app.ctx.import_drafts = drafts.draft_store(app.ctx.redis)


def _drafts(request: Request) -> KeyedSessions:
    return request.app.ctx.import_drafts


@bp.get(f"{PATH}/import")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def sites(request: Request) -> HTTPResponse:
    return render(request, "imports.html", sites=await staff_of(request).scope.sites())


@bp.get(f"{PATH}/import/template")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def template_file(request: Request) -> HTTPResponse:
    return xlsx(TEMPLATE_NAME, *template())


@bp.get(f"{PATH}/import/<site_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def upload_form(request: Request, site_id: int) -> HTTPResponse:
    return _upload_page(request, await staff_of(request).scope.site(site_id))


def _upload_page(request: Request, site: SiteRef, error: str = "") -> HTTPResponse:
    status = 422 if error else 200
    return render(
        request, "import_upload.html", status=status, site=site, error=error,
        max_mb=MAX_UPLOAD_BYTES >> 20,
    )  # fmt: skip


@bp.post(f"{PATH}/import/<site_id:int>")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def upload(request: Request, site_id: int) -> HTTPResponse:
    staff = staff_of(request)
    site = await staff.scope.site(site_id)
    sent = (request.files or {}).get("file")
    name = PurePath(sent.name or "").name[:200] if sent else ""
    try:
        if sent is None or not sent.body:
            raise ValidationFailed("请选择要上传的 Excel 文件")
        if not name.lower().endswith(".xlsx"):
            raise ValidationFailed("请上传 .xlsx 文件（Excel 2007 及以上；.xls 请先另存为 .xlsx）")
        seen = await preview(site.id, sent.body)
    except ValidationFailed as exc:
        return _upload_page(request, site, exc.message)
    key = ""
    if not seen.problems:
        key = await drafts.keep(_drafts(request), staff.id, drafts.Draft(site.id, name, sent.body))
    return render(
        request, "import_preview.html", site=site, file_name=name, counts=seen.counts,
        problems=seen.problems, key=key,
    )  # fmt: skip


@bp.post(f"{PATH}/import/<site_id:int>/commit")
@openapi.exclude()
@staff_required
@requires(Action.STRUCTURE)
async def confirm(request: Request, site_id: int) -> HTTPResponse:
    staff = staff_of(request)
    site = await staff.scope.site(site_id)
    key = (request.form or {}).get("key", "")
    draft = await drafts.peek(_drafts(request), key, staff.id, site.id)
    try:
        counts = await commit(site.id, draft.data, file_name=draft.file_name, actor=staff.actor)
    except ImportRefused as exc:  # the site changed since the preview
        return render(
            request, "import_preview.html", status=422, site=site, file_name=draft.file_name,
            counts={}, problems=exc.problems, key="", error=exc.message,
        )  # fmt: skip
    await drafts.forget(_drafts(request), key)
    return render(request, "import_done.html", site=site, file_name=draft.file_name, counts=counts)
