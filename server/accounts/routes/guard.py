"""Who is calling: `@tenant_required` turns the `Authorization: Bearer <token>` header into
`request.ctx.tenant` (a `TenantSession`) or answers 401 in the app's one error shape.

Isolation is the services' job (an account not bound to the caller is 404, never 403); the
guard only says who the caller is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from server.accounts.service import SessionStore, TenantSession
from server.core.errors import Unauthorized

Handler = Callable[..., Awaitable[HTTPResponse]]
SECURITY_SCHEME = "tenant"


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def sessions(request: Request) -> SessionStore:
    return request.app.ctx.tenant_sessions


def tenant_of(request: Request) -> TenantSession:
    return request.ctx.tenant


def tenant_required(handler: Handler) -> Handler:
    """The handler runs only for a live tenant session; the OpenAPI spec marks it secured."""

    @wraps(handler)
    async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        token = bearer_token(request)
        session = await sessions(request).resolve(token) if token else None
        if session is None:
            raise Unauthorized("登录已失效，请重新登录")
        request.ctx.tenant = session
        return await handler(request, *args, **kwargs)

    openapi.secured(SECURITY_SCHEME)(guarded)
    return guarded
