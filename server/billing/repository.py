"""Usage billing's database reads and writes, one statement per table per batch.

Used by service.py only. Every query takes the whole batch: `= ANY($n)` arrays and `unnest`
inserts on PostgreSQL (one round trip each; the usage rows by binary COPY), chunked lists on
SQLite.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient

from server.billing.round import Bill, BillLine
from server.billing.usage import BillingState
from server.ledger import posting
from server.ledger.posting import ChargeType, TxKind
from server.ledger.service import move_wallet
from server.ledger.sql import (
    Col,
    copy_rows,
    fetch_records,
    in_list,
    insert_rows,
    is_pg,
    ledger_account_ids,
    now,
)
from server.metering.models import MeterBilling
from server.tariffs.models import TariffKind

ZERO = Decimal(0)


class MeterInfo(NamedTuple):
    """What billing needs of a meter (a named tuple: thousands per round)."""

    id: int
    account_id: int | None
    kind: str  # "electricity" / "water": also the tariff kind and the revenue charge type
    multiplier: Decimal
    platform: bool  # 平台计费


# Named tuples made from a ready tuple by tuple.__new__ (half the cost of calling the class):
# one per meter and per account of every batch.
_new_meter = functools.partial(tuple.__new__, MeterInfo)
_new_state = functools.partial(tuple.__new__, BillingState)
_multiplier = functools.lru_cache(maxsize=256)(Decimal)  # CT × PT: a few values per park


def usage_key(meter_id: int, reading_at: datetime) -> str:
    """The ledger idempotency key of one billed reading."""
    return f"usage:{meter_id}:{reading_at.astimezone(UTC).isoformat()}"


def as_datetime(value: Any) -> datetime:
    """asyncpg gives datetimes; SQLite gives the ISO text Tortoise stored."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def fetch_meters(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, MeterInfo]:
    where, params = in_list(conn, "id", ids, 1, "int")
    rows = await fetch_records(
        conn, f"SELECT id, account_id, kind, ct_ratio, pt_ratio, billing FROM meter WHERE {where}",
        params,
    )  # fmt: skip
    platform = MeterBilling.PLATFORM.value
    return {
        r["id"]: _new_meter(
            (
                r["id"],
                r["account_id"],
                r["kind"],
                _multiplier(r["ct_ratio"] * r["pt_ratio"]),
                r["billing"] == platform,
            )
        )
        for r in rows
    }


# Billing's state columns on the account row, per utility (tariff kind).
STATE_COLUMNS = {
    kind.value: (f"{kind.value}_carry_fen", f"{kind.value}_tier_start", f"{kind.value}_cumulative")
    for kind in TariffKind
}
_STATE_SELECT = ", ".join(c for cols in STATE_COLUMNS.values() for c in cols)


class Locked(NamedTuple):
    """The batch's accounts under their row locks: which are open, and billing's state of
    each (account, utility) the batch bills."""

    open: set[int]
    states: dict[tuple[int, str], BillingState]


async def lock_accounts(
    conn: BaseDBAsyncClient, ids: list[int], kinds: Collection[tuple[int, str]]
) -> Locked:
    """Row-lock the accounts (in id order: no deadlock between batches) and read, in the same
    statement, the billing state of each (account, utility) in `kinds`."""
    if not ids:
        return Locked(set(), {})
    where, params = in_list(conn, "id", ids, 1, "int")
    lock = " FOR UPDATE" if is_pg(conn) else ""
    rows = await fetch_records(
        conn,
        f"SELECT id, status, {_STATE_SELECT} FROM account WHERE {where} ORDER BY id{lock}",
        params,
    )
    by_id = {r["id"]: r for r in rows}
    states: dict[tuple[int, str], BillingState] = {}
    for account_id, kind in kinds:
        row = by_id.get(account_id)
        if row is not None:
            carry, start, cumulative = STATE_COLUMNS[kind]
            states[(account_id, kind)] = _new_state((
                Decimal(row[carry]), as_datetime(row[start]) if row[start] else None,
                Decimal(row[cumulative]),
            ))  # fmt: skip
    return Locked({r["id"] for r in rows if r["status"] == "open"}, states)


