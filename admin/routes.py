"""The admin panel's pages (/admin): sign-in and sign-out, the dashboard, password change.
Pages call the staff services only; every figure is scoped to the staff member's sites.
They are browser pages, not the API: each is kept out of the OpenAPI spec (/docs)."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Request, Sanic
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from admin.web import (
    ADMIN_DIR,
    COOKIE,
    PATH,
    PRE_COOKIE,
    admin_blueprint,
    any_staff,
    check_csrf,
    client_ip,
    door,
    drop_cookie,
    new_pre_token,
    render,
    session_token,
    set_cookie,
    staff_of,
    staff_required,
)
from server.core.errors import NotFound, ValidationFailed
from server.core.money import yuan
from server.staff.config import StaffSettings
from server.staff.service.dashboard import dashboard
from server.staff.service.signin import (
    SigninFailed,
    change_password,
    current,
    sign_in,
    sign_out,
    staff_door,
)

bp = admin_blueprint("admin")
bp.static(f"{PATH}/static", str(ADMIN_DIR / "static"), name="static")
STATIC_CACHE = "public, max-age=3600"


@bp.before_server_start
async def _start_door(app: Sanic) -> None:
    """The staff sessions and sign-in counters (Redis or memory), unless a test put one."""
    if getattr(app.ctx, "staff_door", None) is None:
        app.ctx.staff_door = staff_door(app.ctx.redis, StaffSettings())


@bp.on_response
async def _static_cache(request: Request, response: HTTPResponse) -> None:
    if request.path.startswith(f"{PATH}/static/") and response.status == 200:
        response.headers["Cache-Control"] = STATIC_CACHE


def _signin_page(request: Request, error: str = "", status: int = 200) -> HTTPResponse:
    token = new_pre_token()
    answer = render(request, "signin.html", status=status, csrf=token, error=error)
    set_cookie(request, answer, PRE_COOKIE, token)
    return answer


@bp.get(f"{PATH}/login")
@openapi.exclude()
async def signin_form(request: Request) -> HTTPResponse:
    if await current(door(request), session_token(request)) is not None:
        return redirect(f"{PATH}/", status=303)
    return _signin_page(request)


@bp.post(f"{PATH}/login")
@openapi.exclude()
async def signin(request: Request) -> HTTPResponse:
    form = request.form or {}
    check_csrf(request, request.cookies.get(PRE_COOKIE, ""))
    try:
        token, _ = await sign_in(
            door(request),
            form.get("username", ""),
            form.get("password", ""),
            client_ip(request),
        )
    except SigninFailed as exc:
        return _signin_page(request, exc.message, status=401)
    if session_token(request):  # signing in again: the old session ends, never lingers
        await door(request).sessions.revoke(session_token(request))
    answer = redirect(f"{PATH}/", status=303)
    set_cookie(request, answer, COOKIE, token)
    drop_cookie(request, answer, PRE_COOKIE)
    return answer


@bp.post(f"{PATH}/logout")
@openapi.exclude()
@any_staff
@staff_required
async def signout(request: Request) -> HTTPResponse:
    await sign_out(door(request), session_token(request), staff_of(request), client_ip(request))
    answer = redirect(f"{PATH}/login", status=303)
    drop_cookie(request, answer, COOKIE)
    return answer


async def _figures(request: Request) -> dict[str, object]:
    staff = staff_of(request)
    raw = request.args.get("site", "")
    if raw and not raw.isdigit():
        raise NotFound("站点不存在")
    site_id = int(raw) if raw else None
    site_ids = await staff.scope.site_ids_of(site_id)
    tz = request.app.ctx.settings.tz
    board = await dashboard(site_ids, tz, now=datetime.now(UTC))
    chart = {
        "days": [d.day.strftime("%m-%d") for d in board.days],
        "income": [str(yuan(d.income_fen)) for d in board.days],
        "electricity": [str(d.electricity_kwh) for d in board.days],
    }
    sites = await staff.scope.sites()
    return {"board": board, "chart": chart, "sites": sites, "site_id": site_id}


@bp.get(f"{PATH}/")
@openapi.exclude()
@staff_required
async def home(request: Request) -> HTTPResponse:
    return render(request, "dashboard.html", **await _figures(request))


@bp.get(f"{PATH}/figures")
@openapi.exclude()
@staff_required
async def figures(request: Request) -> HTTPResponse:
    """The dashboard's live part, for htmx to swap in every minute."""
    return render(request, "_figures.html", **await _figures(request))


@bp.get(f"{PATH}/password")
@openapi.exclude()
@staff_required
async def password_form(request: Request) -> HTTPResponse:
    return render(request, "password.html")


@bp.post(f"{PATH}/password")
@openapi.exclude()
@any_staff
@staff_required
async def password(request: Request) -> HTTPResponse:
    form = request.form or {}
    if form.get("new", "") != form.get("again", ""):
        return render(request, "password.html", status=422, error="两次输入的新密码不一致")
    try:
        token, staff = await change_password(
            door(request), staff_of(request), form.get("old", ""), form.get("new", ""),
            client_ip(request),
        )  # fmt: skip
    except ValidationFailed as exc:
        return render(request, "password.html", status=422, error=exc.message)
    request.ctx.staff = staff
    answer = render(request, "password.html", done=True)
    set_cookie(request, answer, COOKIE, token)
    return answer
