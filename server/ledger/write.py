"""The ledger's one writer: postings in; wallets, transactions and legs out.

Both forms of posting write through `write()` — `post()` (service.py: one posting, a replay
answered with its first result) and `post_batch()` (batch.py: many, all or nothing; billing's
rounds and the payment inbox's group commit) — with the same three statements whatever the
batch's size:

1. wallets        one UPDATE of every account row the batch touches: each wallet once with
                  the batch's total for it, its status and floor checked in the statement
                  (the floor against the lowest running balance the postings pass through in
                  their order, as posting them one by one would); plus the columns a caller
                  owns on that row (`RowColumns`: billing's carry and tier state), so that a
                  billing round is one UPDATE per account;
2. transactions   one INSERT … RETURNING id, "key" (`unnest` on PostgreSQL), which on
                  PostgreSQL also reads the legs' chart rows; chart rows are created on first
                  use (a wallet when its tenant first pays). A key posted before: see below;
3. legs           binary COPY on PostgreSQL (it costs the client half what an `unnest` INSERT
                  does; the same triggers and constraints apply as for INSERT: the statement
                  checks of migration 0009, the deferred balance check at commit), a
                  multi-row INSERT on SQLite.

Each transaction gets its own key, legs and `balance_after_fen` (its wallet's balance right
after it, in batch order), exactly as if posted one by one. On PostgreSQL each column of a
statement goes as one parameter (`sql.rows_source`), so a statement is one round trip and the
client's cost per posting is a few tuples. On SQLite (one writer at a time, in process) the
wallets are one UPDATE each.

When a posting may not post — a wallet refuses (closed, missing, below its floor) or a key
was posted before — `BatchNotPosted` says which. What was written before that stays in the
caller's transaction, to be rolled back, unless `undo` (post() inside its caller's
transaction, no savepoint): then the transaction INSERT skips a taken key (`ON CONFLICT
DO NOTHING`) instead of failing the caller's transaction, and the wallet moves are reversed
here before raising.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from server.ledger import posting
from server.ledger.errors import (
    AccountClosed,
    AccountNotFound,
    BatchNotPosted,
    InsufficientBalance,
    LedgerError,
)
from server.ledger.posting import Channel, Posting, TxKind
from server.ledger.sql import (
    Col,
    copy_rows,
    fetch,
    fetch_records,
    insert_rows,
    is_pg,
    ledger_account_ids,
    now,
    rows_source,
)


class Posted(NamedTuple):
    """A posting's result. (A named tuple: billing gets thousands back per round.)"""

    transaction_id: int
    key: str
    created: bool  # False: the key was already posted and its first result is returned
    balance_after_fen: int | None  # the wallet's balance right after (None: no wallet leg)


_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_LEDGER_COLUMNS = {"id", "balance_fen", "status", "credit_limit_fen"}


@dataclass(frozen=True, slots=True)
class RowColumns:
    """Columns of the account row that a caller owns (billing's carry and tier state), set in
    the batch's one wallet UPDATE next to `balance_fen`; the ledger knows nothing of their
    meaning. `groups[g]`: a group's columns (name, PostgreSQL type); `values[g]`: account id →
    that group's values for its row (an account not there keeps the group as it is). Every
    account named is updated (and its balance returned) even if no posting moves its wallet."""

    groups: tuple[tuple[Col, ...], ...]
    values: tuple[Mapping[int, Sequence[Any]], ...]

    def __post_init__(self) -> None:
        for group in self.groups:
            for col in group:
                if not _NAME.match(col.name) or col.name in _LEDGER_COLUMNS:
                    raise ValueError(f"not a caller's account column: {col.name!r}")


@dataclass(frozen=True, slots=True)
class Written:
    """What a write did: per posting its key, transaction id and wallet balance right after
    it; every account row updated → its balance after the batch."""

    keys: list[str]
    transaction_ids: list[int]
    balances_after: list[int | None]
    balances: dict[int, int]

    @property
    def posted(self) -> list[Posted]:
        """Per posting its result (built on demand: billing reads the lists above)."""
        return [Posted(t, k, True, b) for k, t, b in
                zip(self.keys, self.transaction_ids, self.balances_after, strict=True)]  # fmt: skip


