"""The server's secret for tenant self-service: it signs binding QR tickets and keys the
HMAC of SMS codes, and what production refuses to start without.

Production takes `SHUIDIAN_SECRET_KEY` (at least 32 characters) and the mini-program's
`SHUIDIAN_TENANT_MINIAPP_APPID` / `_SECRET`. Embedded mode without a key generates one once
into `<data_dir>/secret.key`, so the web server and the CLI (`shuidian tenant qr`, another
process) sign and verify with the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from server.accounts.config import TenantSettings
from server.core.errors import ConfigError
from server.core.settings import Settings

MIN_SECRET_KEY = 32


def check_production(settings: Settings, tenant: TenantSettings) -> None:
    """Raise ConfigError naming the first missing setting; nothing to check when embedded."""
    if settings.mode != "production":
        return
    if len(settings.secret_key) < MIN_SECRET_KEY:
        raise ConfigError(
            f"SHUIDIAN_SECRET_KEY: production needs at least {MIN_SECRET_KEY} random characters"
            " (it signs binding QR codes and SMS codes), e.g. `openssl rand -base64 48`"
        )
    if not tenant.miniapp_appid:
        raise ConfigError(
            "SHUIDIAN_TENANT_MINIAPP_APPID: production needs the mini-program's AppID"
            " (the demo's sandbox login is for embedded mode only)"
        )
    if not (tenant.miniapp_secret or tenant.miniapp_secret_file):
        raise ConfigError(
            "SHUIDIAN_TENANT_MINIAPP_SECRET (or _SECRET_FILE): production needs the"
            " mini-program's AppSecret for code2Session"
        )


def secret_key(settings: Settings) -> bytes:
    """The key bytes: the configured secret, or embedded mode's generated one."""
    if settings.secret_key:
        return settings.secret_key.encode()
    if settings.mode == "production":
        raise ConfigError("SHUIDIAN_SECRET_KEY: not set (required in production)")
    return _embedded_key(settings.data_dir / "secret.key")


def _embedded_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process made it first
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def derive(key: bytes, purpose: str) -> bytes:
    """A separate key per use (QR tickets, SMS codes), so one never verifies the other."""
    return hmac.new(key, f"shuidian:{purpose}".encode(), hashlib.sha256).digest()
