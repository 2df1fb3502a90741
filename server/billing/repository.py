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

from server.billing.usage import Bill, BillingState, BillLine
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


async def lock_accounts(conn: BaseDBAsyncClient, ids: list[int]) -> set[int]:
    """Row-lock the accounts (in id order: no deadlock between batches); the open ones."""
    if not ids:
        return set()
    where, params = in_list(conn, "id", ids, 1, "int")
    lock = " FOR UPDATE" if is_pg(conn) else ""
    rows = await fetch_records(
        conn, f"SELECT id, status FROM account WHERE {where} ORDER BY id{lock}", params
    )
    return {r["id"] for r in rows if r["status"] == "open"}


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


async def fetch_states(
    conn: BaseDBAsyncClient, account_ids: list[int]
) -> dict[tuple[int, str], BillingState]:
    if not account_ids:
        return {}
    where, params = in_list(conn, "account_id", account_ids, 1, "int")
    rows = await fetch_records(
        conn,
        "SELECT account_id, kind, carry_fen, tier_period_start, cumulative FROM billing_state"
        f" WHERE {where}",
        params,
    )
    return {
        (r["account_id"], r["kind"]): _new_state(
            (
                Decimal(r["carry_fen"]),
                as_datetime(r["tier_period_start"]) if r["tier_period_start"] else None,
                Decimal(r["cumulative"]),
            )
        )
        for r in rows
    }


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
    stored: Collection[Hashable] = (),
) -> list[tuple[int | None, int | None]]:
    """Post the charges, record the usage rows and states; per charge (transaction id,
    wallet balance after) — (None, balance now) for a charge that rounded to 0 fen.
    `stored`: the (account, kind) states already in the table (updated, not inserted)."""
    if not charged:
        return []
    totals: dict[int, int] = {}
    for _, _, m, bill in charged:
        totals[m.account_id] = totals.get(m.account_id, 0) + bill.deduct_fen  # type: ignore[index]
    finals = await _move_wallets(conn, totals)
    # From each wallet's balance before the batch, charge by charge: the balance after each.
    running = {account: finals[account] + total for account, total in totals.items()}
    after: list[int] = []
    for _, _, m, bill in charged:
        balance = running[m.account_id] = running[m.account_id] - bill.deduct_fen  # type: ignore[index]
        after.append(balance)
    tx_ids = await _post_transactions(conn, charged, after, actor)
    await _insert_usage(conn, charged, tx_ids)
    billed = dict.fromkeys((m.account_id, m.kind) for _, _, m, _ in charged)  # in batch order
    await _save_states(conn, billed, states, stored)
    return list(zip(tx_ids, after, strict=True))


async def _move_wallets(conn: BaseDBAsyncClient, totals: Mapping[int, int]) -> dict[int, int]:
    """Debit each wallet by its batch total (arrears allowed: consumption already used); the
    balances after."""
    ids = sorted(totals)
    if not is_pg(conn):
        return {a: await move_wallet(conn, a, -totals[a], True, False) for a in ids}
    rows = await fetch_records(
        conn,
        "UPDATE account AS a SET balance_fen = a.balance_fen - u.d"
        " FROM unnest($1::int[], $2::bigint[]) AS u(id, d) WHERE a.id = u.id"
        " RETURNING a.id, a.balance_fen",
        [ids, [totals[a] for a in ids]],
    )
    return {r["id"]: int(r["balance_fen"]) for r in rows}


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
        at = it.curr.read_at
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
        (it.meter_id, m.account_id, it.prev.read_at, it.curr.read_at, str(bill.quantity),
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


_STATE_COLS = [Col("account_id", "int"), Col("kind", "text"), Col("carry_fen", "text"),
               Col("tier_period_start", "timestamptz"), Col("cumulative", "text"),
               Col("updated_at", "timestamptz")]  # fmt: skip


async def _save_states(
    conn: BaseDBAsyncClient,
    keys: Iterable[tuple[Any, str]],
    states: Mapping[Hashable, BillingState],
    stored: Collection[Hashable],
) -> None:
    """The new billing states: a plain UPDATE for those already stored (every account after
    its first bill: no speculative insert, no foreign-key check), an upsert for the rest."""
    stamp = now()
    new, old = [], []
    pg = is_pg(conn)
    for account_id, kind in keys:  # no order needed: the accounts' row locks are held
        s = states[(account_id, kind)]
        row = (account_id, kind, str(s.carry_fen), s.tier_period_start, str(s.cumulative), stamp)
        (old if pg and (account_id, kind) in stored else new).append(row)
    if old:
        ids, kinds, carries, starts, cumulatives, _ = zip(*old, strict=True)
        updated, _ = await conn.execute_query(
            "UPDATE billing_state AS b SET carry_fen = u.carry, tier_period_start = u.tps,"
            " cumulative = u.cum, updated_at = $6"
            f" FROM unnest($1::int[], {_SPLIT.format(2)}, {_SPLIT.format(3)}, $4::timestamptz[],"
            f" {_SPLIT.format(5)}) AS u(account_id, kind, carry, tps, cum)"
            " WHERE b.account_id = u.account_id AND b.kind = u.kind",
            [list(ids), _joined(kinds), _joined(carries), list(starts), _joined(cumulatives),
             stamp],
        )  # fmt: skip
        if updated != len(old):  # read under the accounts' locks: cannot happen; never lose one
            raise RuntimeError(f"billing states: {updated} of {len(old)} stored rows updated")
    await insert_rows(
        conn, "billing_state", _STATE_COLS, new,
        suffix="ON CONFLICT (account_id, kind) DO UPDATE SET carry_fen = excluded.carry_fen,"
        " tier_period_start = excluded.tier_period_start, cumulative = excluded.cumulative,"
        " updated_at = excluded.updated_at",
    )  # fmt: skip
