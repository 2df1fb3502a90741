"""What the web server shows the outside (issue #11): /healthz minimal unless allowed, with a
cached broker probe; the API docs from this machine; security headers and no-store on every
route; every route's request and response bodies in the OpenAPI spec."""

from __future__ import annotations

import asyncio
import itertools
import re
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sanic import Sanic

import server.core.health as health_module
from server.core.app import create_app
from server.core.health import may_see_details
from server.core.services import CachedHealth, Health
from server.core.settings import Settings
from tests.listening import listening

Sanic.test_mode = True
_names = itertools.count()
TOKEN = "ops-" + "5" * 32

pytestmark = pytest.mark.usefixtures("db")


def _app(settings: Settings, **overrides: Any) -> Sanic:
    values = {"mqtt_url": "mqtt://127.0.0.1:1883", "health_token": TOKEN, **overrides}
    return create_app(settings.model_copy(update=values), name=f"e{next(_names)}", manage_db=False)


# ---- /healthz ---------------------------------------------------------------------------


async def test_healthz_tells_a_stranger_the_status_only(settings: Settings) -> None:
    app = _app(settings, mqtt_url="mqtt://127.0.0.1:1")  # broken broker: 503, no details
    _, response = await app.asgi_client.get("/healthz")
    assert response.status == 503
    assert response.json == {"status": "unhealthy"}
    assert "127.0.0.1" not in response.text and "sqlite" not in response.text
    assert "postgres" not in response.text


async def test_healthz_details_need_the_token(settings: Settings) -> None:
    app = _app(settings)
    _, wrong = await app.asgi_client.get("/healthz", headers={"X-Health-Token": TOKEN + "x"})
    assert wrong.json == {"status": "healthy"}
    _, right = await app.asgi_client.get("/healthz", headers={"X-Health-Token": TOKEN})
    assert right.json["status"] == "healthy"
    assert set(right.json["checks"]) == {"database", "redis", "mqtt"}


async def test_healthz_without_a_configured_token_never_shows_details(settings: Settings) -> None:
    app = _app(settings, health_token="")
    _, response = await app.asgi_client.get("/healthz", headers={"X-Health-Token": ""})
    assert response.json == {"status": "healthy"}


@pytest.mark.parametrize(
    ("ip", "loopback_setting", "expected"),
    [
        ("127.0.0.1", True, True),
        ("::1", True, True),
        ("10.1.2.3", True, False),
        ("mockserver", True, False),
        ("127.0.0.1", False, False),  # behind a reverse proxy on the same host
    ],
)
def test_details_for_loopback_callers(
    settings: Settings, ip: str, loopback_setting: bool, expected: bool
) -> None:
    s = settings.model_copy(update={"health_details_for_loopback": loopback_setting})
    request = SimpleNamespace(ip=ip, headers={"X-Forwarded-For": "127.0.0.1"})
    assert may_see_details(request, s) is expected  # type: ignore[arg-type]