class _Plan:
    """Per wallet: the batch's total move; the lowest running change a checked debit reaches
    (wallets with one only) and whether it must be open (those that must only). Per posting:
    the tenant account its transaction names and that wallet's running change right after it
    (None: the posting does not move it)."""

    __slots__ = ("accounts", "afters", "lowest", "need_open", "postings", "total")

    def __init__(self, postings: Sequence[Posting]) -> None:
        total: dict[int, int] = {}
        lowest: dict[int, int] = {}
        need_open: set[int] = set()
        self.accounts: list[int | None] = []
        self.afters: list[int | None] = []
        for p in postings:
            account, after, moved = p.account_id, None, 0
            checked, must_be_open = not p.allow_arrears, p.require_open
            for code, amount in p.legs:
                if not code.startswith("wallet:"):
                    continue
                wid = int(code[7:])  # "wallet:<account id>" (`posting.wallet`), checked before
                running = total[wid] = total.get(wid, 0) + amount
                if must_be_open:
                    need_open.add(wid)
                if amount < 0 and checked:
                    low = lowest.get(wid)
                    lowest[wid] = running if low is None or running < low else low
                if account is None or wid == account:
                    after, moved = running, moved + 1
            # Like post(): a transaction that moves one wallet names it (unless told another).
            if p.account_id is None:
                account, after = (wid, after) if moved == 1 else (None, None)
            self.accounts.append(account)
            self.afters.append(after)
        self.postings, self.total, self.lowest, self.need_open = postings, total, lowest, need_open

    def first(self, wallet: int) -> int:
        """The index of the first posting that moves `wallet` (to name it in an error)."""
        code = posting.wallet(wallet)
        return next(i for i, p in enumerate(self.postings) if any(c == code for c, _ in p.legs))


async def write(
    conn: BaseDBAsyncClient,
    postings: Sequence[Posting],
    columns: RowColumns | None = None,
    *,
    undo: bool = False,
    at: Sequence[datetime] | None = None,
) -> Written:
    """Write checked postings (see the module docstring); `posted[i]` answers `postings[i]`.
    `at` gives each posting's time (a history taken over, the demo's back-dated month);
    by default every one is stamped now."""
    times = _times(at, len(postings))  # checked before anything is written
    plan = _Plan(postings)
    finals = await _move_wallets(conn, plan, columns, undo)
    if not postings:  # only the caller's columns moved
        return Written([], [], [], finals)
    total = plan.total
    balances = [
        finals[account] - total[account] + after if after is not None else None  # type: ignore[index]
        for account, after in zip(plan.accounts, plan.afters, strict=True)
    ]
    # The postings' fields as columns (a transposition in C: thousands of postings).
    keys, kinds, _, memos, actors, channels, _, _, _, reverses, resolves = zip(
        *postings, strict=True
    )
    rows = [keys, [_TEXT[k] for k in kinds], memos, actors, [_TEXT[c] for c in channels],
            plan.accounts, balances, reverses, resolves, times]  # fmt: skip
    codes = sorted({code for p in postings for code, _ in p.legs})
    ids, chart = await _insert_transactions(conn, rows, codes, undo)
    missing = {i: None for i, key in enumerate(keys) if key not in ids}
    if missing:
        if undo:
            await _undo(conn, {w: plan.total[w] for w in finals if w in plan.total})
        raise BatchNotPosted(missing)  # type: ignore[arg-type]
    tx_ids = [ids[key] for key in keys]
    await _insert_legs(conn, postings, tx_ids, chart)
    return Written(list(keys), tx_ids, balances, finals)


def _times(at: Sequence[datetime] | None, n: int) -> list[datetime]:
    if at is None:
        return [now()] * n
    if len(at) != n or any(t.tzinfo is None for t in at):
        raise ValueError("one aware posting time per posting")
    return [t.astimezone(UTC) for t in at]


# -- 1. wallets -------------------------------------------------------------------------------
_WALLET_COLS = (Col("id", "int"), Col("delta", "bigint"), Col("lowest", "bigint"),
                Col("need_open", "bool"))  # fmt: skip


