"""The batch form of posting: many postings in the caller's database transaction, whole or not
at all, in the same few statements whatever their number (write.py).

Two callers gather independent money events and commit them together: billing's rounds
(~2,000 usage charges at a time, with billing's carry and tier state set on the same account
rows: `RowColumns`) and the payment inbox's group commit (a burst of notifications).
`post_batch` writes for each posting what `post()` would write for it — its own key, legs and
`balance_after_fen` in batch order; the deferred balance check runs at the caller's commit.

All or nothing. The batch is the same writer as `post()`, not a second set of rules: when any
posting may not post — a wallet refuses (closed, missing, below its floor) or a key was
posted before — `BatchNotPosted` says which, and the caller's transaction holds part of the
batch and must be rolled back (let the error leave `in_transaction`). A caller that wants
each posting's own answer then posts them one by one with `post()`, which knows replays and
refusals per posting.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient

from server.ledger import posting
from server.ledger.errors import BatchNotPosted, UnbalancedTransaction
from server.ledger.posting import Posting
from server.ledger.write import RowColumns, Written, write

__all__ = ["BatchNotPosted", "RowColumns", "Written", "post_batch"]


async def post_batch(
    postings: Sequence[Posting],
    *,
    columns: RowColumns | None = None,
    at: Sequence[datetime] | None = None,
) -> Written:
    """Post every posting (all new keys) in the caller's open transaction and set `columns`
    on the same account rows, or raise `BatchNotPosted` (see the module docstring);
    `result.posted[i]` answers `postings[i]`. `at`, when given, is each posting's time (a
    history taken over, the demo's back-dated month: `server.seed.seed_history`); the
    postings are otherwise exactly those of now, balanced and checked the same way."""
    conn = connections.get("default")
    if not isinstance(conn, TransactionalDBClient):
        raise RuntimeError("post_batch runs inside the caller's transaction (in_transaction)")
    checked = [posting.checked(p) for p in postings]
    if len({p.key for p in checked}) != len(checked):
        raise UnbalancedTransaction("同一批记账中幂等键重复")
    return await write(conn, checked, columns, at=at)