async def fetch_billed(
    conn: BaseDBAsyncClient, meter_ids: list[int], since: datetime
) -> dict[tuple[int, datetime], Mapping[str, Any]]:
    """Already-billed (meter, reading_at) pairs at or after `since`, with their result."""
    if not meter_ids:
        return {}
    where, params = in_list(conn, "u.meter_id", meter_ids, 2, "int")
    rows = await fetch_records(
        conn,
        "SELECT u.meter_id, u.reading_at, u.amount_fen, u.transaction_id, t.balance_after_fen"
        " FROM usage_charge u LEFT JOIN ledger_transaction t ON t.id = u.transaction_id"
        f" WHERE u.reading_at >= $1 AND {where}",
        [since.astimezone(UTC), *params],
    )
    return {(r["meter_id"], as_datetime(r["reading_at"]).astimezone(UTC)): r for r in rows}


async def fetch_tariff_rows(
    conn: BaseDBAsyncClient, account_ids: list[int]
) -> tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]:
    """(assignments of these accounts, every version of the plans they are on)."""
    if not account_ids:
        return [], []
    where, params = in_list(conn, "account_id", account_ids, 1, "int")
    assigned = await fetch_records(
        conn, f"SELECT account_id, kind, plan_id FROM tariff_assignment WHERE {where}", params
    )
    plan_ids = sorted({r["plan_id"] for r in assigned})
    if not plan_ids:
        return assigned, []
    where, params = in_list(conn, "plan_id", plan_ids, 1, "int")
    versions = await fetch_records(
        conn,
        f"SELECT plan_id, effective_from, spec FROM tariff_version WHERE {where}"
        " ORDER BY plan_id, effective_from",
        params,
    )
    return assigned, versions


@functools.lru_cache(maxsize=1024)
def _label_json(label: str) -> str:
    return json.dumps(label, ensure_ascii=False)


def lines_json(lines: Sequence[BillLine]) -> str:
    """The bill lines (label, quantity, unit price, amount) as stored,
    `[[label, quantity, unit price, amount], …]`: the text
    `json.dumps(…, ensure_ascii=False, separators=(",", ":"))` gives, built directly (a few
    labels repeat across thousands of rows; a Decimal's text never needs escaping)."""
    if len(lines) == 1:  # most bills: one band, or a flat price
        ((label, q, price, amount),) = lines
        return f'[[{_label_json(label)},"{q}","{price}","{amount}"]]'
    parts = [
        f'[{_label_json(label)},"{q}","{price}","{amount}"]' for label, q, price, amount in lines
    ]
    return f"[{','.join(parts)}]"


Charged = tuple[int, Any, MeterInfo, Bill]  # (index, ReadingToBill, meter, charge)


async def write_charges(
    conn: BaseDBAsyncClient,
    charged: Sequence[Charged],
    states: Mapping[Hashable, BillingState],
    actor: str,
) -> list[tuple[int | None, int | None]]:
    """Post the charges, record the usage rows, move the wallets and save the new states;
    per charge (transaction id, wallet balance after) — (None, balance now) for a charge that
    rounded to 0 fen. `states`: billing's state after the batch per (account, utility), for
    at least every (account, utility) charged."""
    if not charged:
        return []
    totals: dict[int, int] = {}
    billed: dict[int, dict[str, BillingState]] = {}
    for _, _, m, bill in charged:
        account: int = m.account_id  # type: ignore[assignment]
        totals[account] = totals.get(account, 0) + bill.deduct_fen
        billed.setdefault(account, {})[m.kind] = states[(account, m.kind)]
    finals = await _move_wallets(conn, totals, billed)
    # From each wallet's balance before the batch, charge by charge: the balance after each.
    running = {account: finals[account] + total for account, total in totals.items()}
    after: list[int] = []
    for _, _, m, bill in charged:
        balance = running[m.account_id] = running[m.account_id] - bill.deduct_fen  # type: ignore[index]
        after.append(balance)
    tx_ids = await _post_transactions(conn, charged, after, actor)
    await _insert_usage(conn, charged, tx_ids)
    return list(zip(tx_ids, after, strict=True))