async def _move_wallets(
    conn: BaseDBAsyncClient, plan: _Plan, columns: RowColumns | None, undo: bool
) -> dict[int, int]:
    """One UPDATE of every account row of the batch (in id order); their balances after, or
    `BatchNotPosted` naming the first posting of each wallet that refused."""
    ids = sorted(set(plan.total).union(*(columns.values if columns else ())))
    if not ids:
        return {}
    total, lowest, need_open = plan.total, plan.lowest, plan.need_open
    rows = [ids, [total.get(a, 0) for a in ids], [lowest.get(a) for a in ids],
            [a in need_open for a in ids]]  # fmt: skip
    finals = await _update_accounts(conn, rows, columns)
    if len(finals) == len(ids):
        return finals
    if undo:
        await _undo(conn, {w: total[w] for w in finals if w in total})
    refused = [a for a in ids if a not in finals]
    if any(a not in total for a in refused):  # a caller's row, not a posting's wallet
        raise AccountNotFound("账户不存在", account_id=refused[0])
    raise BatchNotPosted({
        plan.first(w): await refusal(conn, w, lowest.get(w, 0), w in need_open) for w in refused
    })  # fmt: skip


async def _undo(conn: BaseDBAsyncClient, moves: Mapping[int, int]) -> None:
    """Reverse wallet moves that may not stand (their rows still locked by this transaction)."""
    if moves:
        ids = sorted(moves)
        n = len(ids)
        await _update_accounts(conn, [ids, [-moves[w] for w in ids], [None] * n, [False] * n])


async def _update_accounts(
    conn: BaseDBAsyncClient, rows: list[list[Any]], columns: RowColumns | None = None
) -> dict[int, int]:
    """`rows`: the values of `_WALLET_COLS` (account id, delta, lowest running change or None,
    must be open); the new balance of each row updated (a row that refused is missing)."""
    if not is_pg(conn):
        found: dict[int, int] = {}
        for row in zip(*rows, strict=True):
            balance = await _update_one(conn, row, columns)
            if balance is not None:
                found[row[0]] = balance
        return found
    cols, values, sets = list(_WALLET_COLS), list(rows), []
    for g, (group, by_account) in enumerate(_groups(columns)):
        chosen = list(map(by_account.get, rows[0]))
        cols.append(Col(f"s{g}", "bool"))
        values.append([v is not None for v in chosen])
        for j, col in enumerate(group):
            cols.append(Col(f"g{g}_{j}", col.pg_type))
            values.append([v[j] if v is not None else None for v in chosen])
            sets.append(f", {col.name} = CASE WHEN u.s{g} THEN u.g{g}_{j} ELSE a.{col.name} END")
    source, params = rows_source(cols, values, 1)
    (updated,) = await fetch_records(  # two arrays: decoded in C, not a record per row
        conn,
        f"WITH w AS (UPDATE account a SET balance_fen = a.balance_fen + u.delta{''.join(sets)}"
        f" FROM {source} AS u WHERE a.id = u.id AND (NOT u.need_open OR a.status = 'open')"
        " AND (u.lowest IS NULL OR a.balance_fen + u.lowest >= -a.credit_limit_fen)"
        " RETURNING a.id, a.balance_fen) SELECT array_agg(id) AS ids,"
        " array_agg(balance_fen) AS balances FROM w",
        params,
    )
    return dict(zip(updated["ids"] or (), updated["balances"] or (), strict=True))


def _groups(columns: RowColumns | None) -> list[tuple[tuple[Col, ...], Mapping[int, Any]]]:
    """A caller's column groups, each with its values by account."""
    return list(zip(columns.groups, columns.values, strict=True)) if columns else []


async def _update_one(
    conn: BaseDBAsyncClient, row: tuple[Any, ...], columns: RowColumns | None
) -> int | None:
    """SQLite: one account row; its new balance, or None when it refused."""
    account_id, delta, lowest, need_open = row
    sets, params = "", [delta, account_id, need_open, lowest]
    for group, by_account in _groups(columns):
        values = by_account.get(account_id)
        if values is None:
            continue
        for col, value in zip(group, values, strict=True):
            params.append(value)
            sets += f", {col.name} = ${len(params)}"
    found = await fetch(
        conn,
        f"UPDATE account SET balance_fen = balance_fen + $1{sets} WHERE id = $2"
        " AND (NOT $3 OR status = 'open') AND ($4 IS NULL OR balance_fen + $4 >= -credit_limit_fen)"
        " RETURNING balance_fen",
        params,
    )
    return int(found[0]["balance_fen"]) if found else None


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


