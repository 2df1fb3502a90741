"""Many postings in one go, inside the caller's database transaction (group commit).

For callers that gather independent money events and commit them together — the payment
inbox under a burst of notifications — `post_many` writes what `post()` would write for each
posting, with a fixed number of statements per batch instead of per posting. On PostgreSQL:

1. wallets       one `UPDATE account … FROM (VALUES …)`, each wallet once with the batch's
                 total for it; the status and floor checked in the same statement, the
                 floor against the lowest running balance the postings would pass through
                 in their order (as posting them one by one would);
2. the rest      chart rows created on first use, the transactions (`ON CONFLICT (key) DO
                 NOTHING`) and their legs: one statement.

Each transaction gets its own key, legs and `balance_after_fen` (the wallet's balance right
after it, in batch order), exactly as if posted one by one; the deferred balance check runs
at the caller's commit as for any post.

All or nothing. The batch is a fast path for the common case, not a second set of rules:
when any posting may not post — a wallet refuses (closed, missing, below its floor) or a key
was posted before — `BatchNotPosted` says which, and the caller's transaction holds part of
the batch and must be rolled back (let the error leave `in_transaction`). The caller then
posts one by one with `post()`, which knows replays and refusals per posting.

Statements are built for padded sizes (`sql.padded`): a few prepared statements serve every
batch, and every look-up is a list of scalars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient

from server.ledger import posting
from server.ledger.errors import LedgerError, UnbalancedTransaction
from server.ledger.posting import Posting, TxKind
from server.ledger.service import Posted, _LostRace, _write, check_key, refusal, tx_row
from server.ledger.sql import (
    fetch,
    is_pg,
    ledger_account_ids,
    now,
    padded,
    typed_params,
    values_list,
)

MAX_BATCH = 64


class BatchNotPosted(LedgerError):
    """Not every posting of a batch may post. `refused` maps a posting's index to why: the
    wallet's error, or None when its key was posted before. The caller's transaction holds
    part of the batch and must be rolled back."""

    code = "batch_not_posted"

    def __init__(self, refused: dict[int, LedgerError | None]) -> None:
        super().__init__("批量记账未全部成功，需逐笔处理", refused=len(refused))
        self.refused = refused


async def post_many(postings: Sequence[Posting]) -> list[Posted]:
    """Post every posting (all new keys) in the caller's open transaction, or raise
    `BatchNotPosted` (see the module docstring); `result[i]` answers `postings[i]`."""
    if not postings:
        return []
    if len(postings) > MAX_BATCH:
        raise UnbalancedTransaction("批量记账一次最多64笔", count=len(postings))
    conn = connections.get("default")
    if not isinstance(conn, TransactionalDBClient):
        raise RuntimeError("post_many runs inside the caller's transaction (in_transaction)")
    checked = [_checked(p) for p in postings]
    if len({p.key for p in checked}) != len(checked):
        raise UnbalancedTransaction("同一批记账中幂等键重复")
    if not is_pg(conn):
        return await _one_by_one(conn, checked)
    plan = _WalletPlan(checked)
    finals = await _move_wallets(conn, plan)
    rows = _rows(checked, plan, finals)
    ids = await _insert_all(conn, checked, rows)
    missing = {i: None for i, p in enumerate(checked) if p.key not in ids}
    if missing:
        raise BatchNotPosted(missing)
    return [Posted(ids[p.key], p.key, True, row[6]) for p, row in zip(checked, rows, strict=True)]


def _checked(p: Posting) -> Posting:
    legs = posting.validate(p.legs)
    check_key(p.key, p.actor)
    return Posting(p.key, TxKind(p.kind), legs, p.memo[:200], p.actor[:100], p.channel,
                   p.allow_arrears, p.require_open)  # fmt: skip


class _WalletPlan:
    """Per wallet: the batch's total move, the lowest running change a checked debit reaches
    (None: no checked debit), whether it must be open; per posting, its wallet moves and the
    running change after it."""

    def __init__(self, postings: Sequence[Posting]) -> None:
        self.total: dict[int, int] = {}
        self.lowest: dict[int, int | None] = {}
        self.need_open: dict[int, bool] = {}
        self.first: dict[int, int] = {}  # wallet → index of its first posting (for errors)
        self.after: list[dict[int, int]] = []  # per posting: wallet → running change after it
        for i, p in enumerate(postings):
            here: dict[int, int] = {}
            for leg in p.legs:
                wid = posting.wallet_id(leg.code)
                if wid is None:
                    continue
                running = self.total.get(wid, 0) + leg.amount_fen
                self.total[wid] = running
                self.first.setdefault(wid, i)
                self.need_open[wid] = self.need_open.get(wid, False) or p.require_open
                low = self.lowest.get(wid)
                if leg.amount_fen < 0 and not p.allow_arrears:
                    low = running if low is None else min(low, running)
                self.lowest[wid] = low
                here[wid] = running
            self.after.append(here)


async def _move_wallets(conn: BaseDBAsyncClient, plan: _WalletPlan) -> dict[int, int]:
    """One UPDATE for every wallet of the batch (in id order); their final balances, or
    `BatchNotPosted` naming the first posting of each wallet that refused."""
    wallets = sorted(plan.total)
    if not wallets:
        return {}
    size = padded(len(wallets))
    params: list[Any] = []
    for wid in wallets:
        params += [wid, plan.total[wid], plan.lowest[wid], plan.need_open[wid]]
    params += [None, 0, None, False] * (size - len(wallets))
    rows = await fetch(conn, _wallets_sql(size), params)
    finals = {int(r["id"]): int(r["balance_fen"]) for r in rows}
    if len(finals) == len(wallets):
        return finals
    refused = [w for w in wallets if w not in finals]
    raise BatchNotPosted({
        plan.first[w]: await refusal(conn, w, plan.lowest[w] or 0, plan.need_open[w])
        for w in refused
    })  # fmt: skip


def _rows(
    postings: Sequence[Posting], plan: _WalletPlan, finals: dict[int, int]
) -> list[list[Any]]:
    """Per posting, the transaction's columns: key, kind, memo, actor, channel, account_id,
    balance_after_fen. Like `post()`, a posting that moves one wallet names it, and its
    balance after is that wallet's balance at this point of the batch."""
    rows = []
    for p, moved in zip(postings, plan.after, strict=True):
        account_id = next(iter(moved)) if len(moved) == 1 else None
        balance = None
        if account_id is not None:
            balance = finals[account_id] - plan.total[account_id] + moved[account_id]
        channel = p.channel.value if p.channel else None
        rows.append([p.key, p.kind.value, p.memo, p.actor, channel, account_id, balance])
    return rows


