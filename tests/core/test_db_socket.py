"""The README's Unix-socket form of SHUIDIAN_DB_URL reaches PostgreSQL over the socket."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from server.core.db import tortoise_config
from server.core.settings import load_settings

SOCKET_DIR = Path("/var/run/postgresql")
pytestmark = pytest.mark.postgres


@pytest.mark.skipif(
    not (SOCKET_DIR / ".s.PGSQL.5432").exists(), reason="no PostgreSQL socket on this host"
)
async def test_the_socket_url_connects_without_tcp() -> None:
    url = f"postgres://postgres@:5432/postgres?host={SOCKET_DIR}"
    creds = tortoise_config(load_settings(db_url=url))["connections"]["default"]["credentials"]
    assert creds["host"] == str(SOCKET_DIR)
    conn = await asyncpg.connect(
        host=creds["host"], port=creds["port"], user=creds["user"], database=creds["database"]
    )
    try:
        addr = await conn.fetchval("SELECT inet_server_addr()")
    finally:
        await conn.close()
    assert addr is None  # no server address: the socket, not TCP
