"""A wallet's statement, read from the ledger (reads only, writes nothing): what a tenant's
records page shows; and the sites' money in per day, what the admin's dashboard shows.

    entries(account_id, *, before_id, kinds, limit) -> [Entry]        newest first
    usage_days(account_id, *, before_id, before_day, tz, limit) -> [DayTotal]
    money_in_days(site_ids, *, tz, first) -> {day: fen}                 per site, per day
    position_at(account_id, at) -> fen          wallet + receivable (bills owed), before `at`
    movements(account_id, start, end) -> [Movement]     what moved that position, by cause

Usage charges (billing posts one per billed reading, key `usage:<meter>:<time>`: a year of
15-minute readings is 35,000 a meter) are never listed one by one: `usage_days` sums them
per local day in SQL, reading them newest first along the `(account_id, id)` index in
chunks of `CHUNK` until it has the days asked for. Everything else that moves the wallet
(recharges, refunds, adjustments, reversals, fees, money written to a meter) is an `Entry`,
read along the partial index `ledger_transaction_entries_idx` (migration 0015), which holds
only those rows, so paging them never walks the usage charges.

The amount is the wallet leg's (credit-positive: + in, − out); a transaction without a
wallet leg (a refund's settlement) is not on the statement.

`money_in_days` is the sites' side of the books: the money that came in through the payment
channels per local day, read from the legs on the channels' clearing accounts (money the
operator holds), so it counts exactly what moved it — a recharge (online or at the counter)
in, a settled refund (the money left the channel) and a reversed recharge out. A refund hold
or a failed refund's void moves no channel money (it stays with the operator), and charges and
adjustments move none either: they are not income. Only transactions of `MONEY_IN_KINDS` can
carry a clearing leg; the partial index `ledger_transaction_money_in_idx` (migration 0019)
holds just those, by time, so a week of them is read without walking the usage charges, and
their legs are found by transaction: the cost grows with the days shown, not the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.ledger import posting
from server.ledger.posting import LedgerAccountKind, TxKind
from server.ledger.sql import fetch, in_list, is_pg

USAGE_KEY = "usage:%"  # billing's key of a usage charge (server.billing.repository.usage_key)
NOT_USAGE = f"(t.kind <> '{TxKind.CHARGE.value}' OR t.\"key\" NOT LIKE '{USAGE_KEY}')"
IS_USAGE = f"t.kind = '{TxKind.CHARGE.value}' AND t.\"key\" LIKE '{USAGE_KEY}'"
CHUNK = 2000
# The kinds whose legs can touch a channel's clearing account (posting.py: recharge, refund
# settle, and the reversal of a recharge); migration 0019's partial index names the same list.
MONEY_IN_KINDS = (TxKind.RECHARGE, TxKind.REFUND_SETTLE, TxKind.REVERSAL)
_MONEY_IN = "t.kind IN ({})".format(", ".join(f"'{k.value}'" for k in MONEY_IN_KINDS))
# The channels' clearing accounts, a handful of rows. Tested per leg rather than joined: a
# join lets the planner start from these accounts and walk every clearing leg ever posted.
_CLEARING = f"SELECT id FROM ledger_account WHERE kind = '{LedgerAccountKind.CLEARING.value}'"
_WALLET_LEG = (
    "JOIN ledger_leg l ON l.transaction_id = t.id"
    " AND l.ledger_account_id = (SELECT id FROM ledger_account WHERE account_id = $1)"
)


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    kind: TxKind
    key: str
    memo: str
    channel: str | None
    at: datetime
    amount_fen: int


@dataclass(frozen=True, slots=True)
class DayTotal:
    """The usage charges of one local day: their sum, count and newest transaction."""

    day: date
    amount_fen: int
    count: int
    last_id: int
    last_at: datetime


async def entries(
    account_id: int,
    *,
    before_id: int | None = None,
    kinds: Sequence[TxKind] | None = None,
    key_like: str | None = None,
    key_not_like: str | None = None,
    limit: int = 20,
) -> list[Entry]:
    """The wallet's transactions other than usage charges, newest first: those below
    `before_id`, of `kinds` (all by default), with a key matching `key_like` and not
    matching `key_not_like` when they are given."""
    conn = connections.get("default")
    where, params = [f"t.account_id = $1 AND {NOT_USAGE}"], [account_id]
    if before_id is not None:
        params.append(before_id)
        where.append(f"t.id < ${len(params)}")
    if kinds:
        clause, values = in_list(conn, "t.kind", [k.value for k in kinds], len(params) + 1, "text")
        where.append(clause)
        params.extend(values)
    if key_like is not None:
        params.append(key_like)
        where.append(f't."key" LIKE ${len(params)}')
    if key_not_like is not None:
        params.append(key_not_like)
        where.append(f't."key" NOT LIKE ${len(params)}')
    params.append(limit)
    rows = await fetch(
        conn,
        'SELECT t.id, t.kind, t."key", t.memo, t.channel, t.created_at, l.amount_fen'
        f" FROM ledger_transaction t {_WALLET_LEG} WHERE {' AND '.join(where)}"
        f" ORDER BY t.id DESC LIMIT ${len(params)}",
        params,
    )
    return [
        Entry(r["id"], TxKind(r["kind"]), r["key"], r["memo"], r["channel"],
              _datetime(r["created_at"]), int(r["amount_fen"]))
        for r in rows
    ]  # fmt: skip


async def usage_days(
    account_id: int,
    *,
    tz: ZoneInfo,
    before_id: int | None = None,
    before_day: date | None = None,
    limit: int = 20,
    chunk: int = CHUNK,
) -> list[DayTotal]:
    """Up to `limit` days of usage charges, newest first, each summed over all its charges:
    charges below `before_id` on days before `before_day` (each bound optional)."""
    conn = connections.get("default")
    days: dict[date, list[Any]] = {}  # day -> [sum, count, last id, last at]
    below, exhausted = before_id, False
    while not exhausted and len(days) <= limit:  # the oldest day may still be partial
        rows = await _usage_chunk(conn, account_id, below, before_day, tz, chunk)
        exhausted = sum(int(r["n"]) for r in rows) < chunk
        for r in rows:
            day = _day(r["day"])
            have = days.setdefault(day, [0, 0, int(r["last_id"]), _datetime(r["last_at"])])
            have[0] += int(r["amount_fen"])
            have[1] += int(r["n"])
        if rows:
            below = min(int(r["first_id"]) for r in rows)
    ordered = sorted(days.items(), key=lambda item: item[1][2], reverse=True)
    return [DayTotal(d, s, n, last, at) for d, (s, n, last, at) in ordered[:limit]]


async def _usage_chunk(
    conn: BaseDBAsyncClient,
    account_id: int,
    before_id: int | None,
    before_day: date | None,
    tz: ZoneInfo,
    chunk: int,
) -> list[dict[str, Any]]:
    """The next `chunk` usage charges below `before_id`, summed per local day."""
    day = _local_day(conn, tz)
    where, params = [f"t.account_id = $1 AND {IS_USAGE}"], [account_id]
    if before_id is not None:
        params.append(before_id)
        where.append(f"t.id < ${len(params)}")
    if before_day is not None:
        params.append(before_day if is_pg(conn) else before_day.isoformat())
        where.append(f"{day} < ${len(params)}")
    params.append(chunk)
    return await fetch(
        conn,
        "SELECT day, SUM(amount_fen) AS amount_fen, COUNT(*) AS n, MAX(id) AS last_id,"
        " MIN(id) AS first_id, MAX(created_at) AS last_at FROM ("
        f"  SELECT t.id, t.created_at, {day} AS day, l.amount_fen"
        f"  FROM ledger_transaction t {_WALLET_LEG} WHERE {' AND '.join(where)}"
        f"  ORDER BY t.id DESC LIMIT ${len(params)}"
        ") c GROUP BY day",
        params,
    )


async def money_in_days(site_ids: Sequence[int], *, tz: ZoneInfo, first: date) -> dict[date, int]:
    """Money in through the channels (see the module docstring) of the accounts of these
    sites, per local day in `tz` from `first` on, in fen (a day without any of those
    transactions is absent)."""
    if not site_ids:
        return {}
    conn = connections.get("default")
    day = _local_day(conn, tz)
    since = datetime.combine(first, time(), tz).astimezone(UTC)  # UTC: SQLite compares text
    sites, params = in_list(conn, "a.site_id", list(site_ids), 2, "int")
    rows = await fetch(
        conn,
        f"SELECT {day} AS day, -SUM(CASE WHEN l.ledger_account_id IN ({_CLEARING})"
        " THEN l.amount_fen ELSE 0 END) AS amount_fen FROM ledger_transaction t"
        " JOIN account a ON a.id = t.account_id JOIN ledger_leg l ON l.transaction_id = t.id"
        f" WHERE {_MONEY_IN} AND t.created_at >= $1 AND {sites} GROUP BY day",
        [since, *params],
    )
    return {_day(r["day"]): int(r["amount_fen"]) for r in rows}


def _local_day(conn: BaseDBAsyncClient, tz: ZoneInfo) -> str:
    """SQL for a transaction's local calendar day in `tz`. SQLite has no time zones: the
    zone's current offset (the platform's zones keep one all year, e.g. Asia/Shanghai)."""
    if is_pg(conn):
        return f"(t.created_at AT TIME ZONE '{tz.key}')::date"
    offset = datetime.now(tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    return f"date(t.created_at, '{minutes:+d} minutes')"


def _day(value: Any) -> date:
    """asyncpg gives dates; SQLite text."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def _datetime(value: Any) -> datetime:
    """asyncpg gives datetimes; SQLite the text stored (UTC)."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo("UTC"))


@dataclass(frozen=True, slots=True)
class Movement:
    """What one transaction did to a tenant's position (wallet + receivable), seen from the
    other side: each leg on an account that is not the tenant's own, negated."""

    transaction_id: int
    kind: TxKind
    key: str
    counter_code: str  # the other side's account ("revenue:rent", "clearing:cash", …)
    amount_fen: int  # + raised the tenant's position, − lowered it


