"""Usage charges posted in the past, written by hand: the ledger stamps every transaction
with the current time, and a statement test needs a wallet debited over many days. Each
charge is balanced (wallet −x, revenue +x) like billing's; the wallet's balance row is left
alone (the statement reads the legs, not the balance)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tortoise import connections

from server.ledger.sql import ledger_account_ids, q


async def backdated_charges(
    account_id: int, charges: Sequence[tuple[datetime, int]], *, meter_id: int = 1
) -> list[int]:
    """Usage charges of `account_id` at each (posting time, fen): their transaction ids."""
    conn = connections.get("default")
    ids = await ledger_account_ids(conn, [f"wallet:{account_id}", "revenue:electricity"])
    wallet, revenue = ids[f"wallet:{account_id}"], ids["revenue:electricity"]
    out = []
    for at, fen in charges:
        rows = await conn.execute_query_dict(
            q(conn, 'INSERT INTO ledger_transaction ("key", kind, memo, actor, account_id,'
                    " created_at) VALUES ($1, 'charge', $2, 'system:test', $3, $4) RETURNING id"),
            [f"usage:{meter_id}:{at.isoformat()}", f"电费 {fen}", account_id, at],
        )  # fmt: skip
        tx = rows[0]["id"]
        await conn.execute_query(
            q(conn, "INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
                    " VALUES ($1, $2, $3), ($1, $4, $5)"),
            [tx, wallet, -fen, revenue, fen],
        )  # fmt: skip
        out.append(tx)
    return out
