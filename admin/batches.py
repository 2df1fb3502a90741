"""Batch operations (批量操作, issue #15): one action on many meters, now or at a set time.

- `GET /admin/batches`: the batches of the scope, newest first, with their progress
  (site and status filters; Excel).
- `GET /admin/batches/new`, `POST /admin/batches` (Action.CONTROL): pick the meters by site,
  building/floor, kind, state and search, or by an uploaded Excel list of addresses; the
  action (分闸/合闸, 保电开/关, 设置电价, 设置表内告警金额, 下发充值, 点抄) and its values; run
  now or at a set time.
- `GET /admin/batches/<batch_id>`: the batch and every meter's state; its `#batch-live`
  part (`/admin/batches/<batch_id>/live`) reloads itself every second while the batch is
  scheduled or running. `?format=xlsx` exports every meter's result.
- `POST /admin/batches/<batch_id>/retry`, `/cancel` (Action.CONTROL): retry the failed and
  expired meters only; cancel what has not been sent.

Everything goes through `server.metering.service.batches` with the staff member's site ids
(another organisation's batch answers 404); the service writes the operation log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePath

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
    paging,
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
    xlsx,
)
from server.core.errors import ValidationFailed
from server.core.excel import Sheet
from server.core.paging import Paging
from server.metering.service import batches as svc
from server.metering.vocabulary import KIND_LABELS, MeterKind
from server.staff.service.oplog import actor_names
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_batches")
BATCHES = f"{PATH}/batches"
FORM_FIELDS = (
    "site", "place", "kind", "state", "search", "action", "title", "when", "run_at",
    "price_1", "price_2", "price_3", "price_4", "alarm_1", "alarm_2",
)  # fmt: skip


def _fmt(request: Request) -> object:
    def fmt(at: object, pattern: str = "%m-%d %H:%M:%S") -> str:
        local = local_time(request, at)
        return local.strftime(pattern) if local is not None else "—"  # type: ignore[attr-defined]

    return fmt


def _labels() -> dict[str, object]:
    return {
        "actions": svc.ACTION_LABELS, "statuses": svc.STATUS_LABELS,
        "item_labels": svc.ITEM_LABELS, "states": svc.STATES, "kinds": KIND_LABELS,
        "meter_billed_only": [a.value for a in svc.METER_BILLED_ONLY], "bands": svc.BANDS,
    }  # fmt: skip


@bp.get(BATCHES)
@openapi.exclude()
@staff_required
async def batch_list(request: Request) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await scope_ids(request)
    site_id, status = int_arg(request, "site"), arg(request, "status")
    if arg(request, "format") == "xlsx":
        every = await svc.list_batches(
            site_ids, Paging.everything(), site_id=site_id, status=status
        )
        names = await actor_names(b.created_by for b in every.items)
        return xlsx("批量操作.xlsx", _batches_sheet(request, every.items, names))
    page = await svc.list_batches(site_ids, paging(request), site_id=site_id, status=status)
    return render(
        request, "batches/list.html", page=page, args=request.args, site_id=site_id,
        chosen=status, sites=await staff.scope.sites(), when=_fmt(request),
        names=await actor_names(b.created_by for b in page.items), **_labels(),
    )  # fmt: skip


BATCH_HEADERS = [
    "编号", "站点", "操作", "名称", "状态", "执行时间", "仪表数", "已确认", "失败/过期",
    "已取消/未执行", "创建人", "创建时间", "完成时间",
]  # fmt: skip


def _batches_sheet(request: Request, rows: Sequence[svc.BatchRow], names: dict[str, str]) -> Sheet:
    def row(b: svc.BatchRow) -> list[object]:
        c = b.counts
        return [
            b.id, b.site_id, b.action_label, b.title, b.status_label,
            local_time(request, b.run_at), b.total, c.get("acked", 0), b.failed,
            c.get("cancelled", 0) + c.get("skipped", 0), names.get(b.created_by, b.created_by),
            local_time(request, b.created_at), local_time(request, b.finished_at),
        ]  # fmt: skip

    return Sheet("批量操作", BATCH_HEADERS, [row(b) for b in rows],
                 widths=[8, 8, 12, 30, 8, 18, 8, 8, 10, 12, 12, 18, 18])  # fmt: skip


async def _form_page(
    request: Request, values: dict[str, str], error: str = "", status: int = 200
) -> HTTPResponse:
    staff = staff_of(request)
    site_ids = await scope_ids(request)
    return render(
        request, "batches/new.html", status=status, values=values, error=error,
        sites=await staff.scope.sites(), floors=await svc.floor_choices(site_ids), **_labels(),
    )  # fmt: skip


@bp.get(f"{BATCHES}/new")
@openapi.exclude()
@staff_required
@requires(Action.CONTROL)
async def batch_new(request: Request) -> HTTPResponse:
    values = {name: arg(request, name) for name in FORM_FIELDS}
    values["action"] = values["action"] or "trip"
    values["when"] = values["when"] or "now"
    return await _form_page(request, values)


def _selection(request: Request, values: dict[str, str], site_ids: Sequence[int]) -> svc.Selection:
    place = values["place"]
    building_id = floor_id = None
    kind_text, _, ident = place.partition(":")
    if place and (kind_text not in ("b", "f") or not ident.isdigit() or len(ident) > 9):
        raise ValidationFailed("请选择楼栋或楼层")
    if kind_text == "b":
        building_id = int(ident)
    elif kind_text == "f":
        floor_id = int(ident)
    site = values["site"]
    if not site.isdigit() or len(site) > 9:
        raise ValidationFailed("请选择站点")
    try:
        kind = MeterKind(values["kind"]) if values["kind"] else None
    except ValueError as exc:
        raise ValidationFailed("未知的仪表类型") from exc
    addresses: tuple[str, ...] = ()
    source = ""
    sent = (request.files or {}).get("file")
    if sent is not None and sent.body:
        source = PurePath(sent.name or "").name[:200]
        if not source.lower().endswith(".xlsx"):
            raise ValidationFailed("请上传 .xlsx 文件（Excel 2007 及以上）")
        addresses = tuple(svc.parse_address_list(sent.body))
    state = values["state"]
    if state and state not in svc.STATES:
        raise ValidationFailed("未知的仪表状态筛选")
    return svc.Selection(
        site_id=int(site), building_id=building_id, floor_id=floor_id, kind=kind,
        state=state or None, search=values["search"][:50], addresses=addresses, source=source,
    )  # fmt: skip


def _run_at(request: Request, values: dict[str, str]) -> datetime | None:
    if values["when"] != "later":
        return None
    text = values["run_at"]
    try:
        naive = datetime.fromisoformat(text) if text and len(text) <= 32 else None
    except ValueError:
        naive = None
    if naive is None or naive.tzinfo is not None:
        raise ValidationFailed("请填写执行时间（年-月-日 时:分）")
    return naive.replace(tzinfo=request.app.ctx.settings.tz)


@bp.post(BATCHES)
@openapi.exclude()
@staff_required
@requires(Action.CONTROL)
async def batch_create(request: Request) -> HTTPResponse:
    values = {name: field(request, name) for name in FORM_FIELDS}
    site_ids = await scope_ids(request)
    try:
        selection = _selection(request, values, site_ids)
        batch = await svc.create_batch(
            site_ids, action=values["action"], selection=selection, params=values,
            run_at=_run_at(request, values), title=values["title"],
            actor=staff_of(request).actor,
        )  # fmt: skip
    except ValidationFailed as exc:
        return await _form_page(request, values, exc.message, status=422)
    return redirect(f"{BATCHES}/{batch.id}", status=303)


@bp.get(f"{BATCHES}/<batch_id:int>")
@openapi.exclude()
@staff_required
async def batch_detail(request: Request, batch_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    if arg(request, "format") == "xlsx":
        b = await svc.batch_view(site_ids, batch_id)
        every = await svc.batch_items(site_ids, batch_id, Paging.everything())
        return xlsx(f"批量操作-{b.id}.xlsx", _items_sheet(request, every.items))
    return await _live(request, batch_id, "batches/detail.html")


@bp.get(f"{BATCHES}/<batch_id:int>/live")
@openapi.exclude()
@staff_required
async def batch_live(request: Request, batch_id: int) -> HTTPResponse:
    return await _live(request, batch_id, "batches/_live.html")


async def _live(request: Request, batch_id: int, template: str) -> HTTPResponse:
    site_ids = await scope_ids(request)
    b = await svc.batch_view(site_ids, batch_id)
    status = arg(request, "status")
    page = await svc.batch_items(site_ids, batch_id, paging(request), status=status or None)
    names = await actor_names([b.created_by])
    return render(
        request, template, b=b, page=page, args=request.args, shown=status,
        when=_fmt(request), names=names, done=arg(request, "done"), **_labels(),
    )  # fmt: skip


ITEM_HEADERS = ["表地址", "类型", "房间", "状态", "结果", "原因", "尝试", "发送时间", "结束时间"]


def _items_sheet(request: Request, rows: Sequence[svc.ItemRow]) -> Sheet:
    def row(i: svc.ItemRow) -> list[object]:
        return [
            i.address, KIND_LABELS[i.kind], i.room, i.status_label, i.result_text, i.error,
            i.tries, local_time(request, i.sent_at), local_time(request, i.finished_at),
        ]  # fmt: skip

    return Sheet("结果", ITEM_HEADERS, [row(i) for i in rows],
                 widths=[16, 6, 12, 8, 30, 40, 6, 18, 18])  # fmt: skip


@bp.post(f"{BATCHES}/<batch_id:int>/retry")
@openapi.exclude()
@staff_required
@requires(Action.CONTROL)
async def batch_retry(request: Request, batch_id: int) -> HTTPResponse:
    n = await svc.retry_failed(await scope_ids(request), batch_id, actor=staff_of(request).actor)
    return redirect(f"{BATCHES}/{batch_id}?done=retry-{n}", status=303)


@bp.post(f"{BATCHES}/<batch_id:int>/cancel")
@openapi.exclude()
@staff_required
@requires(Action.CONTROL)
async def batch_cancel(request: Request, batch_id: int) -> HTTPResponse:
    n = await svc.cancel(await scope_ids(request), batch_id, actor=staff_of(request).actor)
    return redirect(f"{BATCHES}/{batch_id}?done=cancel-{n}", status=303)
