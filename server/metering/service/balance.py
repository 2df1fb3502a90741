"""The available balance of accounts, loaded (the rule is the pure `server.accounts.balance`).

It lives in metering, not accounts: it reads meters and their recharge commands, and metering
sits above accounts (a meter belongs to an account; accounts know nothing of meters).

    available_balance(account_id) -> Available
    available_balances(account_ids) -> {account_id: Available}      one query per table

Reads only: the wallet (`account`), the active meters (`meter`) and the open recharge
commands (`meter_command`). Pass `conn` to read inside a caller's transaction (rows it has
locked); a batch is any size, read in chunks of `CHUNK` accounts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.accounts.balance import Available, MeterMoney, available
from server.core.errors import NotFound
from server.ledger.sql import fetch, in_list
from server.metering.models import CommandOp, CommandStatus, MeterBilling, MeterStatus

CHUNK = 5000
_OPEN = f"'{CommandStatus.QUEUED.value}', '{CommandStatus.SENT.value}'"  # money on its way


async def available_balance(account_id: int, *, conn: BaseDBAsyncClient | None = None) -> Available:
    """One account's available balance; `NotFound` when there is no such account."""
    found = await available_balances([account_id], conn=conn)
    if account_id not in found:
        raise NotFound("账户不存在", account_id=account_id)
    return found[account_id]


async def available_balances(
    account_ids: Iterable[int], *, conn: BaseDBAsyncClient | None = None
) -> dict[int, Available]:
    """Available balances of many accounts (alarm rounds, the demo's tenants); accounts that
    do not exist are left out."""
    conn = conn or connections.get("default")
    ids = sorted(set(account_ids))
    out: dict[int, Available] = {}
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        where, params = in_list(conn, "id", chunk, 1, "int")
        wallets = await fetch(conn, f"SELECT id, balance_fen FROM account WHERE {where}", params)
        meters = await meter_money(conn, chunk)
        for r in wallets:
            out[r["id"]] = available(int(r["balance_fen"]), meters.get(r["id"], ()))
    return out


async def meter_money(
    conn: BaseDBAsyncClient, account_ids: Sequence[int]
) -> dict[int, list[MeterMoney]]:
    """The active meters of these accounts as the rule needs them, by account."""
    if not account_ids:
        return {}
    where, params = in_list(conn, "account_id", account_ids, 1, "int")
    rows = await fetch(
        conn,
        "SELECT id, account_id, kind, billing, money_fen FROM meter"
        f" WHERE status = '{MeterStatus.ACTIVE.value}' AND {where} ORDER BY id",
        params,
    )
    billed = [r["id"] for r in rows if r["billing"] == MeterBilling.METER.value]
    pending = await pending_recharges(conn, billed)
    out: dict[int, list[MeterMoney]] = {}
    for r in rows:
        money = to_meter_money(r["id"], r["kind"], r["billing"], r["money_fen"], pending)
        out.setdefault(r["account_id"], []).append(money)
    return out


def to_meter_money(
    meter_id: int, kind: str, billing: str, money_fen: int | None, pending: dict[int, int]
) -> MeterMoney:
    """A meter's row values and the open recharges per meter, as the rule takes them."""
    billed = billing == MeterBilling.METER.value
    register = int(money_fen) if billed and money_fen is not None else None
    return MeterMoney(meter_id, kind, billed, register, pending.get(meter_id, 0) if billed else 0)


async def pending_recharges(conn: BaseDBAsyncClient, meter_ids: Sequence[int]) -> dict[int, int]:
    """Money in open recharge commands per meter (not yet confirmed, still in the wallet)."""
    if not meter_ids:
        return {}
    where, params = in_list(conn, "meter_id", meter_ids, 1, "int")
    rows = await fetch(
        conn,
        f"SELECT meter_id, params FROM meter_command WHERE {where}"
        f" AND op = '{CommandOp.RECHARGE.value}' AND status IN ({_OPEN})",
        params,
    )
    out: dict[int, int] = {}
    for r in rows:
        p = json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]
        out[r["meter_id"]] = out.get(r["meter_id"], 0) + int(p["amount_fen"])
    return out
