"""What every admin page shares: the Jinja2 templates (autoescaped), the staff session cookie,
the CSRF check of state-changing requests, and the guards that put the signed-in staff member
on `request.ctx.staff` (or send the browser to the sign-in page).

Cookies: `sd_admin` holds the session token (HttpOnly, SameSite=Lax, Secure when the request
came over TLS, path /admin); before sign-in `sd_admin_pre` holds the sign-in form's CSRF token
(double submit), so a foreign page cannot sign a browser in either.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, raw, redirect

from server.core.errors import Forbidden, ShuidianError
from server.core.excel import XLSX_TYPE, Sheet, StreamSheet, stream_xlsx, write_xlsx
from server.core.money import yuan
from server.core.paging import Paging
from server.staff.service.permissions import ACTION_LABELS, Action
from server.staff.service.signin import Staff, StaffDoor, current

ADMIN_DIR = Path(__file__).parent
COOKIE = "sd_admin"
PRE_COOKIE = "sd_admin_pre"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PATH = "/admin"

Handler = Callable[..., Awaitable[HTTPResponse]]


class CsrfRefused(Forbidden):
    code = "csrf_refused"

    def __init__(self) -> None:
        super().__init__("页面已过期或请求来源不明，请刷新页面后重试")


class NotAllowed(Forbidden):
    code = "not_allowed"

    def __init__(self, action: Action) -> None:
        super().__init__(f"您的角色无权进行此操作（{ACTION_LABELS[action]}）")


def _money(fen: int) -> str:
    return f"¥{yuan(fen):,.2f}"


def _quantity(value: Decimal) -> str:
    return f"{value:,.1f}"


templates = Environment(
    loader=FileSystemLoader(ADMIN_DIR / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["money"] = _money
templates.filters["quantity"] = _quantity


def _query_with(args: Any, **changes: Any) -> str:
    """The current query string with `changes` (the pager's links keep the filter)."""
    from urllib.parse import urlencode

    pairs = [(k, v) for k, vs in dict(args).items() if k not in changes for v in vs]
    pairs += [(k, str(v)) for k, v in changes.items()]
    return urlencode(pairs)


templates.globals["query_with"] = _query_with


def local_time(request: Request, at: Any) -> Any:
    """A stored (UTC) time in the park's zone (settings.timezone); None stays None."""
    return at.astimezone(request.app.ctx.settings.tz) if at is not None else None


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTTPResponse:
    """The template with the staff member, the path and `local(at)` (times in the park's zone)."""
    context.setdefault("staff", getattr(request.ctx, "staff", None))
    context.setdefault("path", request.path)
    context.setdefault("local", lambda at: local_time(request, at))
    return html(templates.get_template(name).render(**context), status=status)


def door(request: Request) -> StaffDoor:
    return request.app.ctx.staff_door


def client_ip(request: Request) -> str:
    return request.remote_addr or request.ip or "?"


def session_token(request: Request) -> str:
    return request.cookies.get(COOKIE, "")


def set_cookie(
    request: Request, response: HTTPResponse, name: str, value: str, *, max_age: int | None = None
) -> None:
    response.add_cookie(
        name, value, path=PATH, httponly=True, samesite="Lax",
        secure=request.scheme == "https", max_age=max_age,
    )  # fmt: skip


def drop_cookie(request: Request, response: HTTPResponse, name: str) -> None:
    set_cookie(request, response, name, "", max_age=0)


def new_pre_token() -> str:
    return secrets.token_urlsafe(32)


def same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def check_csrf(request: Request, expected: str) -> None:
    """A state-changing request carries the token in its form or (htmx) its header."""
    sent = request.headers.get(CSRF_HEADER) or (request.form or {}).get(CSRF_FIELD, "")
    if not same(sent, expected):
        raise CsrfRefused()


def staff_of(request: Request) -> Staff:
    return request.ctx.staff


def staff_required(handler: Handler) -> Handler:
    """The handler runs for a live staff session (GET: else to the sign-in page); requests
    that change state must carry the session's CSRF token."""

    @wraps(handler)
    async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        staff = await current(door(request), session_token(request))
        if staff is None:
            answer = redirect(f"{PATH}/login", status=303)
            if request.headers.get("hx-request"):
                answer.headers["HX-Redirect"] = f"{PATH}/login"
            drop_cookie(request, answer, COOKIE)
            return answer
        if request.method not in ("GET", "HEAD"):
            check_csrf(request, staff.csrf)
        request.ctx.staff = staff
        return await handler(request, *args, **kwargs)

    return guarded


def requires(action: Action) -> Callable[[Handler], Handler]:
    """Under `staff_required`: the handler runs only for a role that may take `action`."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def checked(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            if not staff_of(request).may(action):
                raise NotAllowed(action)
            return await handler(request, *args, **kwargs)

        checked.admin_action = action  # type: ignore[attr-defined]  # read by the role sweep
        return checked

    return wrap


def any_staff(handler: Handler) -> Handler:
    """Marks a state-changing page every signed-in role may use (sign-out, own password):
    the role sweep fails on a POST route that has neither this nor `requires`."""
    handler.admin_action = None  # type: ignore[attr-defined]
    return handler


async def _error_page(request: Request, exc: Exception) -> HTTPResponse:
    assert isinstance(exc, ShuidianError)
    if request.headers.get("hx-request"):  # an htmx swap shows the message where it was
        return html(templates.get_template("_alert.html").render(error=exc), status=exc.status_code)
    return render(request, "error.html", status=exc.status_code, error=exc)


def admin_blueprint(name: str) -> Blueprint:
    """A blueprint of admin pages: errors answer as a page (or an htmx fragment), not JSON.
    Each admin module makes its own and is listed in server.core.app.BLUEPRINT_MODULES."""
    bp = Blueprint(name)
    bp.exception(ShuidianError)(_error_page)
    return bp


def paging(request: Request) -> Paging:
    return Paging.of(request.args)


def arg(request: Request, name: str) -> str:
    """A query argument, trimmed ('' when absent)."""
    return (request.args.get(name) or "").strip()


def field(request: Request, name: str) -> str:
    """A form field, trimmed ('' when absent)."""
    return ((request.form or {}).get(name) or "").strip()


async def scope_ids(request: Request) -> list[int]:
    """Every site id of the signed-in staff member's scope: what services filter by."""
    return await staff_of(request).scope.site_ids_of()


def int_arg(request: Request, name: str) -> int | None:
    """An optional numeric filter; anything else is as if absent."""
    value = arg(request, name)
    return int(value) if value.isdigit() and len(value) < 10 else None


def xlsx(filename: str, *sheets: Sheet) -> HTTPResponse:
    """An Excel download named `filename` (Chinese allowed: RFC 5987)."""
    from urllib.parse import quote

    answer = raw(write_xlsx(*sheets), content_type=XLSX_TYPE)
    answer.headers["Content-Disposition"] = (
        f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}"
    )
    return answer


def _disposition(filename: str) -> str:
    from urllib.parse import quote

    return f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}"


async def xlsx_stream(request: Request, filename: str, *sheets: StreamSheet) -> HTTPResponse:
    """An Excel download of `sheets` streamed to the browser (server.core.excel.stream_xlsx):
    the rows are read and written chunk by chunk, then the file is sent in pieces, so a
    100,000-row list keeps the server's memory flat. An error while reading rows is raised
    before the response starts (an ordinary error page)."""
    pieces = stream_xlsx(*sheets)
    first = await anext(pieces, b"")
    response = await request.respond(
        content_type=XLSX_TYPE, headers={"Content-Disposition": _disposition(filename)}
    )
    await response.send(first)
    async for piece in pieces:
        await response.send(piece)
    await response.eof()
    return response  # type: ignore[return-value]
