"""What the benchmarks share: fast row cloning for set-up (never timed)."""

from __future__ import annotations

import asyncpg


async def clone_rows(
    conn: asyncpg.Connection, table: str, n: int, override: dict[str, str]
) -> None:
    """Copy row id 1 of `table` to ids 2..n, with `override` SQL expressions per column."""
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
        f" FROM {table} t, generate_series(2, {n}) g WHERE t.id = 1"
    )
