"""The control panel (远程控制): buttons that send a meter a command, and the command's state
watched live, on the room page and on the meter page.

- `GET /admin/rooms/<room_id>/control`: the panel of a room, one card per meter in service
  (loaded by htmx from the room page's #room-panels).
- `GET /admin/meters/<meter_id>/control`: one meter's card (the meter page loads it; the
  card reloads itself every second while one of its commands is queued or sent, and stops
  polling once all are acked, failed or expired).
- `GET /admin/meters/<meter_id>/commands`: every command of the meter, paged (Excel too).
- `POST /admin/meters/<meter_id>/command`: queue the button's command (needs
  Action.CONTROL); `back` says which page to return to.

Pages call `server.metering.service.control` with the staff member's site ids (another
organisation's room or meter answers 404, nothing queued); the command service writes the
operation log with the staff member as actor.
"""

from __future__ import annotations

from collections.abc import Sequence

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    PATH,
    admin_blueprint,
    arg,
    field,
    local_time,
    paging,
    render,
    requires,
    scope_ids,
    staff_of,
    staff_required,
    xlsx,
)
from server.core.excel import Sheet
from server.core.paging import Paging
from server.metering.service.control import (
    CommandLine,
    command_history,
    meter_panel,
    room_panels,
    send,
)
from server.staff.service.oplog import actor_names
from server.staff.service.permissions import Action

bp = admin_blueprint("admin_control")


def _when(request: Request) -> object:
    def fmt(at: object, pattern: str = "%m-%d %H:%M:%S") -> str:
        local = local_time(request, at)
        return local.strftime(pattern) if local is not None else "—"  # type: ignore[attr-defined]

    return fmt


@bp.get(f"{PATH}/rooms/<room_id:int>/control")
@openapi.exclude()
@staff_required
async def room_control(request: Request, room_id: int) -> HTTPResponse:
    panels = await room_panels(await scope_ids(request), room_id)
    return render(
        request, "control/room_panel.html", panels=panels, room_id=room_id,
        when=_when(request), back=f"room:{room_id}",
        names=await actor_names(c.actor for p in panels for c in p.commands),
    )  # fmt: skip


@bp.get(f"{PATH}/meters/<meter_id:int>/control")
@openapi.exclude()
@staff_required
async def meter_control(request: Request, meter_id: int) -> HTTPResponse:
    p = await meter_panel(await scope_ids(request), meter_id)
    back = arg(request, "back")
    return render(
        request, "control/meter_card.html", p=p, when=_when(request),
        back=back if _back_url(back, meter_id) else "meter",
        names=await actor_names(c.actor for c in p.commands),
    )  # fmt: skip


@bp.get(f"{PATH}/meters/<meter_id:int>/commands")
@openapi.exclude()
@staff_required
async def meter_commands(request: Request, meter_id: int) -> HTTPResponse:
    site_ids = await scope_ids(request)
    if arg(request, "format") == "xlsx":
        p, every = await command_history(site_ids, meter_id, Paging.everything())
        names = await actor_names(c.actor for c in every.items)
        return xlsx(f"命令记录-{p.address}.xlsx", _sheet(request, every.items, names))
    p, page = await command_history(site_ids, meter_id, paging(request))
    return render(
        request, "control/commands.html", p=p, page=page, args=request.args, when=_when(request),
        names=await actor_names(c.actor for c in page.items),
    )  # fmt: skip


HEADERS = ["编号", "创建时间", "命令", "状态", "发起", "原因", "尝试次数", "发送时间", "结束时间",
           "说明"]  # fmt: skip


def _sheet(request: Request, rows: Sequence[CommandLine], names: dict[str, str]) -> Sheet:
    def row(c: CommandLine) -> list[object]:
        return [
            c.id, local_time(request, c.created_at), c.op_label, c.status_label,
            names.get(c.actor, c.actor), c.reason, c.attempts, local_time(request, c.sent_at),
            local_time(request, c.finished_at), c.detail,
        ]  # fmt: skip

    return Sheet(
        "命令", HEADERS, [row(c) for c in rows], widths=[8, 18, 12, 8, 12, 24, 8, 18, 18, 40]
    )


def _back_url(back: str, meter_id: int) -> str:
    """Where the form returns: the room page it came from, else the meter page."""
    if back == "meter":
        return f"{PATH}/meters/{meter_id}"
    kind, _, ident = back.partition(":")
    if kind == "room" and ident.isdigit() and len(ident) < 10:
        return f"{PATH}/rooms/{ident}"
    return ""


@bp.post(f"{PATH}/meters/<meter_id:int>/command")
@openapi.exclude()
@staff_required
@requires(Action.CONTROL)
async def meter_command(request: Request, meter_id: int) -> HTTPResponse:
    await send(
        await scope_ids(request), meter_id, field(request, "op"),
        actor=staff_of(request).actor, token=field(request, "token"),
        alarm_1=field(request, "alarm_1"), alarm_2=field(request, "alarm_2"),
    )  # fmt: skip
    back = _back_url(field(request, "back"), meter_id) or f"{PATH}/meters/{meter_id}"
    return redirect(f"{back}#control-meter-{meter_id}", status=303)
