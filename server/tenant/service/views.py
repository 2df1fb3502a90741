"""What a tenant sees of their accounts: `AccountSummary` (the list, /me, binding answers).

    account_summaries(identity_id) -> [AccountSummary]         the caller's bound accounts
    account_summary(identity_id, account_id) -> AccountSummary  NotFound unless bound

Two or three queries whatever the number of accounts: the accounts joined with their
binding, site and room, then the active meters (and open recharges of meter-billed ones)
that the available balance is computed from. `available_fen` is the one balance a tenant
sees: `Available.alarm_fen` (server.accounts.balance), what alarms, trips and top-up act
on — the free wallet when a meter is platform-billed, else the wallet plus the meters'
money registers (for a meter-billed account, the meter's money).
"""

from __future__ import annotations

from typing import Any

from tortoise import connections

from server.accounts.balance import Available, available
from server.core.errors import NotFound
from server.ledger.sql import fetch
from server.metering.service.balance import meter_money
from server.tenant.service.access import NOT_FOUND

_ACCOUNTS = """
SELECT a.id, a.number, a.tenant_name, a.status, a.billing_mode, a.balance_fen,
       a.credit_limit_fen, s.id AS site_id, s.name AS site_name, ab.role,
       b.name AS building_name, f.name AS floor_name, r.name AS room_name
  FROM account_binding ab
  JOIN account a ON a.id = ab.account_id
  JOIN site s ON s.id = a.site_id
  LEFT JOIN room r ON r.id = a.room_id
  LEFT JOIN floor f ON f.id = r.floor_id
  LEFT JOIN building b ON b.id = f.building_id
 WHERE ab.identity_id = $1{extra}
 ORDER BY ab.id
"""


async def account_summaries(identity_id: int) -> list[dict[str, Any]]:
    """The caller's bound accounts, in the order they were bound."""
    rows = await bound_rows(identity_id, None)
    return await _summaries(rows)


async def account_summary(identity_id: int, account_id: int) -> dict[str, Any]:
    """One bound account's summary; `NotFound` when it is not bound to the caller."""
    rows = await bound_rows(identity_id, account_id)
    if not rows:
        raise NotFound(NOT_FOUND, account_id=account_id)
    return (await _summaries(rows))[0]


async def bound_rows(identity_id: int, account_id: int | None) -> list[dict[str, Any]]:
    """The caller's bound accounts (or the one `account_id`, if bound) with their binding,
    site and room: the isolation join every tenant view starts from."""
    conn = connections.get("default")
    if account_id is None:
        return await fetch(conn, _ACCOUNTS.format(extra=""), [identity_id])
    return await fetch(conn, _ACCOUNTS.format(extra=" AND a.id = $2"), [identity_id, account_id])


async def _summaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    meters = await meter_money(connections.get("default"), ids)
    return [summary(r, available(int(r["balance_fen"]), meters.get(r["id"], ()))) for r in rows]


def summary(row: dict[str, Any], balance: Available) -> dict[str, Any]:
    """The contract's AccountSummary of one account row and its available balance."""
    return {
        "id": row["id"],
        "site": {"id": row["site_id"], "name": row["site_name"]},
        "number": row["number"],
        "tenant_name": row["tenant_name"],
        "room": room_text(row),
        "status": row["status"],
        "billing_mode": row["billing_mode"],
        "role": row["role"],
        "balance_fen": int(row["balance_fen"]),
        "available_fen": balance.alarm_fen,
    }


def room_text(row: dict[str, Any]) -> str:
    """ "1号楼 1F 0101": building, floor and room names; "" for an account without a room."""
    parts = (row.get("building_name"), row.get("floor_name"), row.get("room_name"))
    return " ".join(p for p in parts if p)
