"""`/healthz`: the status for anyone (a load balancer needs no more), the details for those
allowed to read them.

The details name the database kind, the broker's address and the errors of whatever is
down: useful to an operator, a map to anyone else. They go to loopback callers (unless the
server sits behind a reverse proxy on the same host, `health_details_for_loopback=false`)
and to callers sending `X-Health-Token` equal to `SHUIDIAN_HEALTH_TOKEN` (compared in
constant time). The MQTT check opens a broker connection, so its result is cached per web
worker (`CachedHealth`, at most one probe every `health_mqtt_interval_s`).
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from server.core.services import CachedHealth, check_database, check_mqtt, check_redis
from server.core.settings import Settings

TOKEN_HEADER = "X-Health-Token"


class HealthOut(BaseModel):
    """Anyone: the status alone. Loopback or a matching token: `mode` and `checks` too."""

    status: Literal["healthy", "unhealthy"]
    mode: str | None = None
    checks: dict[str, dict[str, Any]] | None = None


def add_health(app: Sanic, settings: Settings) -> None:
    """Register /healthz and this worker's cached broker check."""
    app.ctx.mqtt_health = CachedHealth(
        partial(check_mqtt, settings), settings.health_mqtt_interval_s
    )
    app.add_route(healthz, "/healthz", methods=["GET", "HEAD"])


@openapi.summary("服务健康状态")
@openapi.parameter(TOKEN_HEADER, str, "header", description="运维令牌（可选），返回各项检查详情")
@openapi.response(200, {"application/json": HealthOut}, "正常")
@openapi.response(503, {"application/json": HealthOut}, "有服务不可用")
async def healthz(request: Request) -> HTTPResponse:
    """Database, Redis and MQTT broker state; 503 when any of them is down."""
    settings: Settings = request.app.ctx.settings
    checks = [
        await check_database(),
        await check_redis(request.app.ctx.redis),
        await request.app.ctx.mqtt_health.get(),
    ]
    healthy = all(c.ok for c in checks)
    body: dict[str, object] = {"status": "healthy" if healthy else "unhealthy"}
    if may_see_details(request, settings):
        body["mode"] = settings.mode
        body["checks"] = {c.name: c.as_dict() for c in checks}
    return json(body, status=200 if healthy else 503)


def may_see_details(request: Request, settings: Settings) -> bool:
    """A configured token that matches, or a loopback peer (the socket's, never a header's)."""
    sent = request.headers.get(TOKEN_HEADER, "")
    if settings.health_token and sent:
        return hmac.compare_digest(sent.encode(), settings.health_token.encode())
    if not settings.health_details_for_loopback:
        return False
    try:
        return ipaddress.ip_address(request.ip).is_loopback
    except ValueError:  # a unix socket or no peer address
        return False