async def test_healthz_probes_the_broker_once_per_interval(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes = 0

    async def fake_check_mqtt(_settings: Settings) -> Health:
        nonlocal probes
        probes += 1
        await asyncio.sleep(0.01)
        return Health("mqtt", True, "fake")

    monkeypatch.setattr(health_module, "check_mqtt", fake_check_mqtt)
    app = _app(settings, health_mqtt_interval_s=60)
    for _ in range(3):
        _, response = await app.asgi_client.get("/healthz")
        assert response.status == 200
    assert probes == 1


async def test_cached_health_shares_one_check_and_refreshes_after_the_interval() -> None:
    now = [0.0]
    calls = 0

    async def check() -> Health:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return Health("mqtt", calls % 2 == 1, f"call {calls}")

    cached = CachedHealth(check, 10, clock=lambda: now[0])
    first = await asyncio.gather(*(cached.get() for _ in range(20)))
    assert calls == 1 and {h.detail for h in first} == {"call 1"}
    now[0] = 9.9
    assert (await cached.get()).detail == "call 1"
    now[0] = 10.0
    assert (await cached.get()).detail == "call 2" and calls == 2


# ---- docs -------------------------------------------------------------------------------


async def test_docs_page_loads_its_assets_from_this_server(settings: Settings) -> None:
    app = _app(settings)
    _, page = await app.asgi_client.get("/docs")
    assert page.status == 200
    assert "cdn" not in page.text.lower() and "http" not in page.text.replace("http-equiv", "")
    assert "<script>" not in page.text  # no inline script: the CSP allows 'self' only
    for asset in (
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui-standalone-preset.js",
        "/docs/local/docs.js",
        "/docs/local/docs.css",
    ):
        assert asset in page.text
        _, response = await app.asgi_client.get(asset)
        assert response.status == 200, asset
        assert len(response.body) > 20, asset
    _, redoc = await app.asgi_client.get("/docs/redoc")
    assert redoc.status == 404  # ReDoc loads from a CDN only: off


async def test_docs_oauth2_redirect_page_is_not_fetched_from_the_cdn(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    def no_internet(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server reached out to the internet")

    monkeypatch.setattr(urllib.request, "urlopen", no_internet)
    _, response = await _app(settings).asgi_client.get("/docs/oauth2-redirect.html")
    assert response.status == 200 and "oauth2" in response.text.lower()


# ---- every route: headers and OpenAPI -----------------------------------------------------


def _routes(app: Sanic) -> list[tuple[str, str, Any]]:
    """(method, path, route) of every route the app serves, parameters filled in."""
    out = []
    for route in app.router.routes:
        path = "/" + route.path.strip("/")
        for name in route.params:
            path = path.replace(f"<{name}>", "1")
            path = path.replace(f"<{name}:{route.params[name].label}>", "swagger-ui.css")
        out.extend((method, path, route) for method in sorted(route.methods) if method != "HEAD")
    return out


def _spec_path(route: Any) -> str:
    """The route's path as the OpenAPI spec names it: `<name>` / `<name:type>` -> `{name}`."""
    return "/" + re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", route.path.strip("/"))


def _is_docs(route: Any) -> bool:
    return route.name.split(".")[1] in ("openapi", "docs_assets", "docs_js", "docs_css")


async def test_every_route_answers_with_the_security_headers(settings: Settings) -> None:
    # Over a listening server: the ASGI test client starts the whole app again for every
    # request, which made this sweep of every route the slowest test of the suite.
    app = _app(settings)
    async with listening(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        routes = _routes(app)  # the router is final once the server has started
        assert any(path.startswith("/api/v1/pay/") for _, path, _ in routes)
        for method, path, route in routes:
            response = await client.request(method, path)
            _check_headers(response.headers, f"{method} {path}", static=bool(route.extra.static))


def _check_headers(headers: httpx.Headers, where: str, *, static: bool) -> None:
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["x-frame-options"] == "DENY", where
    assert headers["referrer-policy"] == "no-referrer", where
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp, where
    if (headers.get("content-type") or "").startswith("text/html"):
        assert "script-src 'self'" in csp and "default-src 'self'" in csp, where
    if static:
        assert headers.get("cache-control") != "no-store", where
    else:
        assert headers["cache-control"] == "no-store", where


async def test_every_route_documents_its_bodies(settings: Settings) -> None:
    app = _app(settings)
    _, response = await app.asgi_client.get("/docs/openapi.json")
    spec = response.json["paths"]
    await app.asgi_client.get("/healthz")
    checked = 0
    for method, _, route in _routes(app):
        if _is_docs(route) or method == "OPTIONS":  # OPTIONS: sanic-ext's automatic answer
            continue
        if route.path.startswith("admin"):  # the admin panel's HTML pages: not in the API spec
            assert _spec_path(route) not in spec
            continue
        operation = spec[_spec_path(route)][method.lower()]
        path = "/" + route.path.strip("/")
        responses = operation["responses"]
        assert set(responses) - {"default"}, f"{method} {path}: no documented response"
        for status, answer in responses.items():
            if status not in ("204", "default"):
                assert answer.get("content"), f"{method} {path} {status}: no body schema"
        if method in ("POST", "PUT", "PATCH"):
            body = operation.get("requestBody", {}).get("content")
            assert body, f"{method} {path}: no request body in the spec"
        checked += 1
    assert checked >= 3


async def test_error_answers_carry_the_headers_too(settings: Settings) -> None:
    app = _app(settings)

    @app.get("/crash")
    async def crash(request: object) -> None:
        raise RuntimeError("boom")

    for path, status in (("/no-such-page", 404), ("/crash", 500)):
        _, response = await app.asgi_client.get(path)
        assert response.status == status
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["cache-control"] == "no-store", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
