"""The Sanic application factory: error handling, health, and every context's blueprint."""

from __future__ import annotations

import importlib
import json as stdjson
import logging
from functools import partial

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, json

from server.core.db import close_db, init_db
from server.core.errors import ConfigError, ShuidianError
from server.core.excel import MAX_UPLOAD_BYTES
from server.core.health import add_health
from server.core.services import redis_client
from server.core.settings import Settings
from server.core.web import add_security_headers, configure_docs

log = logging.getLogger(__name__)


# Every window's blueprint (a module with a `bp`), imported by name: this factory sits in core,
# below the windows it serves. A context adds its routes module here when it has one; a name
# that does not resolve stops the start-up (a typo must not silently drop an API).
BLUEPRINT_MODULES = [
    "server.payments.routes",
    "server.accounts.routes.auth",
    "server.tenant.routes.accounts",
    "server.tenant.routes.binding",
    "server.tenant.routes.bills",
    "server.tenant.routes.invoices",
    "server.tenant.routes.compliance",
    "server.tenant.routes.monthly",
    "admin.routes",
    "admin.staffpages",
    "admin.oplog",
    "admin.structure",
    "admin.devices",
    "admin.imports",
    "admin.control",
    "admin.accounts",
    "admin.review",
    "admin.closing",
    "admin.notify",
    "admin.monitor",
    "admin.reports",
    "admin.report_pages",
    "admin.tariffs",
    "admin.tariff_levy",
    "admin.alarm_settings",
    "admin.sharing",
    "admin.finance",
    "admin.property",
    "admin.printing",
    "admin.batches",
    "admin.invoices",
    "server.wechat.routes",
]


def create_app(settings: Settings, *, name: str = "shuidian", manage_db: bool = True) -> Sanic:
    # Chinese stays readable in every JSON response (no \u escapes).
    dumps = partial(stdjson.dumps, ensure_ascii=False, separators=(",", ":"))
    app = Sanic(name, configure_logging=False, dumps=dumps)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    # The largest body is an Excel upload (admin import): refused before it is read whole.
    app.config.REQUEST_MAX_SIZE = MAX_UPLOAD_BYTES + (1 << 20)
    app.config.API_TITLE = "水电 Shuidian API"
    app.config.API_VERSION = "0.1.0"
    app.config.API_DESCRIPTION = "Prepaid water & electricity platform: tenants, payments, meters."
    # sanic-ext would add a HEAD and an OPTIONS route beside every route once the server starts,
    # one at a time, each re-building the whole router: quadratic in the ~600 routes (seconds
    # per start, most of an admin test's time). Nothing here needs them (no CORS, no browser
    # preflight); /healthz answers HEAD itself for load balancers.
    app.config.HTTP_AUTO_HEAD = False
    app.config.HTTP_AUTO_OPTIONS = False
    app.config.CORS = False  # sanic-ext refuses auto-options off while its CORS wants them
    app.ctx.settings = settings
    app.ctx.redis = None

    app.error_handler.add(ShuidianError, _render_error)
    app.error_handler.add(Exception, _render_unexpected)

    @app.before_server_start
    async def _start(app: Sanic) -> None:
        if manage_db:
            await init_db(settings)
        app.ctx.redis = redis_client(settings)

    @app.after_server_stop
    async def _stop(app: Sanic) -> None:
        if app.ctx.redis is not None:
            await app.ctx.redis.aclose()
        if manage_db:
            await close_db()

    # After the listeners above: the blueprints' start-up runs with the database and Redis
    # ready, and their shut-down before these close them (Sanic runs stop listeners in
    # reverse order).
    _register_blueprints(app)
    _add_edges(app, settings)
    return app


def _add_edges(app: Sanic, settings: Settings) -> None:
    """What the outside sees besides the blueprints: /healthz, local API docs, and the
    security headers of every answer (see server/core/health.py and web.py)."""
    add_health(app, settings)
    configure_docs(app)
    add_security_headers(app)


def _register_blueprints(app: Sanic) -> None:
    for module_name in BLUEPRINT_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise ConfigError(
                    f"BLUEPRINT_MODULES lists {module_name}, which does not exist"
                ) from exc
            raise  # the module exists but imports something missing: its own error
        blueprint = getattr(module, "bp", None)
        if not isinstance(blueprint, Blueprint):
            raise ConfigError(f"BLUEPRINT_MODULES lists {module_name}, which has no blueprint `bp`")
        app.blueprint(blueprint)


async def _render_error(request: Request, exc: Exception) -> HTTPResponse:
    assert isinstance(exc, ShuidianError)
    return json(exc.to_dict(), status=exc.status_code)


async def _render_unexpected(request: Request, exc: Exception) -> HTTPResponse:
    status = getattr(exc, "status_code", 500)
    if status >= 500:
        log.exception("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return json({"error": "internal", "message": "服务器内部错误，请稍后重试"}, status=500)
    message = {404: "页面不存在", 405: "不支持该请求方法"}.get(status, str(exc))
    return json({"error": "http", "message": message}, status=status)
