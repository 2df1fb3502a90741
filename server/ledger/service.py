"""Ledger service: the one way money moves.

Design (after django-hordak and Polar): `post()` writes one balanced transaction — legs in
integer fen that sum to zero — under an idempotency key with a UNIQUE constraint. Everything
else (recharge, charge, adjust, two-phase refund, reverse) is a posting rule from posting.py
handed to `post()`.

One `post()` runs in its own database transaction, or directly in the caller's when one is
open (no savepoint: what it changed before finding it may not post, it undoes itself), in
this order:

1. wallet legs          → `UPDATE account SET balance_fen = balance_fen + x WHERE … AND
   balance_fen + x >= -credit_limit_fen RETURNING balance_fen`: the row lock and the floor in
   one statement. No row back means closed, missing or insufficient: a typed error, and
   nothing stays written — unless the key was posted before: then it is a replay (see 3).
   `allow_arrears` drops the floor (usage already consumed).
2. chart rows           → the legs' ledger accounts, created on first use;
3. transaction + legs   → `INSERT … ON CONFLICT (key) DO NOTHING` and the legs (on
   PostgreSQL, 2 and 3 are one statement). A post of a key already posted (a replay, or a
   concurrent post that committed first: we block on the unique index until it does) gets
   no row back: our wallet update is undone and the first result returned
   (`created=False`) if the kind and legs are the same, else `IdempotencyConflict`. On
   PostgreSQL a deferred constraint trigger re-checks at commit that the legs sum to zero.

The key is not looked up before writing: on the hot path (a first post) that look-up found
nothing and cost a round trip. Posts that name another transaction (reverse, refund settle
and void) do look it up first, so that their replay is never mistaken for a second
reference (their own UNIQUE), and always run in a savepoint.

Rows are immutable: corrections are `reverse()` (once per original, a UNIQUE reference), and
a refund hold is settled or voided once (another UNIQUE reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.ledger import posting
from server.ledger.errors import (
    AccountClosed,
    AccountNotFound,
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientBalance,
    LedgerError,
    NotReversible,
    RefundAlreadyResolved,
    TransactionNotFound,
    UnbalancedTransaction,
)
from server.ledger.posting import REFUNDS_PAYABLE, Channel, ChargeType, Leg, TxKind
from server.ledger.sql import fetch, is_pg, ledger_account_ids, now, q, values_rows

MAX_KEY = 160


@dataclass(frozen=True, slots=True)
class Posted:
    transaction_id: int
    key: str
    created: bool  # False: the key was already posted and its first result is returned
    balance_after_fen: int | None  # the wallet's balance right after (None: no wallet leg)


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    id: int
    key: str
    kind: TxKind
    channel: str | None
    account_id: int | None
    balance_after_fen: int | None
    legs: tuple[Leg, ...]


class _LostRace(Exception):
    """Another post of the same key committed first; roll ours back and replay."""


async def post(
    key: str,
    kind: TxKind,
    legs: Sequence[Leg],
    *,
    memo: str,
    actor: str,
    allow_arrears: bool = False,
    channel: Channel | None = None,
    require_open: bool = False,
) -> Posted:
    """Post a balanced transaction once under `key` (see the module docstring)."""
    return await _post(
        key, TxKind(kind), legs, memo=memo, actor=actor, allow_arrears=allow_arrears,
        channel=channel, require_open=require_open,
    )  # fmt: skip


async def recharge(
    account_id: int, channel: Channel, amount_fen: int, *, key: str, actor: str, memo: str = ""
) -> Posted:
    """Money in through a payment channel: wallet +, channel clearing −."""
    p = posting.recharge_posting(account_id, channel, amount_fen, key=key, actor=actor, memo=memo)
    return await _post(
        p.key, p.kind, p.legs, memo=p.memo, actor=p.actor, channel=p.channel,
        require_open=p.require_open,
    )  # fmt: skip


async def charge(
    account_id: int,
    charge_type: ChargeType,
    amount_fen: int,
    *,
    key: str,
    actor: str,
    memo: str = "",
    allow_arrears: bool = False,
) -> Posted:
    """A fee from the wallet to revenue. `allow_arrears` only for consumption already used."""
    legs = posting.charge_legs(account_id, charge_type, amount_fen)
    return await _post(
        key, TxKind.CHARGE, legs, memo=memo, actor=actor, allow_arrears=allow_arrears,
        require_open=True,
    )  # fmt: skip


async def adjust(account_id: int, amount_fen: int, *, key: str, actor: str, reason: str) -> Posted:
    """A staff correction (± fen) against the adjustments account; the reason is required."""
    if not reason.strip():
        raise UnbalancedTransaction("调账必须填写原因")
    legs = posting.adjust_legs(account_id, amount_fen)
    return await _post(key, TxKind.ADJUSTMENT, legs, memo=reason, actor=actor)


async def refund_hold(
    account_id: int, channel: Channel, amount_fen: int, *, key: str, actor: str, memo: str = ""
) -> Posted:
    """Phase 1 of a refund: set the money aside (wallet → refunds payable), balance permitting."""
    legs = posting.refund_hold_legs(account_id, amount_fen)
    return await _post(
        key, TxKind.REFUND_HOLD, legs, memo=memo or "退款", actor=actor, channel=Channel(channel)
    )


async def refund_settle(hold_key: str, *, key: str, actor: str) -> Posted:
    """Phase 2a: the channel paid the refund out (refunds payable → channel clearing)."""
    hold = await _refund_hold(hold_key)
    legs = posting.refund_settle_legs(Channel(hold.channel), _held(hold))
    return await _post(
        key, TxKind.REFUND_SETTLE, legs, memo="退款成功", actor=actor,
        channel=Channel(hold.channel), account_id=hold.account_id, resolves_id=hold.id,
    )  # fmt: skip


async def refund_void(hold_key: str, *, key: str, actor: str) -> Posted:
    """Phase 2b: the refund failed; the money goes back to the wallet."""
    hold = await _refund_hold(hold_key)
    assert hold.account_id is not None
    legs = posting.refund_void_legs(hold.account_id, _held(hold))
    return await _post(
        key, TxKind.REFUND_VOID, legs, memo="退款失败，退回余额", actor=actor,
        channel=Channel(hold.channel), resolves_id=hold.id,
    )  # fmt: skip


async def reverse(
    original_key: str, *, key: str, actor: str, reason: str, allow_arrears: bool = False
) -> Posted:
    """Undo a transaction by posting its legs negated, once. A reversal that debits a wallet
    (undoing a recharge) respects the floor unless `allow_arrears`."""
    original = await load(original_key)
    if original.kind in {TxKind.REFUND_HOLD, TxKind.REFUND_SETTLE, TxKind.REFUND_VOID}:
        raise NotReversible("退款记录不能冲正，请使用退款作废", key=original_key)
    if original.kind is TxKind.REVERSAL:
        raise NotReversible("冲正记录不能再冲正，请重新记账", key=original_key)
    if not reason.strip():
        raise UnbalancedTransaction("冲正必须填写原因")
    legs = posting.reversal_legs(original.legs)
    return await _post(
        key, TxKind.REVERSAL, legs, memo=reason, actor=actor, allow_arrears=allow_arrears,
        channel=Channel(original.channel) if original.channel else None,
        account_id=original.account_id, reverses_id=original.id,
    )  # fmt: skip


async def load(key: str) -> StoredTransaction:
    """The transaction posted under `key`, with its legs; `TransactionNotFound` if none."""
    found = await _find(connections.get("default"), key)
    if found is None:
        raise TransactionNotFound("记账记录不存在", key=key)
    return found


async def balance_of(code: str) -> int:
    """A ledger account's balance: the sum of its legs (wallets: see account.balance_fen)."""
    conn = connections.get("default")
    rows = await fetch(
        conn,
        "SELECT COALESCE(SUM(l.amount_fen), 0) AS s FROM ledger_leg l"
        " JOIN ledger_account a ON a.id = l.ledger_account_id WHERE a.code = $1",
        [code],
    )
    return int(rows[0]["s"])


