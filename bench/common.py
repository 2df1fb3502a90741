"""What the benchmarks share: the PostgreSQL they create their databases on, CPU time of
local processes, and fast row cloning for set-up (never timed)."""

from __future__ import annotations

import json
import os
import urllib.parse
from datetime import datetime

import asyncpg

# Where each benchmark creates (and drops) its own database; a `?host=<socket folder>` query
# reaches PostgreSQL over its Unix socket.
PG_ADMIN = os.environ.get("SHUIDIAN_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    """PG_ADMIN with database `name` instead (Tortoise's `postgres://` form, query kept)."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(PG_ADMIN)._replace(path=f"/{name}"))


def asyncpg_dsn(url: str) -> str:
    """Our URL as asyncpg takes it: with `?host=<socket folder>` the port moves into the
    query, since asyncpg resolves an empty host name given with a port."""
    parts = urllib.parse.urlsplit(url.replace("postgres://", "postgresql://", 1))
    query = urllib.parse.parse_qs(parts.query)
    if "host" in query and parts.port:
        netloc = parts.netloc.rsplit(":", 1)[0]
        parts = parts._replace(netloc=netloc, query=f"{parts.query}&port={parts.port}")
    return urllib.parse.urlunsplit(parts)


async def admin(sql: str) -> None:
    """Run `sql` on the admin database (CREATE / DROP DATABASE)."""
    conn = await asyncpg.connect(asyncpg_dsn(PG_ADMIN))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of a local process, from /proc; 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def create_site(conn: asyncpg.Connection, organisation: str, now: datetime) -> None:
    """Organisation 1 and its site 1, which every benchmark park belongs to."""
    await conn.execute(
        "INSERT INTO organisation (id, name, created_at) VALUES (1, $1, $2)", organisation, now
    )
    from server.places.models import default_recharge_choices

    # The columns without a database default (Tortoise fills them in Python): the model's.
    await conn.execute(
        "INSERT INTO site (id, organisation_id, name, address, created_at, recharge_choices_fen,"
        " recharge_min_fen, recharge_max_fen, alipay_enabled)"
        " VALUES (1, 1, '基准园区', '', $1, $2::jsonb, 1000, 1000000, false)",
        now,
        json.dumps(default_recharge_choices()),
    )


async def clone_rows(
    conn: asyncpg.Connection, table: str, n: int, override: dict[str, str], *, first: int = 2
) -> None:
    """Copy row id 1 of `table` to ids `first`..n, with `override` SQL expressions per column."""
    columns = [
        r["column_name"]
        for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
            " ORDER BY ordinal_position",
            table,
        )
    ]
    exprs = ["g" if c == "id" else override.get(c, f"t.{c}") for c in columns]
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)}"
        f" FROM {table} t, generate_series({first}, {n}) g WHERE t.id = 1"
    )
