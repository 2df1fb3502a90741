"""Usage billing's database reads and writes, one statement per table per batch.

Used by service.py only. Every query takes the whole batch: `= ANY($n)` arrays on PostgreSQL
(one round trip each; the usage rows by binary COPY), chunked lists on SQLite. Money is not
written here: the charges and billing's state columns on the account row go through the
ledger's batch form (`server.ledger.post_batch`), which writes them in one UPDATE per account;
billing owns what those columns mean (`STATE_COLUMNS`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient

from server.billing.round import Bill
from server.billing.usage import BillingState
from server.ledger import RowColumns, post_batch, posting
from server.ledger.posting import ChargeType, Posting, TxKind
from server.ledger.sql import Col, copy_rows, fetch_records, in_list, insert_rows, is_pg, now
from server.metering.models import MeterBilling
from server.tariffs.models import TariffKind
from server.tariffs.pricing import PriceLine

ZERO = Decimal(0)


class MeterInfo(NamedTuple):
    """What billing needs of a meter (a named tuple: thousands per round)."""

    id: int
    account_id: int | None
    kind: str  # "electricity" / "water": also the tariff kind and the revenue charge type
    multiplier: Decimal
    platform: bool  # 平台计费


_multiplier = functools.lru_cache(maxsize=256)(Decimal)  # CT × PT: a few values per park


def usage_key(meter_id: int, reading_at: datetime) -> str:
    """The ledger idempotency key of one billed reading."""
    return f"usage:{meter_id}:{_utc_iso(reading_at)}"


@functools.lru_cache(maxsize=1024)  # a round's readings share a few instants: format each once
def _utc_iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


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
        r["id"]: MeterInfo(
            r["id"],
            r["account_id"],
            r["kind"],
            _multiplier(r["ct_ratio"] * r["pt_ratio"]),
            r["billing"] == platform,
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
            states[(account_id, kind)] = BillingState(
                Decimal(row[carry]), as_datetime(row[start]) if row[start] else None,
                Decimal(row[cumulative]),
            )  # fmt: skip
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


def lines_json(lines: Sequence[PriceLine]) -> str:
    """A bill's lines as stored, `[[label, quantity, unit price, amount], …]`: the text
    `json.dumps(…, ensure_ascii=False, separators=(",", ":"))` gives, built directly (a few
    labels repeat across thousands of rows; a Decimal's text never needs escaping; `!s`: str()
    is a third of the cost of the format() a bare f-string field calls)."""
    if len(lines) == 1:  # most bills: one band, or a flat price
        (ln,) = lines
        return f'[[{_label_json(ln.label)},"{ln.quantity!s}","{ln.unit_price!s}","{ln.amount!s}"]]'
    parts = [
        f'[{_label_json(ln.label)},"{ln.quantity!s}","{ln.unit_price!s}","{ln.amount!s}"]'
        for ln in lines
    ]
    return f"[{','.join(parts)}]"


Charged = tuple[int, Any, MeterInfo, Bill]  # (index, ReadingToBill, meter, charge)


async def write_charges(
    conn: BaseDBAsyncClient,
    charged: Sequence[Charged],
    states: Mapping[Hashable, BillingState],
    actor: str,
) -> list[tuple[int | None, int | None]]:
    """Post the charges and save the new billing states through the ledger's batch (one
    UPDATE per account for both), then record the usage rows; per charge (transaction id,
    wallet balance after) — (None, balance now) for a charge that rounded to 0 fen. `states`:
    billing's state after the batch per (account, utility), for at least every (account,
    utility) charged."""
    if not charged:
        return []
    totals: dict[int, int] = {}
    billed: dict[str, dict[int, BillingState]] = {}  # per utility: account → its new state
    postings: list[Posting] = []
    charge = TxKind.CHARGE
    for _, it, m, bill in charged:
        account: int = m.account_id  # type: ignore[assignment]
        kind = m.kind
        billed.setdefault(kind, {})[account] = states[(account, kind)]
        fen = bill.deduct_fen
        totals[account] = totals.get(account, 0) + fen
        if fen:  # arrears allowed: consumption already used is never lost
            legs = posting.charge_legs(account, _CHARGE_TYPES[kind], fen)
            memo = f"{'电' if kind == 'electricity' else '水'}费 {bill.quantity!s}"
            key = usage_key(it.meter_id, it.curr.taken_at)
            postings.append(Posting(key, charge, legs, memo, actor, None, True))
    written = await post_batch(postings, columns=_state_columns(billed))
    # From each wallet's balance before the batch, charge by charge: the balance after each.
    running = {account: written.balances[account] + total for account, total in totals.items()}
    posted = iter(written.transaction_ids)
    tx_ids: list[int | None] = []
    after: list[int] = []
    for _, _, m, bill in charged:
        after.append(running[m.account_id] - bill.deduct_fen)  # type: ignore[index]
        running[m.account_id] = after[-1]  # type: ignore[index]
        tx_ids.append(next(posted) if bill.deduct_fen else None)
    await _insert_usage(conn, charged, tx_ids)
    return list(zip(tx_ids, after, strict=True))


_CHARGE_TYPES = {kind.value: ChargeType(kind.value) for kind in TariffKind}


def _state_columns(billed: Mapping[str, Mapping[int, BillingState]]) -> RowColumns:
    """Billing's state columns per utility billed, for the ledger to set on each account row
    in the wallet's UPDATE (a utility not billed on an account keeps its state there)."""
    kinds = sorted(billed)
    groups = tuple(
        (Col(carry, "text"), Col(start, "timestamptz"), Col(cumulative, "text"))
        for carry, start, cumulative in (STATE_COLUMNS[kind] for kind in kinds)
    )
    values = tuple(
        {
            a: (str(s.carry_fen), s.tier_period_start, str(s.cumulative))
            for a, s in billed[k].items()
        }
        for k in kinds
    )
    return RowColumns(groups, values)


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
