"""Record and verify the operation log. Call `record` inside the caller's transaction, so an
action and its log row commit or roll back together."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from server.audit.models import OperationLog

_CHAIN_LOCK = 0x5D_0A_0D_17  # pg advisory lock key of the operation-log chain


def _digest(prev_hash: str, at: datetime, actor: str, action: str, target: str, detail: Any) -> str:
    payload = json.dumps(
        [prev_hash, at.isoformat(), actor, action, target, detail],
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


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
        if conn.capabilities.dialect == "postgres":
            # One writer at a time extends the chain; held until the caller's commit.
            await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_CHAIN_LOCK])
        last = await OperationLog.all().order_by("-id").first().only("row_hash")
        prev_hash = last.row_hash if last else ""
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
            row_hash=_digest(prev_hash, at, actor, action, target, detail),
        )


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
        expected = _digest(row.prev_hash, row.at, row.actor, row.action, target, row.detail)
        if row.prev_hash != prev_hash:
            breaks.append(ChainBreak(row.id, "上一条记录的哈希不符（记录被删除或插入）"))
        if row.row_hash != expected:
            breaks.append(ChainBreak(row.id, "记录内容与哈希不符（记录被修改）"))
        prev_hash = row.row_hash
    return breaks
