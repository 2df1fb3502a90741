"""The committed front-end files: the packages pinned in admin/package-lock.json, byte for
byte (node_modules comes from `npm ci` in ./run test), served under /admin/static with cache
headers; and the templates escape what they show."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from admin.web import ADMIN_DIR, templates
from tests.admin.conftest import AdminApp

VENDOR = ADMIN_DIR / "static" / "vendor"
MANIFEST = json.loads((VENDOR / "vendor.json").read_text())


def test_the_vendored_files_are_the_locked_packages() -> None:
    lock = json.loads((ADMIN_DIR / "package-lock.json").read_text())
    wanted = json.loads((ADMIN_DIR / "package.json").read_text())["dependencies"]
    assert {m["package"] for m in MANIFEST.values()} == set(wanted)
    assert sorted(p.name for p in VENDOR.iterdir()) == sorted([*MANIFEST, "vendor.json"])
    for name, entry in MANIFEST.items():
        locked = lock["packages"][f"node_modules/{entry['package']}"]["version"]
        assert entry["version"] == locked == wanted[entry["package"]], name
        body = (VENDOR / name).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], f"{name} changed by hand"


def test_the_vendored_files_match_node_modules() -> None:
    modules = ADMIN_DIR / "node_modules"
    if not modules.is_dir():
        pytest.skip("admin/node_modules missing: ./run test runs `npm ci` in admin/ first")
    for name, entry in MANIFEST.items():
        installed = modules / entry["package"] / Path(entry["source"])
        assert (VENDOR / name).read_bytes() == installed.read_bytes(), (
            f"{name} differs from the locked package: run `npm ci && npm run vendor` in admin/"
        )


async def test_static_files_are_served_with_cache_headers(admin_app: AdminApp) -> None:
    async with admin_app.browser() as browser:
        js = await browser.get("/admin/static/vendor/htmx.min.js")
        css = await browser.get("/admin/static/admin.css")
        signin = await browser.get("/admin/login")
    assert js.status_code == 200 and js.content == (VENDOR / "htmx.min.js").read_bytes()
    assert js.headers["cache-control"] == css.headers["cache-control"] == "public, max-age=3600"
    assert signin.headers["cache-control"] == "no-store"
    assert "script-src 'self';" in signin.headers["content-security-policy"]
    assert signin.headers["x-frame-options"] == "DENY"


def test_templates_escape_what_they_show() -> None:
    page = templates.get_template("error.html").render(
        error=type("E", (), {"message": "<script>alert(1)</script>"})(), staff=None
    )
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