async def _post(
    key: str,
    kind: TxKind,
    legs: Sequence[Leg],
    *,
    memo: str,
    actor: str,
    allow_arrears: bool = False,
    channel: Channel | None = None,
    require_open: bool = False,
    account_id: int | None = None,
    reverses_id: int | None = None,
    resolves_id: int | None = None,
) -> Posted:
    legs = posting.validate(legs)
    check_key(key, actor)
    want = posting.fingerprint(kind, legs)
    conn = connections.get("default")
    references = reverses_id is not None or resolves_id is not None
    if references:  # a replay must not reach the reference's UNIQUE (an error, not a replay)
        existing = await _find(conn, key)
        if existing is not None:
            return _replayed(existing, want)
    row = tx_row(key, kind, memo, actor, channel, account_id, reverses_id, resolves_id)
    try:
        if isinstance(conn, TransactionalDBClient) and not references:
            # Inside the caller's transaction: no savepoint (two round trips). Nothing below
            # fails in the database on the way (guarded UPDATE, ON CONFLICT DO NOTHING), and
            # what it changed before finding that it may not post is undone by `_write`.
            return await _write(conn, row, legs, allow_arrears, require_open, undo=True)
        async with in_transaction() as tx:
            return await _write(tx, row, legs, allow_arrears, require_open, undo=False)
    except _LostRace:
        pass
    except IntegrityError:
        if reverses_id is not None:
            raise AlreadyReversed("该记录已冲正", key=key) from None
        if resolves_id is not None:
            raise RefundAlreadyResolved("该退款已处理", key=key) from None
        raise
    existing = await _find(connections.get("default"), key)
    assert existing is not None, "lost the race for a key that then vanished"
    return _replayed(existing, want)


