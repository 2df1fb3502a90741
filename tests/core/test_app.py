"""The app factory: /healthz over real connections, errors rendered in Chinese JSON."""

from __future__ import annotations

import itertools

import pytest
from sanic import Sanic

from server.core import app as app_module
from server.core.app import create_app
from server.core.errors import ConfigError, NotFound
from server.core.settings import Settings

Sanic.test_mode = True
_names = itertools.count()
TOKEN = "ops-" + "7" * 32  # the details of /healthz need it (the test client is no loopback)

pytestmark = pytest.mark.usefixtures("db")


def _app(settings: Settings, **overrides: object) -> Sanic:
    app = create_app(
        settings.model_copy(update=overrides), name=f"t{next(_names)}", manage_db=False
    )

    @app.get("/boom")
    async def boom(request: object) -> None:
        raise NotFound("账户不存在", account=42)

    @app.get("/crash")
    async def crash(request: object) -> None:
        raise RuntimeError("secret internals")

    return app


async def test_healthz_reports_every_service(settings: Settings, redis_url: str) -> None:
    app = _app(settings, redis_url=redis_url, mqtt_url="mqtt://127.0.0.1:1883", health_token=TOKEN)
    _, response = await app.asgi_client.get("/healthz", headers={"X-Health-Token": TOKEN})
    assert response.status == 200, response.text
    body = response.json
    assert body["status"] == "healthy"
    assert set(body["checks"]) == {"database", "redis", "mqtt"}
    assert all(check["ok"] for check in body["checks"].values())


async def test_healthz_is_503_and_names_the_broken_service(settings: Settings) -> None:
    app = _app(
        settings, redis_url="redis://127.0.0.1:1/0", mqtt_url="mqtt://127.0.0.1:1",
        health_token=TOKEN,
    )  # fmt: skip
    _, response = await app.asgi_client.get("/healthz", headers={"X-Health-Token": TOKEN})
    assert response.status == 503
    checks = response.json["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is False
    assert checks["mqtt"]["ok"] is False


async def test_service_errors_render_as_chinese_json(settings: Settings) -> None:
    _, response = await _app(settings).asgi_client.get("/boom")
    assert response.status == 404
    assert response.json == {
        "error": "not_found",
        "message": "账户不存在",
        "detail": {"account": "42"},
    }
    assert "账户不存在" in response.text  # not \\u-escaped


async def test_unexpected_errors_do_not_leak_internals(settings: Settings) -> None:
    _, response = await _app(settings).asgi_client.get("/crash")
    assert response.status == 500
    assert "secret" not in response.text
    assert response.json["error"] == "internal"


def test_every_listed_blueprint_is_registered(settings: Settings) -> None:
    app = _app(settings)
    assert app_module.BLUEPRINT_MODULES
    assert {"payments"} <= set(app.blueprints)


@pytest.mark.parametrize(
    ("listed", "why"),
    [
        ("server.metering.routes", "does not exist"),  # a context without routes (yet)
        ("reports.routes", "does not exist"),  # a package that is not there at all
        ("server.core.money", "has no blueprint"),  # a module that is not a window
    ],
)
def test_a_listed_module_that_is_no_blueprint_stops_the_start_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, listed: str, why: str
) -> None:
    monkeypatch.setattr(app_module, "BLUEPRINT_MODULES", [*app_module.BLUEPRINT_MODULES, listed])
    with pytest.raises(ConfigError, match=f"{listed}, which {why}"):
        _app(settings)