async def _insert_all(
    conn: BaseDBAsyncClient, postings: Sequence[Posting], rows: Sequence[list[Any]]
) -> dict[str, int]:
    """Chart rows, transactions and legs in one statement; the ids of the transactions
    inserted, by key (a key posted before is missing)."""
    codes = sorted({leg.code for p in postings for leg in p.legs})
    legs = [(p.key, leg.code, leg.amount_fen) for p in postings for leg in p.legs]
    n_codes, n_tx, n_legs = padded(len(codes)), padded(len(rows)), padded(len(legs))
    params: list[Any] = [now(), len(codes)]
    for code in codes:
        spec = posting.spec_of(code)
        params += [spec.code, spec.kind.value, spec.name, spec.account_id]
    params += [None] * (4 * (n_codes - len(codes)))
    for row in rows:
        params += row
    params += [None] * (7 * (n_tx - len(rows)))
    for leg in legs:
        params += leg
    params += [None] * (3 * (n_legs - len(legs)))
    sql = _post_sql(n_codes, n_tx, n_legs)
    for _attempt in range(2):
        result = (await fetch(conn, sql, params))[0]
        if result["found"] == len(codes):
            keys, ids = result["keys"] or [], result["ids"] or []
            inserted = dict(zip(keys, (int(i) for i in ids), strict=True))
            per_key = {p.key: len(p.legs) for p in postings if p.key in inserted}
            if result["legs"] != sum(per_key.values()):
                raise AssertionError("ledger legs missing from a batch post")
            return inserted
        # A ledger account another transaction was creating at this moment (not visible to
        # the statement): wait for it, then once more. Nothing was inserted.
        await ledger_account_ids(conn, codes)
    raise AssertionError("ledger accounts missing after they were created")