def check_key(key: str, actor: str) -> None:
    if not key or len(key) > MAX_KEY or not actor:
        raise UnbalancedTransaction("记账需要幂等键（不超过160字符）和操作人", key=key)


def tx_row(
    key: str,
    kind: TxKind,
    memo: str,
    actor: str,
    channel: Channel | None,
    account_id: int | None = None,
    reverses_id: int | None = None,
    resolves_id: int | None = None,
) -> dict[str, Any]:
    """A transaction row's columns before `_write` (memo and actor cut to their columns)."""
    return {
        "key": key, "kind": TxKind(kind).value, "memo": memo[:200], "actor": actor[:100],
        "channel": channel.value if channel else None, "account_id": account_id,
        "reverses_id": reverses_id, "resolves_id": resolves_id,
    }  # fmt: skip


async def _write(
    conn: BaseDBAsyncClient,
    row: dict[str, Any],
    legs: tuple[Leg, ...],
    allow_arrears: bool,
    require_open: bool,
    *,
    undo: bool,
) -> Posted:
    """Wallets, then the transaction and its legs. The key is not looked up first: a key
    already posted shows as the transaction INSERT's conflict (or, when the wallet refuses,
    by a look-up then), and raises `_LostRace` for the caller to replay. `undo`: no savepoint
    around this, so wallet moves made before `_LostRace` or a refusal are reversed here."""
    moves: dict[int, int] = {}
    for leg in legs:
        wid = posting.wallet_id(leg.code)
        if wid is not None:
            moves[wid] = leg.amount_fen
    balances: dict[int, int] = {}
    try:
        for wid in sorted(moves):  # a fixed lock order: two wallets never deadlock
            balances[wid] = await move_wallet(conn, wid, moves[wid], allow_arrears, require_open)
    except LedgerError:
        if undo:
            await _undo_moves(conn, {w: moves[w] for w in balances})
        if await _find(conn, row["key"]) is not None:
            raise _LostRace from None  # posted before: a replay, whatever the wallet says now
        raise
    if row["account_id"] is None and len(moves) == 1:
        row["account_id"] = next(iter(moves))
    balance_after = balances.get(row["account_id"]) if row["account_id"] is not None else None
    tx_id = await _insert_transaction(conn, [*row.values(), balance_after, now()], legs)
    if tx_id is None:
        if undo:
            await _undo_moves(conn, moves)
        raise _LostRace
    return Posted(tx_id, row["key"], True, balance_after)


_INSERT_TX = (
    'INSERT INTO ledger_transaction ("key", kind, memo, actor, channel, account_id,'
    " reverses_id, resolves_id, balance_after_fen, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ' ON CONFLICT ("key") DO NOTHING RETURNING id'
)