async def _move_wallets(
    conn: BaseDBAsyncClient,
    totals: Mapping[int, int],
    states: Mapping[int, Mapping[str, BillingState]],
) -> dict[int, int]:
    """Debit each wallet by its batch total (arrears allowed: consumption already used) and
    store its new billing states, one row update per account; the balances after. The rows
    are locked (`lock_accounts`), so every one is there: a missing one fails the batch
    rather than losing a charge or a carry."""
    ids = sorted(totals)
    if not is_pg(conn):
        return {a: await _move_one(conn, a, totals[a], states[a]) for a in ids}
    kinds = sorted({kind for per in states.values() for kind in per})
    columns = [STATE_COLUMNS[kind] for kind in kinds]
    params: list[Any] = [ids, [totals[a] for a in ids]]
    sets, unnest, names = [], ["$1::int[]", "$2::bigint[]"], ["id", "d"]
    for k, kind in enumerate(kinds):
        carry, start, cumulative = columns[k]
        n = 3 + 3 * k
        # An account billed for one utility only keeps the other's state (NULL = unchanged).
        sets += [f"{carry} = COALESCE(u.c{k}, a.{carry})",
                 f"{start} = CASE WHEN u.c{k} IS NULL THEN a.{start} ELSE u.s{k} END",
                 f"{cumulative} = COALESCE(u.q{k}, a.{cumulative})"]  # fmt: skip
        unnest += [f"${n}::text[]", f"${n + 1}::timestamptz[]", f"${n + 2}::text[]"]
        names += [f"c{k}", f"s{k}", f"q{k}"]
        per = [states[a].get(kind) for a in ids]
        params += [[str(s.carry_fen) if s else None for s in per],
                   [s.tier_period_start if s else None for s in per],
                   [str(s.cumulative) if s else None for s in per]]  # fmt: skip
    rows = await fetch_records(
        conn,
        f"UPDATE account AS a SET balance_fen = a.balance_fen - u.d, {', '.join(sets)}"
        f" FROM unnest({', '.join(unnest)}) AS u({', '.join(names)}) WHERE a.id = u.id"
        " RETURNING a.id, a.balance_fen",
        params,
    )
    if len(rows) != len(ids):  # locked in this transaction: cannot happen; never lose one
        raise RuntimeError(f"billing: {len(rows)} of {len(ids)} accounts updated")
    return {r["id"]: int(r["balance_fen"]) for r in rows}


async def _move_one(
    conn: BaseDBAsyncClient, account_id: int, total: int, states: Mapping[str, BillingState]
) -> int:
    """SQLite: the wallet through the ledger's own move, then the states."""
    balance = await move_wallet(conn, account_id, -total, True, False)
    sets, params = [], []
    for kind, state in states.items():
        carry, start, cumulative = STATE_COLUMNS[kind]
        sets += [f"{carry} = ?", f"{start} = ?", f"{cumulative} = ?"]
        params += [str(state.carry_fen), state.tier_period_start, str(state.cumulative)]
    await conn.execute_query(
        f"UPDATE account SET {', '.join(sets)} WHERE id = ?", [*params, account_id]
    )
    return balance


# Text columns go to PostgreSQL as one newline-joined text split by the server, not as a
# text[] list: asyncpg checks each element of a list parameter against collections.abc's
# ABCs, ~0.5 µs a text here, where joining costs <0.1 µs. Only for values that never hold a
# newline: ledger keys, memos, kinds, a Decimal's text (none is ever empty either, which
# string_to_array would read as no element).
_SPLIT = "string_to_array(${}, E'\\n')"


def _joined(texts: Iterable[str]) -> str:
    return "\n".join(texts)


_TX_COLS = [Col('"key"', "text"), Col("kind", "text"), Col("memo", "text"), Col("actor", "text"),
            Col("account_id", "int"), Col("balance_after_fen", "bigint"),
            Col("created_at", "timestamptz")]  # fmt: skip
_LEG_COLS = [Col("transaction_id", "bigint"), Col("ledger_account_id", "int"),
             Col("amount_fen", "bigint")]  # fmt: skip