async def _one_by_one(conn: BaseDBAsyncClient, postings: Sequence[Posting]) -> list[Posted]:
    """SQLite (one writer at a time, no round trips to save): each posting as `post()`
    writes it, in the caller's transaction, with the same all-or-nothing answer."""
    done: list[Posted] = []
    for i, p in enumerate(postings):
        row = tx_row(p.key, p.kind, p.memo, p.actor, p.channel)
        try:
            done.append(
                await _write(conn, row, p.legs, p.allow_arrears, p.require_open, undo=False)
            )
        except _LostRace:
            raise BatchNotPosted({i: None}) from None
        except LedgerError as exc:
            raise BatchNotPosted({i: exc}) from None
    return done


_WALLETS_SQL: dict[int, str] = {}


def _wallets_sql(size: int) -> str:
    if size not in _WALLETS_SQL:
        rows = typed_params(1, 4, size, ("int", "bigint", "bigint", "bool"))
        values = values_list(rows)
        _WALLETS_SQL[size] = (
            "UPDATE account a SET balance_fen = a.balance_fen + v.delta"
            f" FROM (VALUES {values}) AS v (id, delta, lowest, need_open)"
            " WHERE a.id = v.id AND (NOT v.need_open OR a.status = 'open')"
            " AND (v.lowest IS NULL OR a.balance_fen + v.lowest >= -a.credit_limit_fen)"
            " RETURNING a.id, a.balance_fen"
        )
    return _WALLETS_SQL[size]


_POST_SQL: dict[tuple[int, int, int], str] = {}


def _post_sql(n_codes: int, n_tx: int, n_legs: int) -> str:
    """$1 time, $2 how many codes are real; then code rows (code, kind, name, account id),
    transaction rows (key, kind, memo, actor, channel, account id, balance after), leg rows
    (key, code, amount) — padding rows are NULL. The transactions go in only when every
    code's chart row is there (`found` = $2), as in `post()`."""
    shape = (n_codes, n_tx, n_legs)
    if shape not in _POST_SQL:
        c0 = 3
        t0 = c0 + 4 * n_codes
        l0 = t0 + 7 * n_tx
        codes = typed_params(c0, 4, n_codes, ("text", "text", "text", "int"))
        txs = typed_params(t0, 7, n_tx, ("text", "text", "text", "text", "text", "int", "bigint"))
        legs = typed_params(l0, 3, n_legs, ("text", "text", "bigint"))
        _POST_SQL[shape] = (
            "WITH v (code, kind, name, account_id) AS (VALUES "
            + values_list(codes)
            + "), old AS (SELECT id, code FROM ledger_account WHERE code IN ("
            + ", ".join(r[0] for r in codes)
            + ")), ins AS (INSERT INTO ledger_account (code, kind, name, account_id, created_at)"
            " SELECT code, kind, name, account_id, $1::timestamptz FROM v"
            " WHERE v.code IS NOT NULL AND v.code NOT IN (SELECT code FROM old)"
            " ON CONFLICT (code) DO NOTHING RETURNING id, code),"
            " acc AS (SELECT id, code FROM old UNION ALL SELECT id, code FROM ins),"
            ' t AS (INSERT INTO ledger_transaction ("key", kind, memo, actor, channel,'
            " account_id, balance_after_fen, created_at)"
            " SELECT k, kd, m, a, ch, ac, b, $1::timestamptz FROM (VALUES "
            + values_list(txs, position=True)
            + ") AS x (k, kd, m, a, ch, ac, b, o)"
            " WHERE x.k IS NOT NULL AND (SELECT count(*) FROM acc) = $2::bigint ORDER BY x.o"
            ' ON CONFLICT ("key") DO NOTHING RETURNING id, "key"),'
            " l AS (INSERT INTO ledger_leg (transaction_id, ledger_account_id, amount_fen)"
            " SELECT t.id, acc.id, lv.amount FROM (VALUES "
            + values_list(legs, position=True)
            + ') AS lv (k, code, amount, o) JOIN t ON t."key" = lv.k'
            " JOIN acc ON acc.code = lv.code ORDER BY lv.o RETURNING transaction_id)"
            " SELECT (SELECT count(*) FROM acc) AS found, (SELECT count(*) FROM l) AS legs,"
            " (SELECT array_agg(id ORDER BY id) FROM t) AS ids,"
            ' (SELECT array_agg("key" ORDER BY id) FROM t) AS keys'
        )
    return _POST_SQL[shape]