async def _insert_transaction(
    conn: BaseDBAsyncClient, values: list[Any], legs: tuple[Leg, ...]
) -> int | None:
    """The transaction row and its legs (in leg order), their ledger accounts created on
    first use; None when the key is taken (nothing written then)."""
    if not is_pg(conn):
        ids = await ledger_account_ids(conn, [leg.code for leg in legs])
        return await _insert_rows(conn, values, legs, ids)
    sql = _pg_post_sql(len(legs))
    params = list(values)
    for leg in legs:
        spec = posting.spec_of(leg.code)
        params += [spec.code, spec.kind.value, spec.name, spec.account_id, leg.amount_fen]
    for _attempt in range(2):
        found, tx_id = await _pg_post(conn, sql, params)
        if found == len(legs):
            return tx_id
        # A ledger account another transaction was creating at this moment (it was not
        # visible to the statement): wait for it, then once more.
        await ledger_account_ids(conn, [leg.code for leg in legs])
    raise AssertionError("ledger accounts missing after they were created")


async def _pg_post(conn: BaseDBAsyncClient, sql: str, params: list[Any]) -> tuple[int, int | None]:
    rows = await fetch(conn, sql, params)
    tx_id = rows[0]["tx_id"]
    return int(rows[0]["found"]), (int(tx_id) if tx_id is not None else None)


_PG_POST_SQL: dict[int, str] = {}


def _pg_post_sql(n: int) -> str:
    """PostgreSQL, one statement for a post of `n` legs: create the missing ledger accounts,
    read all of them, insert the transaction only if all `n` are there (`ON CONFLICT (key) DO
    NOTHING`), insert its legs. The chart is read once, by `code IN ($11, $16, …)`, and
    everything else joins the statement's own few rows: a prepared statement's generic plan
    is made once, and one made while the chart was small (a new database; autovacuum off)
    keeps scanning the whole table for `code = ANY($1)`, a join to `unnest($1)` or a `NOT
    EXISTS` on it as it grows — measured ~3 ms a post at 8,000 wallets — while an IN list of
    scalars stays an index look-up. `found` < n: a ledger account was not visible (being
    created by another transaction)."""
    if n not in _PG_POST_SQL:
        rows = ", ".join(
            f"(${11 + 5 * i}::text, ${12 + 5 * i}::text, ${13 + 5 * i}::text,"
            f" ${14 + 5 * i}::int, ${15 + 5 * i}::bigint, {i})"
            for i in range(n)
        )
        codes = ", ".join(f"${11 + 5 * i}" for i in range(n))
        _PG_POST_SQL[n] = (
            f"WITH v (code, kind, name, account_id, amount, o) AS (VALUES {rows}),"
            f" old AS (SELECT id, code FROM ledger_account WHERE code IN ({codes})),"
            " ins AS (INSERT INTO ledger_account (code, kind, name, account_id, created_at)"
            " SELECT code, kind, name, account_id, $10 FROM v"
            " WHERE v.code NOT IN (SELECT code FROM old)"
            " ON CONFLICT (code) DO NOTHING RETURNING id, code),"
            " acc AS (SELECT id, code FROM old UNION ALL SELECT id, code FROM ins),"
            ' t AS (INSERT INTO ledger_transaction ("key", kind, memo, actor, channel,'
            " account_id, reverses_id, resolves_id, balance_after_fen, created_at)"
            " SELECT * FROM (VALUES ($1::text, $2::text, $3::text, $4::text, $5::text,"
            " $6::int, $7::bigint, $8::bigint, $9::bigint, $10::timestamptz)) AS x"
            f" WHERE (SELECT count(*) FROM acc) = {n}"
            ' ON CONFLICT ("key") DO NOTHING RETURNING id),'
            " l AS (INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
            " SELECT t.id, acc.id, v.amount FROM t, v JOIN acc ON acc.code = v.code"
            " ORDER BY v.o RETURNING transaction_id)"
            " SELECT (SELECT count(*) FROM acc) AS found, (SELECT id FROM t) AS tx_id,"
            " (SELECT count(*) FROM l) AS legs"
        )
    return _PG_POST_SQL[n]


