"""Jobs: enqueue, claim with a lease, complete, fail with back-off (docs/jobs.md).

    enqueue(kind, payload, *, run_at=None, dedupe_key=None, max_attempts=5, conn=None)
        -> job id, or None when `dedupe_key` was enqueued before
    claim(n, *, kinds, worker, lease_s, now) -> [Claimed]   due jobs, leased to `worker`
    complete(job, *, now) -> bool                           False: the lease was lost
    fail(job, error, *, now) -> JobStatus | None            PENDING (retry later) or DEAD
    purge(*, done_before, dead_before) -> int               old finished rows removed

`enqueue` writes on the caller's connection: inside a transaction the job commits or rolls
back with the event that causes it. A claim is one statement on both databases: PostgreSQL
takes the due rows `FOR UPDATE SKIP LOCKED`, so claimers never wait for nor share a row;
SQLite has one writer at a time, so the statement is a claim of its own. Each claim counts an
attempt; a job whose claimer died is claimable again when `claimed_until` passes, and one
that died with its claimer `max_attempts` times is DEAD. `complete` and `fail` are fenced on
the attempt they were claimed with, so a runner that lost its lease changes nothing.

Delivery is at least once (a runner may die after the work and before `complete`): handlers
are idempotent, as every service here already is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.jobs.models import JobStatus
from server.ledger.sql import fetch, in_list, is_pg

RETRY_BASE_S = 15
RETRY_CAP_S = 3600


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job leased to one runner: what its handler gets."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    attempts: int  # this claim's number (1 the first time); fences complete/fail
    max_attempts: int
    run_at: datetime
    dedupe_key: str | None = None


def retry_delay(attempts: int) -> timedelta:
    """Back-off after failed attempt number `attempts`: 15 s, 30 s, 1 min, … at most 1 h."""
    return timedelta(seconds=min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, attempts - 1)))


def _utc(at: datetime | None) -> datetime:
    return (at or datetime.now(UTC)).astimezone(UTC)


def _conn(conn: BaseDBAsyncClient | None) -> BaseDBAsyncClient:
    return conn or connections.get("default")


async def enqueue(
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
    conn: BaseDBAsyncClient | None = None,
) -> int | None:
    """Add a job due at `run_at` (now by default). With a `dedupe_key` already used, nothing
    is added and None is returned (the first job stands, whatever its state)."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    conn = _conn(conn)
    body = "$2::text::jsonb" if is_pg(conn) else "$2"
    rows = await fetch(
        conn,
        "INSERT INTO job (kind, payload, status, dedupe_key, run_at, attempts, max_attempts,"
        f" claimed_by, last_error, created_at) VALUES ($1, {body}, $3, $4, $5, 0, $6, '', '', $7)"
        " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        [
            kind,
            json.dumps(dict(payload or {}), separators=(",", ":"), ensure_ascii=False),
            JobStatus.PENDING.value,
            dedupe_key,
            _utc(run_at),
            max_attempts,
            datetime.now(UTC),
        ],
    )
    return int(rows[0]["id"]) if rows else None


