"""Record and verify the operation log. Call `record` (one row) or `record_many` (a batch)
inside the caller's transaction, so an action and its log row commit or roll back together.

The log is one hash chain: each row carries the previous row's hash. Extending it needs the
chain's head, so writers serialise on a PostgreSQL advisory lock held until their commit.
That lock is the cost of tamper evidence, and a busy worker must not pay it per decision:
`record_many` takes it once, reads the head once and inserts the whole batch with one
statement (ids allocated in order, so `verify_chain` walks the batch in the order it was
hashed). Batch writers (ingest, alarms) collect their entries and call it last, just before
their commit, so the lock is held for one statement and the commit, not the whole batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.audit.models import OperationLog
from server.ledger.sql import Col, fetch, insert_rows, is_pg

_CHAIN_LOCK = 0x5D_0A_0D_17  # pg advisory lock key of the operation-log chain


def _digest(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    detail: Any,
    site_id: int | None,
    reason: str,
) -> str:
    """Everything a row says is hashed (site and reason too: staff read the reason)."""
    payload = json.dumps(
        [prev_hash, at.isoformat(), actor, action, target, detail, site_id, reason],
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One row to append (see `record` for the fields)."""

    actor: str
    action: str
    target_type: str = ""
    target_id: str | int = ""
    site_id: int | None = None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


async def _head(conn: BaseDBAsyncClient) -> str:
    """Lock the chain (until the caller's commit) and return its last hash."""
    if is_pg(conn):
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_CHAIN_LOCK])
    rows = await fetch(conn, "SELECT row_hash FROM operation_log ORDER BY id DESC LIMIT 1")
    return rows[0]["row_hash"] if rows else ""


async def record(
    actor: str,
    action: str,
    *,
    target_type: str = "",
    target_id: str | int = "",
    site_id: int | None = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> OperationLog:
    """Append one row to the log, chained to the previous one."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    detail = detail or {}
    target = f"{target_type}:{target_id}"
    async with in_transaction() as conn:
        prev_hash = await _head(conn)
        return await OperationLog.create(
            at=at,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            site_id=site_id,
            reason=reason,
            detail=detail,
            prev_hash=prev_hash,
            row_hash=_digest(prev_hash, at, actor, action, target, detail, site_id, reason),
        )


_COLS = [
    Col("id", "bigint"), Col("at", "timestamptz"), Col("actor", "text"), Col("action", "text"),
    Col("target_type", "text"), Col("target_id", "text"), Col("site_id", "int"),
    Col("reason", "text"), Col("detail", "text", "jsonb"), Col("prev_hash", "text"),
    Col("row_hash", "text"),
]  # fmt: skip


async def record_many(entries: Sequence[Entry], *, conn: BaseDBAsyncClient | None = None) -> int:
    """Append `entries` in order as consecutive links of the chain; returns how many.

    With `conn` (the caller's open transaction) the rows are written on it directly, without
    a savepoint: on PostgreSQL three statements whatever the batch's size (the chain lock;
    the head and the ids; the insert), which is what a hot path such as the payment
    notifications' group commit can afford."""
    if not entries:
        return 0
    if conn is not None:
        return await _append(conn, entries)
    async with in_transaction() as own:
        return await _append(own, entries)


async def _append(conn: BaseDBAsyncClient, entries: Sequence[Entry]) -> int:
    stamp = datetime.now(UTC)
    prev_hash, ids = await _head_and_ids(conn, len(entries))
    rows = []
    for row_id, e in zip(ids, entries, strict=True):
        at = (e.at or stamp).astimezone(UTC)
        target = f"{e.target_type}:{e.target_id}"
        reason = e.reason[:500]
        row_hash = _digest(prev_hash, at, e.actor, e.action, target, e.detail, e.site_id, reason)
        detail = json.dumps(e.detail, ensure_ascii=False, separators=(",", ":"), default=str)
        rows.append((
            row_id, at, e.actor, e.action, e.target_type, str(e.target_id), e.site_id,
            reason, detail, prev_hash, row_hash,
        ))  # fmt: skip
        prev_hash = row_hash
    if ids[0] is None:  # SQLite: rowids follow the VALUES order
        cols, rows = _COLS[1:], [r[1:] for r in rows]
    else:
        cols = _COLS
    await insert_rows(conn, "operation_log", cols, rows)
    return len(entries)


async def _head_and_ids(conn: BaseDBAsyncClient, n: int) -> tuple[str, list[int | None]]:
    """Lock the chain (until the caller's commit), then its last hash and, on PostgreSQL,
    ids in ascending order for `n` rows in one statement ([None]*n where the insert assigns
    them). The lock is a statement of its own: a statement reads the snapshot taken when it
    started, so a head read by the statement that waited for the lock could be stale."""
    if not is_pg(conn):
        return await _head(conn), [None] * n
    await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_CHAIN_LOCK])
    rows = await fetch(
        conn,
        "SELECT (SELECT row_hash FROM operation_log ORDER BY id DESC LIMIT 1) AS head,"
        " ARRAY(SELECT nextval(pg_get_serial_sequence('operation_log', 'id'))"
        " FROM generate_series(1, $1)) AS ids",
        [n],
    )
    return rows[0]["head"] or "", sorted(int(i) for i in rows[0]["ids"])


@dataclass(frozen=True, slots=True)
class ChainBreak:
    row_id: int
    problem: str


async def verify_chain() -> list[ChainBreak]:
    """Recompute every row's hash; return where the chain is broken (empty when intact)."""
    breaks: list[ChainBreak] = []
    prev_hash = ""
    async for row in OperationLog.all().order_by("id"):
        target = f"{row.target_type}:{row.target_id}"
        expected = _digest(
            row.prev_hash,
            row.at,
            row.actor,
            row.action,
            target,
            row.detail,
            row.site_id,
            row.reason,
        )
        if row.prev_hash != prev_hash:
            breaks.append(ChainBreak(row.id, "上一条记录的哈希不符（记录被删除或插入）"))
        if row.row_hash != expected:
            breaks.append(ChainBreak(row.id, "记录内容与哈希不符（记录被修改）"))
        prev_hash = row.row_hash
    return breaks