async def _insert_rows(
    conn: BaseDBAsyncClient, values: list[Any], legs: tuple[Leg, ...], ids: dict[str, int]
) -> int | None:
    """SQLite: the transaction row, then its legs."""
    inserted = await fetch(conn, _INSERT_TX, values)
    if not inserted:
        return None
    tx_id = int(inserted[0]["id"])
    params: list[Any] = []
    for leg in legs:
        params += [tx_id, ids[leg.code], leg.amount_fen]
    await conn.execute_query(
        q(
            conn,
            "INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen) VALUES "
            + values_rows(3, len(legs)),
        ),
        params,
    )
    return tx_id


async def _undo_moves(conn: BaseDBAsyncClient, moves: dict[int, int]) -> None:
    """Reverse wallet moves of this transaction that may not stand (rows still locked)."""
    for wid, delta in moves.items():
        await conn.execute_query(
            q(conn, "UPDATE account SET balance_fen = balance_fen - $1 WHERE id = $2"),
            [delta, wid],
        )


async def move_wallet(
    conn: BaseDBAsyncClient, account_id: int, delta: int, allow_arrears: bool, require_open: bool
) -> int:
    """Add `delta` to a wallet under its row lock; the floor and status checked in the same
    statement. Returns the new balance, or raises why it could not."""
    sql = "UPDATE account SET balance_fen = balance_fen + $1 WHERE id = $2"
    if require_open:
        sql += " AND status = 'open'"
    if delta < 0 and not allow_arrears:
        sql += " AND balance_fen + $1 >= -credit_limit_fen"
    rows = await fetch(conn, sql + " RETURNING balance_fen", [delta, account_id])
    if rows:
        return int(rows[0]["balance_fen"])
    raise await refusal(conn, account_id, delta, require_open)


async def refusal(
    conn: BaseDBAsyncClient, account_id: int, delta: int, require_open: bool
) -> LedgerError:
    """Why a wallet refused a move of `delta` (missing, closed, or below its floor)."""
    found = await fetch(
        conn,
        "SELECT status, balance_fen, credit_limit_fen FROM account WHERE id = $1",
        [account_id],
    )
    if not found:
        return AccountNotFound("账户不存在", account_id=account_id)
    if require_open and found[0]["status"] != "open":
        return AccountClosed("账户已销户，不能充值或扣费", account_id=account_id)
    return InsufficientBalance(
        "余额不足",
        account_id=account_id,
        balance_fen=found[0]["balance_fen"],
        debit_fen=-delta,
        floor_fen=-found[0]["credit_limit_fen"],
    )


async def _find(conn: BaseDBAsyncClient, key: str) -> StoredTransaction | None:
    rows = await fetch(
        conn,
        "SELECT t.id, t.kind, t.channel, t.account_id, t.balance_after_fen, a.code, l.amount_fen"
        " FROM ledger_transaction t JOIN ledger_leg l ON l.transaction_id = t.id"
        ' JOIN ledger_account a ON a.id = l.ledger_account_id WHERE t."key" = $1 ORDER BY l.id',
        [key],
    )
    if not rows:
        return None
    first = rows[0]
    return StoredTransaction(
        id=int(first["id"]),
        key=key,
        kind=TxKind(first["kind"]),
        channel=first["channel"],
        account_id=first["account_id"],
        balance_after_fen=first["balance_after_fen"],
        legs=tuple(Leg(r["code"], int(r["amount_fen"])) for r in rows),
    )


def _replayed(existing: StoredTransaction, want: tuple[Any, ...]) -> Posted:
    if posting.fingerprint(existing.kind, existing.legs) != want:
        raise IdempotencyConflict(
            "该幂等键已用于另一笔不同的记账", key=existing.key, kind=existing.kind.value
        )
    return Posted(existing.id, existing.key, False, existing.balance_after_fen)


async def _refund_hold(hold_key: str) -> StoredTransaction:
    hold = await load(hold_key)
    if hold.kind is not TxKind.REFUND_HOLD or hold.channel is None:
        raise TransactionNotFound("退款申请不存在", key=hold_key)
    return hold


def _held(hold: StoredTransaction) -> int:
    return next(leg.amount_fen for leg in hold.legs if leg.code == REFUNDS_PAYABLE)
