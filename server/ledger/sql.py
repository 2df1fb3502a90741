"""Small raw-SQL helpers shared by the ledger and the other services.

Queries are written once with PostgreSQL's numbered `$n` parameters; on SQLite they become
`?n`, which SQLite also reads by number, so a parameter may appear twice in either dialect.
`copy_rows` (binary COPY, PostgreSQL) costs the client about half what an `unnest` INSERT
does and fires the same triggers; it has no RETURNING, so rows whose ids are needed next
(ledger transactions) go in by an INSERT … RETURNING (`insert_rows`, or a statement over
`rows_source`, which sends each column the cheapest way). These helpers write no money
themselves: wallet balances and ledger rows are written by server/ledger/write.py alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncpg.exceptions import IntegrityConstraintViolationError
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from server.ledger.posting import spec_of

_PARAM = re.compile(r"\$(\d+)")


def is_pg(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "postgres"


def q(conn: BaseDBAsyncClient, sql: str) -> str:
    return sql if is_pg(conn) else _PARAM.sub(r"?\1", sql)


def placeholders(start: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


def values_rows(width: int, rows: int, start: int = 1) -> str:
    """`($1, $2), ($3, $4)…` for a multi-row VALUES of `rows` rows of `width` columns."""
    return ", ".join(f"({placeholders(start + r * width, width)})" for r in range(rows))


def padded(n: int) -> int:
    """The row count a batch statement is built for: `n` rounded up to a power of two (at
    least 4), the rest NULL rows that match nothing. A few prepared statements then serve
    every batch size, and each is a list of scalars, whose generic plan stays an index
    look-up as the tables grow."""
    return max(4, 1 << (n - 1).bit_length())


def typed_params(start: int, width: int, rows: int, casts: Sequence[str]) -> list[list[str]]:
    """`$n::type` for each column of each of `rows` rows, numbered from `start`."""
    return [[f"${start + r * width + c}::{casts[c]}" for c in range(width)] for r in range(rows)]


def values_list(rows: Sequence[Sequence[str]], *, position: bool = False) -> str:
    """`(a, b), (c, d)…` of those rows; with `position`, each row ends with its index."""
    return ", ".join(
        "(" + ", ".join([*row, str(i)] if position else row) + ")" for i, row in enumerate(rows)
    )


async def fetch(conn: BaseDBAsyncClient, sql: str, params: Sequence[Any] = ()) -> list[dict]:
    return list(await conn.execute_query_dict(q(conn, sql), list(params)))


async def fetch_records(
    conn: BaseDBAsyncClient, sql: str, params: Sequence[Any] = ()
) -> Sequence[Mapping[str, Any]]:
    """`fetch` for bulk reads: on PostgreSQL asyncpg's own records (read by column name like a
    dict) without the copy into dicts, which costs microseconds a row on batches of
    thousands; dicts on SQLite."""
    if not is_pg(conn):
        return await fetch(conn, sql, params)
    async with conn.acquire_connection() as raw:
        try:
            return await raw.fetch(sql, *params)
        except IntegrityConstraintViolationError as exc:  # as Tortoise's own queries raise it
            raise IntegrityError(exc) from exc


def now() -> datetime:
    return datetime.now(UTC)


async def ledger_account_ids(conn: BaseDBAsyncClient, codes: Sequence[str]) -> dict[str, int]:
    """Ids of the ledger accounts named by `codes`, creating missing ones (chart rows are
    created on first use: a wallet when its tenant first pays, a revenue line on first charge).
    """
    wanted = sorted(set(codes))
    found = await _select_ids(conn, wanted)
    missing = [c for c in wanted if c not in found]
    if missing:
        specs = [spec_of(c) for c in missing]
        params: list[Any] = []
        stamp = now()
        for s in specs:
            params += [s.code, s.kind.value, s.name, s.account_id, stamp]
        await conn.execute_query(
            q(
                conn,
                "INSERT INTO ledger_account (code, kind, name, account_id, created_at) VALUES "
                f"{values_rows(5, len(specs))} ON CONFLICT (code) DO NOTHING",
            ),
            params,
        )
        found |= await _select_ids(conn, missing)
    return found


async def _select_ids(conn: BaseDBAsyncClient, codes: Sequence[str]) -> dict[str, int]:
    if is_pg(conn):  # one array parameter: a batch's thousands of wallets parse as one
        rows = await fetch_records(
            conn, "SELECT id, code FROM ledger_account WHERE code = ANY($1::text[])", [codes]
        )
        return {r["code"]: r["id"] for r in rows}
    found: dict[str, int] = {}
    for i in range(0, len(codes), 5000):
        chunk = codes[i : i + 5000]
        rows = await fetch(
            conn,
            f"SELECT id, code FROM ledger_account WHERE code IN ({placeholders(1, len(chunk))})",
            chunk,
        )
        found |= {r["code"]: r["id"] for r in rows}
    return found


@dataclass(frozen=True, slots=True)
class Col:
    """A column for `insert_rows`: its name, its PostgreSQL type, and an optional cast applied
    after unnest (e.g. text → jsonb)."""

    name: str
    pg_type: str
    cast: str | None = None


def rows_source(
    cols: Sequence[Col], columns: Sequence[Sequence[Any]], start: int
) -> tuple[str, list[Any]]:
    """A batch's rows as one row source for a PostgreSQL statement, `(SELECT … AS name, …)`,
    a column per `cols` (`columns[i]`: the values of `cols[i]`, one per row, parameters from
    `$start`). Each column goes the cheapest way asyncpg sends it: a value every row shares as
    one scalar; text without newlines as one newline-joined text the server splits (asyncpg
    checks each element of a list parameter against collections.abc's ABCs, ~0.5 µs a text,
    where joining costs <0.1 µs); anything else as an array, all arrays in one `unnest`."""
    selects: list[str] = []
    arrays: list[str] = []
    params: list[Any] = []
    for n, (col, values) in enumerate(zip(cols, columns, strict=True), start):
        first = values[0]
        if values.count(first) == len(values):
            selects.append(f"${n}::{col.pg_type} AS {col.name}")
            params.append(first)
            continue
        joined = _joined(values) if col.pg_type == "text" else None
        if joined is not None:
            arrays.append(f"string_to_array(${n}, E'\\n')")
            params.append(joined)
        else:
            arrays.append(f"${n}::{col.pg_type}[]")
            params.append(list(values))
        selects.append(f"x.c{len(arrays)} AS {col.name}")
    sql = "SELECT " + ", ".join(selects)
    if arrays:
        aliases = ", ".join(f"c{i + 1}" for i in range(len(arrays)))
        sql += f" FROM unnest({', '.join(arrays)}) AS x({aliases})"
    return f"({sql})", params


def _joined(texts: Sequence[Any]) -> str | None:
    """The texts joined by newlines, or None when that would not split back into them (a
    None, or a newline inside one)."""
    try:
        joined = "\n".join(texts)
    except TypeError:
        return None
    return joined if joined.count("\n") == len(texts) - 1 else None


def in_list(
    conn: BaseDBAsyncClient, column: str, values: Sequence[Any], n: int, pg_type: str
) -> tuple[str, list[Any]]:
    """`column IN (…)` as one array parameter `$n` on PostgreSQL, a list on SQLite."""
    if is_pg(conn):
        return f"{column} = ANY(${n}::{pg_type}[])", [list(values)]
    return f"{column} IN ({placeholders(n, len(values))})", list(values)


async def insert_rows(
    conn: BaseDBAsyncClient,
    table: str,
    cols: Sequence[Col],
    rows: Sequence[Sequence[Any]],
    *,
    suffix: str = "",
) -> list[dict]:
    """Insert many rows in one statement: `unnest` of one array per column on PostgreSQL (one
    round trip, no per-row parameter parsing), chunked multi-row VALUES on SQLite."""
    if not rows:
        return []
    names = ", ".join(c.name for c in cols)
    if is_pg(conn):
        arrays = [list(column) for column in zip(*rows, strict=True)]
        unnest = ", ".join(f"${i + 1}::{c.pg_type}[]" for i, c in enumerate(cols))
        select = ", ".join(
            f"u.c{i}" + (f"::{c.cast}" if c.cast else "") for i, c in enumerate(cols)
        )
        alias = ", ".join(f"c{i}" for i in range(len(cols)))
        sql = (
            f"INSERT INTO {table} ({names}) SELECT {select}"
            f" FROM unnest({unnest}) AS u({alias}) {suffix}"
        )
        return await fetch(conn, sql, arrays)
    out: list[dict] = []
    # ~1,000 parameters a statement: SQLite's cost per numbered parameter grows with their
    # number (2,000 accounts of 16 columns: 2.8 s in chunks of 30,000, 0.3 s in these).
    per = max(1, 1000 // len(cols))
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        sql = f"INSERT INTO {table} ({names}) VALUES {values_rows(len(cols), len(chunk))} {suffix}"
        out += await fetch(conn, sql, [v for r in chunk for v in r])
    return out


async def copy_rows(
    conn: BaseDBAsyncClient, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Binary COPY of `rows` into `table` on the connection's open transaction (PostgreSQL).
    Triggers and constraints apply as for INSERT; there is no RETURNING."""
    if not rows:
        return
    async with conn.acquire_connection() as raw:
        await raw.copy_records_to_table(table, records=rows, columns=list(columns))
