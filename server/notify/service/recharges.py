"""充值到账: a message per recharge, written by the payments follow-up in the transaction that
marks the credit followed up (the payment notification's hot path itself writes nothing more,
so `bench.notify` keeps its cost; the follow-up is batched already).

Amount and balance come from the credit's ledger transaction (its key is the credit key):
the wallet leg's amount and `balance_after_fen`. One read per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from server.core.money import yuan
from server.ledger.sql import fetch, in_list
from server.notify.service.outbox import Event, enqueue

NOTIFIED_REASONS = {"recharge", "counter"}  # an adjustment by staff is not announced


async def credited(
    conn: BaseDBAsyncClient, credits: Sequence[tuple[int, str, str]], *, now: datetime
) -> int:
    """Queue 充值到账 for `credits` (account id, credit key, reason) on `conn`; returns how many
    messages were queued. A credit announced before adds nothing (its key)."""
    keys = sorted({key for _, key, reason in credits if reason in NOTIFIED_REASONS})
    if not keys:
        return 0
    where, params = in_list(conn, "t.key", keys, 1, "text")
    rows = await fetch(
        conn,
        "SELECT t.key, t.account_id, t.balance_after_fen, MAX(ABS(l.amount_fen)) AS amount"
        " FROM ledger_transaction t JOIN ledger_leg l ON l.transaction_id = t.id"
        f" WHERE {where} AND t.account_id IS NOT NULL"
        " GROUP BY t.key, t.account_id, t.balance_after_fen",
        params,
    )
    events = [
        Event(
            int(r["account_id"]),
            "recharge.done",
            f"credit:{r['key']}",
            f"recharge:{r['key']}",
            {"amount": str(yuan(int(r["amount"])))},
            int(r["balance_after_fen"] or 0),
            limited=False,
        )
        for r in rows
    ]
    return await enqueue(conn, events, now=now)
