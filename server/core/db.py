"""Database set-up: one Tortoise app ("models") over every context's models.py, migrated by
Tortoise's own migrations in `migrations/`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url

from server.core.errors import ConfigError
from server.core.settings import Settings

MODEL_MODULES = [
    "server.places.models",
    "server.accounts.models",
    "server.metering.models",
    "server.staff.models",
    "server.audit.models",
    "server.ledger.models",
    "server.tariffs.models",
    "server.billing.models",
    "server.payments.models",
    "server.jobs.models",
    "server.notify.models",
    "server.tenancy.models",
    "server.sharing.models",
    "server.invoices.models",
    "server.property.models",
]


def tortoise_config(settings: Settings, db_url: str | None = None) -> dict[str, Any]:
    url = db_url or settings.db_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    connection: str | dict[str, Any] = url
    if url.startswith("postgres://"):
        sep = "&" if "?" in url else "?"
        if "maxsize=" not in url:
            url = f"{url}{sep}minsize=1&maxsize={settings.db_pool_max}"
        connection = expand_db_url(url)
        connection["credentials"]["reset"] = keep_session
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def keep_session(connection: Any) -> None:
    """The pool's reset of a released connection, which by default sends `SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` — one round trip per release,
    i.e. per query outside a transaction and per transaction (~0.3 ms of CPU on both sides).
    asyncpg still rolls back a transaction left open and drops listeners before calling this.
    Nothing else needs undoing, because this code base keeps no session state: advisory locks
    are transaction-level only (`pg_advisory_xact_lock`), no `SET` without `LOCAL`, no
    `LISTEN`, no `WITH HOLD` cursors. Whoever adds one of those restores the reset here."""


_users: dict[str, int] = {}  # database URL -> how many open init_db() calls share it


async def init_db(settings: Settings, db_url: str | None = None) -> None:
    """Connect, naming the setting in a one-line ConfigError when the database is unreachable.

    Calls nest: in one process (the embedded demo) the web app and every worker call
    init_db/close_db around their work; only the first connects and only the last closes.
    """
    url = db_url or settings.db_url
    if _users:
        if url not in _users:
            raise ConfigError(
                f"SHUIDIAN_DB_URL: this process is already connected to another "
                f"database ({', '.join(_safe(u) for u in _users)})"
            )
        _users[url] += 1
        return
    _ensure_sqlite_dir(url)
    try:
        # One database per process, reached from every task: the web server connects in a
        # start-up listener's task and serves requests in others.
        await Tortoise.init(config=tortoise_config(settings, url), _enable_global_fallback=True)
        await asyncio.wait_for(connections.get("default").execute_query("SELECT 1"), 10)
    except (OSError, TimeoutError, ConnectionError) as exc:
        await _close()
        raise ConfigError(
            f"SHUIDIAN_DB_URL: cannot reach the database at {_safe(url)}: {exc}"
        ) from None
    except Exception as exc:
        await _close()
        if type(exc).__module__.startswith(("asyncpg", "tortoise", "sqlite3")):
            raise ConfigError(f"SHUIDIAN_DB_URL: {_safe(url)}: {exc}") from None
        raise
    _users[url] = 1


async def close_db() -> None:
    """Release one init_db(); the last release closes the connections."""
    if _users:
        url = next(iter(_users))
        _users[url] -= 1
        if _users[url] > 0:
            return
        del _users[url]
    await _close()


async def _close() -> None:
    try:
        await Tortoise.close_connections()
    except Exception:  # closing a half-open pool must not mask the real error
        pass


async def migrate(settings: Settings, db_url: str | None = None) -> None:
    """Apply every pending migration (idempotent); leaves no connection open."""
    from tortoise.migrations.api import migrate as run_migrations

    url = db_url or settings.db_url
    _ensure_sqlite_dir(url)

    async def run_and_close() -> None:
        # Same task as Tortoise.init: its context (and so its connections) lives in a
        # contextvar, which a caller outside wait_for's task would never see to close.
        try:
            await run_migrations(config=tortoise_config(settings, url))
        finally:
            await _close()

    try:
        await asyncio.wait_for(run_and_close(), 300)
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise ConfigError(
            f"SHUIDIAN_DB_URL: cannot migrate the database at {_safe(url)}: {exc!r}"
        ) from None


def _ensure_sqlite_dir(url: str) -> None:
    """Create the SQLite file's folder: Tortoise waits forever on a file it cannot open."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _safe(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
