"""What every answer of the web server carries, and the API docs served from this machine.

Security headers (OWASP ASVS 3.4, 14.3.2), on every response:
- `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and the CSP `frame-ancestors
  'none'` (no page of ours inside another site's frame), `Referrer-Policy: no-referrer`;
- HTML pages get a full Content-Security-Policy: scripts, styles, fonts and images from this
  origin only (Swagger UI sets inline styles and data: images, nothing else);
- `Cache-Control: no-store` on everything but static files: answers about accounts, orders
  and payments are personal, and no shared cache or browser history should keep them.

Docs: sanic-ext's Swagger page loads its JS/CSS from a CDN, which an intranet cannot reach.
`configure_docs` points it at our own page (server/core/docs/swagger.html, no inline script)
and serves Swagger UI's files from the pinned `swagger-ui-bundle` package under
/docs/assets; ReDoc (CDN only) is switched off.
"""

from __future__ import annotations

from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse, file
from swagger_ui_bundle import swagger_ui_path

DOCS_PREFIX = "/docs"
DOCS_DIR = Path(__file__).parent / "docs"

FRAME_POLICY = "frame-ancestors 'none'"
API_CSP = f"default-src 'none'; {FRAME_POLICY}"
HTML_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none';"
    f" base-uri 'none'; form-action 'self'; {FRAME_POLICY}"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def add_security_headers(app: Sanic) -> None:
    app.on_response(security_headers)


async def security_headers(request: Request, response: HTTPResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    html = (response.content_type or "").startswith("text/html")
    response.headers.setdefault("Content-Security-Policy", HTML_CSP if html else API_CSP)
    route = request.route
    if route is None or not getattr(route.extra, "static", False):
        response.headers["Cache-Control"] = "no-store"


def configure_docs(app: Sanic) -> None:
    """OpenAPI UI at /docs (sanic-ext's page, our template) with every asset served locally."""
    app.config.OAS_URL_PREFIX = DOCS_PREFIX
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.OAS_UI_REDOC = False
    app.config.OAS_PATH_TO_SWAGGER_HTML = str(DOCS_DIR / "swagger.html")
    app.config.OAS_UI_SWAGGER_HTML_TITLE = "水电 Shuidian API 文档"
    app.config.SWAGGER_UI_CONFIGURATION = {
        "apisSorter": "alpha",
        "operationsSorter": "alpha",
        "docExpansion": "list",
    }
    app.static(f"{DOCS_PREFIX}/assets", str(swagger_ui_path), name="docs_assets")
    for name in ("docs.js", "docs.css"):
        app.static(f"{DOCS_PREFIX}/local/{name}", str(DOCS_DIR / name), name=f"docs_{name[5:]}")
    app.on_request(_oauth2_redirect_from_here)


async def _oauth2_redirect_from_here(request: Request) -> HTTPResponse | None:
    """sanic-ext's Swagger UI route for the OAuth2 redirect page downloads that page from the
    CDN on its first call (a request to the internet from the server, for anyone who asks;
    in an intranet a hang, then a 500). Answer it with the packaged copy instead."""
    if request.path != f"{DOCS_PREFIX}{request.app.config.OAS_UI_SWAGGER_OAUTH2_REDIRECT}":
        return None
    return await file(Path(swagger_ui_path) / "oauth2-redirect.html")
