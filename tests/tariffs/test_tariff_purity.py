"""Pricing and billing math stay pure: importing them loads no ORM, web, cache or broker."""

import subprocess
import sys

PURE = ["server.tariffs.pricing", "server.tariffs.schemas", "server.billing.usage"]
FORBIDDEN = ["tortoise", "sanic", "redis", "aiomqtt", "asyncpg"]


def test_pure_modules_import_nothing_impure() -> None:
    code = (
        f"import sys, importlib\nfor m in {PURE!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