# -- 2. transactions --------------------------------------------------------------------------
_TX_COLS = (Col('"key"', "text"), Col("kind", "text"), Col("memo", "text"), Col("actor", "text"),
            Col("channel", "text"), Col("account_id", "int"), Col("balance_after_fen", "bigint"),
            Col("reverses_id", "bigint"), Col("resolves_id", "bigint"),
            Col("created_at", "timestamptz"))  # fmt: skip
_TX_NAMES = ", ".join(c.name for c in _TX_COLS)
_TAKEN = re.compile(r'Key \("?key"?\)=\((.*)\) already exists', re.S)  # a unique violation
# Kinds and channels as plain text (an enum's `.value` costs ~0.2 µs, per posting).
_TEXT: dict[Any, str | None] = {m: m.value for m in (*TxKind, *Channel)} | {None: None}


async def _insert_transactions(
    conn: BaseDBAsyncClient, columns: list[Sequence[Any]], codes: list[str], undo: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """The transaction rows (`columns`: the values of `_TX_COLS`); the ids inserted by key (a
    key posted before is missing), and the ids of the ledger accounts named by `codes`."""
    if is_pg(conn):
        return await _insert_pg(conn, columns, codes, undo)
    chart = await ledger_account_ids(conn, codes)
    inserted = await insert_rows(
        conn, "ledger_transaction", _TX_COLS, list(zip(*columns, strict=True)),
        suffix='ON CONFLICT ("key") DO NOTHING RETURNING id, "key"',
    )  # fmt: skip
    return {r["key"]: r["id"] for r in inserted}, chart


async def _insert_pg(
    conn: BaseDBAsyncClient, columns: list[Sequence[Any]], codes: list[str], undo: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """PostgreSQL: the transactions and the chart read in one statement.

    `ON CONFLICT DO NOTHING` costs the server ~2 µs a row (a speculative insertion), a tenth
    of a billed reading's cost there: it is used only where an error would abort the caller's
    transaction (`undo`). Elsewhere the transaction is rolled back when the batch does not
    post anyway, and a key posted before shows as the unique violation."""
    source, params = rows_source(_TX_COLS, columns, 1)
    params.append("\n".join(codes))  # codes never hold a newline (`posting.spec_of`)
    skip = ' ON CONFLICT ("key") DO NOTHING' if undo else ""
    try:
        (found,) = await fetch_records(  # four arrays: decoded in C, not a record per row
            conn,
            f"WITH t AS (INSERT INTO ledger_transaction ({_TX_NAMES}) SELECT * FROM {source} AS u"
            f'{skip} RETURNING id, "key"), c AS (SELECT id, code FROM ledger_account'
            f" WHERE code = ANY(string_to_array(${len(params)}, E'\\n')))"
            ' SELECT * FROM (SELECT array_agg(id) AS ids, array_agg("key") AS keys FROM t) AS x,'
            " (SELECT array_agg(id) AS chart_ids, array_agg(code) AS codes FROM c) AS y",
            params,
        )
    except IntegrityError as exc:
        taken = _TAKEN.match(getattr(exc.__cause__, "detail", None) or "")
        if taken is None:
            raise
        keys = columns[0]
        raise BatchNotPosted({i: None for i, key in enumerate(keys) if key == taken[1]}) from exc
    ids = dict(zip(found["keys"] or (), found["ids"] or (), strict=True))
    chart = dict(zip(found["codes"] or (), found["chart_ids"] or (), strict=True))
    if len(chart) < len(codes):  # first use (or being created by another transaction)
        chart |= await ledger_account_ids(conn, [c for c in codes if c not in chart])
    return ids, chart


# -- 3. legs ----------------------------------------------------------------------------------
_LEG_COLS = (Col("transaction_id", "bigint"), Col("ledger_account_id", "int"),
             Col("amount_fen", "bigint"))  # fmt: skip


async def _insert_legs(
    conn: BaseDBAsyncClient,
    postings: Sequence[Posting],
    tx_ids: Sequence[int],
    chart: Mapping[str, int],
) -> None:
    """Every posting's legs, in leg order."""
    legs = [(tx, chart[code], amount) for tx, p in zip(tx_ids, postings, strict=True)
            for code, amount in p.legs]  # fmt: skip
    if is_pg(conn):
        await copy_rows(conn, "ledger_leg", [c.name for c in _LEG_COLS], legs)
    else:
        await insert_rows(conn, "ledger_leg", _LEG_COLS, legs)
