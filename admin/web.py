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
from sanic import Request
from sanic.response import HTTPResponse, html, redirect

from server.core.errors import Forbidden
from server.core.money import yuan
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


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTTPResponse:
    context.setdefault("staff", getattr(request.ctx, "staff", None))
    context.setdefault("path", request.path)
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