async def position_at(account_id: int, at: datetime) -> int:
    """The tenant's position (wallet + receivable, credit-positive) just before `at`."""
    conn = connections.get("default")
    codes = [posting.wallet(account_id), posting.receivable(account_id)]
    where, params = in_list(conn, "a.code", codes, 2, "text")
    rows = await fetch(
        conn,
        "SELECT COALESCE(SUM(l.amount_fen), 0) AS s FROM ledger_leg l"
        " JOIN ledger_account a ON a.id = l.ledger_account_id"
        " JOIN ledger_transaction t ON t.id = l.transaction_id"
        f" WHERE t.created_at < $1 AND {where}",
        [at.astimezone(UTC), *params],
    )
    return int(rows[0]["s"])


async def movements(account_id: int, start: datetime, end: datetime) -> list[Movement]:
    """Every transaction in [start, end) that touched the tenant's wallet or receivable, as
    movements of its position: they sum to `position_at(end) − position_at(start)`."""
    conn = connections.get("default")
    own = {posting.wallet(account_id), posting.receivable(account_id)}
    where, params = in_list(conn, "oa.code", sorted(own), 3, "text")
    rows = await fetch(
        conn,
        'SELECT t.id, t.kind, t."key", a.code, l.amount_fen FROM ledger_transaction t'
        " JOIN ledger_leg l ON l.transaction_id = t.id"
        " JOIN ledger_account a ON a.id = l.ledger_account_id"
        " WHERE t.created_at >= $1 AND t.created_at < $2 AND t.id IN (SELECT ol.transaction_id"
        " FROM ledger_leg ol JOIN ledger_account oa ON oa.id = ol.ledger_account_id"
        f" WHERE {where}) ORDER BY t.id, l.id",
        [start.astimezone(UTC), end.astimezone(UTC), *params],
    )
    return [
        Movement(int(r["id"]), TxKind(r["kind"]), r["key"], r["code"], -int(r["amount_fen"]))
        for r in rows
        if r["code"] not in own
    ]