async def _post_transactions(
    conn: BaseDBAsyncClient, charged: Sequence[Charged], after: list[int], actor: str
) -> list[int | None]:
    """One ledger transaction (wallet −, revenue +) per charge of at least one fen, keyed
    `usage_key`; its id, or None for a charge that only moved the carry.

    Transactions go in by `unnest` INSERT … RETURNING (their ids name the legs and usage
    rows; taking ids from the sequence first with nextval cost the server more than the
    INSERT saved), legs by binary COPY: the same triggers and constraints apply as for
    INSERT (the statement checks of migration 0009, the deferred balance check at commit),
    and the client encodes rows without asyncpg's per-element array checks."""
    posted = [i for i, (_, _, _, bill) in enumerate(charged) if bill.deduct_fen]
    tx_ids: list[int | None] = [None] * len(charged)
    if not posted:
        return tx_ids
    stamp = now()
    kind = TxKind.CHARGE.value
    stamps: dict[datetime, str] = {}  # a round's readings share a few instants: format each once
    keys, memos, accounts, balances = [], [], [], []
    for i in posted:
        _, it, m, bill = charged[i]
        at = it.curr.taken_at
        iso = stamps.get(at)
        if iso is None:
            iso = stamps[at] = at.astimezone(UTC).isoformat()
        keys.append(f"usage:{it.meter_id}:{iso}")  # usage_key()
        memos.append(f"{'电' if m.kind == 'electricity' else '水'}费 {bill.quantity}")
        accounts.append(m.account_id)
        balances.append(after[i])
    if is_pg(conn):  # the batch's constants as plain parameters, one array per varying column
        inserted = await fetch_records(
            conn,
            'INSERT INTO ledger_transaction ("key", memo, account_id, balance_after_fen, kind,'
            " actor, created_at) SELECT u.k, u.m, u.a, u.b, $5, $6, $7"
            f" FROM unnest({_SPLIT.format(1)}, {_SPLIT.format(2)}, $3::int[], $4::bigint[])"
            ' AS u(k, m, a, b) RETURNING id, "key"',
            [_joined(keys), _joined(memos), accounts, balances, kind, actor, stamp],
        )
    else:
        varying = zip(keys, memos, accounts, balances, strict=True)
        rows = [(k, kind, memo, actor, a, b, stamp) for k, memo, a, b in varying]
        inserted = await insert_rows(
            conn, "ledger_transaction", _TX_COLS, rows, suffix='RETURNING id, "key"'
        )
    by_key = {r["key"]: r["id"] for r in inserted}
    for i, key in zip(posted, keys, strict=True):
        tx_ids[i] = by_key[key]
    await _post_legs(conn, charged, posted, tx_ids)
    return tx_ids


async def _post_legs(
    conn: BaseDBAsyncClient, charged: Sequence[Charged], posted: list[int], tx_ids: list[int | None]
) -> None:
    """Each posted charge's two legs: its wallet −amount, its utility's revenue +amount."""
    accounts = {charged[i][2].account_id for i in posted}
    wallets = {account: posting.wallet(account) for account in accounts}  # type: ignore[arg-type]
    kinds = {charged[i][2].kind for i in posted}
    revenues = {kind: posting.revenue(ChargeType(kind)) for kind in kinds}
    ids = await ledger_account_ids(conn, [*wallets.values(), *revenues.values()])
    wallet_ids = {account: ids[code] for account, code in wallets.items()}
    revenue_ids = {kind: ids[code] for kind, code in revenues.items()}
    legs = []
    for i in posted:
        _, _, m, bill = charged[i]
        amount = bill.deduct_fen
        legs.append((tx_ids[i], wallet_ids[m.account_id], -amount))
        legs.append((tx_ids[i], revenue_ids[m.kind], amount))
    if is_pg(conn):
        await copy_rows(conn, "ledger_leg", [c.name for c in _LEG_COLS], legs)
    else:
        await insert_rows(conn, "ledger_leg", _LEG_COLS, legs)


_USAGE_COLUMNS = ("meter_id", "account_id", "prev_reading_at", "reading_at", "quantity",
                  "exact_yuan", "amount_fen", "lines", "transaction_id", "created_at")  # fmt: skip


async def _insert_usage(
    conn: BaseDBAsyncClient, charged: Sequence[Charged], tx_ids: list[int | None]
) -> None:
    stamp = now()
    rows = [
        (it.meter_id, m.account_id, it.prev.taken_at, it.curr.taken_at, str(bill.quantity),
         str(bill.exact_yuan), bill.deduct_fen, lines_json(bill.lines), tx_id, stamp)
        for (_, it, m, bill), tx_id in zip(charged, tx_ids, strict=True)
    ]  # fmt: skip
    if is_pg(conn):
        await copy_rows(conn, "usage_charge", _USAGE_COLUMNS, rows)
        return
    cols = [Col("meter_id", "int"), Col("account_id", "int"), Col("prev_reading_at", "timestamptz"),
            Col("reading_at", "timestamptz"), Col("quantity", "text"), Col("exact_yuan", "text"),
            Col("amount_fen", "bigint"), Col("lines", "text", "jsonb"),
            Col("transaction_id", "bigint"), Col("created_at", "timestamptz")]  # fmt: skip
    utc_rows = [(r[0], r[1], r[2].astimezone(UTC), r[3].astimezone(UTC), *r[4:]) for r in rows]
    await insert_rows(conn, "usage_charge", cols, utc_rows)