async def claim(
    n: int,
    *,
    kinds: Sequence[str],
    worker: str,
    lease_s: float = 300.0,
    now: datetime | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> list[Claimed]:
    """Lease up to `n` due jobs of `kinds` to `worker` until now + `lease_s`, oldest first."""
    if n < 1 or not kinds:
        return []
    conn, now = _conn(conn), _utc(now)
    kind_in, kind_params = in_list(conn, "kind", list(kinds), 6, "text")
    lock = " FOR UPDATE SKIP LOCKED" if is_pg(conn) else ""
    rows = await fetch(
        conn,
        "UPDATE job SET status = $1, attempts = attempts + 1, claimed_until = $2,"
        " claimed_by = $3 WHERE id IN (SELECT id FROM job WHERE"
        " ((status = $4 AND run_at <= $5) OR (status = $1 AND claimed_until <= $5))"
        f" AND {kind_in} ORDER BY run_at, id LIMIT {int(n)}{lock})"
        " RETURNING id, kind, payload, attempts, max_attempts, run_at, dedupe_key",
        [
            JobStatus.RUNNING.value,
            now + timedelta(seconds=lease_s),
            worker[:64],
            JobStatus.PENDING.value,
            now,
            *kind_params,
        ],
    )
    jobs = sorted((_claimed(r) for r in rows), key=lambda j: (j.run_at, j.id))
    worn = [j for j in jobs if j.attempts > j.max_attempts]  # its claimers kept dying
    for job in worn:
        await _finish(conn, job, JobStatus.DEAD, now, "认领后多次未完成（处理进程中断？）")
    return [j for j in jobs if j.attempts <= j.max_attempts]


async def complete(
    job: Claimed, *, now: datetime | None = None, conn: BaseDBAsyncClient | None = None
) -> bool:
    """Mark the job done; False when its lease was lost (another claim owns it now)."""
    return await _finish(_conn(conn), job, JobStatus.DONE, _utc(now), "")


async def fail(
    job: Claimed,
    error: str,
    *,
    now: datetime | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> JobStatus | None:
    """Record a failed attempt: PENDING again after `retry_delay`, or DEAD after the last
    attempt. None when the lease was lost (nothing changed)."""
    conn, now = _conn(conn), _utc(now)
    if job.attempts >= job.max_attempts:
        done = await _finish(conn, job, JobStatus.DEAD, now, error)
        return JobStatus.DEAD if done else None
    rows = await fetch(
        conn,
        "UPDATE job SET status = $1, run_at = $2, claimed_until = NULL, last_error = $3"
        " WHERE id = $4 AND status = $5 AND attempts = $6 RETURNING id",
        [
            JobStatus.PENDING.value,
            now + retry_delay(job.attempts),
            error[:500],
            job.id,
            JobStatus.RUNNING.value,
            job.attempts,
        ],
    )
    return JobStatus.PENDING if rows else None


async def purge(
    *,
    done_before: datetime,
    dead_before: datetime,
    conn: BaseDBAsyncClient | None = None,
) -> int:
    """Delete jobs done before `done_before` and dead before `dead_before` (their dedupe
    keys are then free again: purge only past the period a key names)."""
    rows = await fetch(
        _conn(conn),
        "DELETE FROM job WHERE (status = $1 AND finished_at < $2)"
        " OR (status = $3 AND finished_at < $4) RETURNING id",
        [JobStatus.DONE.value, _utc(done_before), JobStatus.DEAD.value, _utc(dead_before)],
    )
    return len(rows)


async def _finish(
    conn: BaseDBAsyncClient, job: Claimed, status: JobStatus, now: datetime, error: str
) -> bool:
    rows = await fetch(
        conn,
        "UPDATE job SET status = $1, finished_at = $2, claimed_until = NULL,"
        " last_error = CASE WHEN $3 = '' THEN last_error ELSE $3 END"
        " WHERE id = $4 AND status = $5 AND attempts = $6 RETURNING id",
        [status.value, now, error[:500], job.id, JobStatus.RUNNING.value, job.attempts],
    )
    return bool(rows)


def _claimed(r: Mapping[str, Any]) -> Claimed:
    payload = r["payload"]
    run_at = r["run_at"]
    if not isinstance(run_at, datetime):  # SQLite: the text Tortoise stores (UTC)
        run_at = datetime.fromisoformat(run_at)
    return Claimed(
        id=int(r["id"]),
        kind=r["kind"],
        payload=json.loads(payload) if isinstance(payload, str) else dict(payload or {}),
        attempts=int(r["attempts"]),
        max_attempts=int(r["max_attempts"]),
        run_at=run_at if run_at.tzinfo else run_at.replace(tzinfo=UTC),
        dedupe_key=r["dedupe_key"],
    )
