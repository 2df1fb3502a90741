"""Usage billing service: meter readings in, wallet debits out — in batches.

`bill_readings` is what the collector calls once per round with every (prev, curr) reading
pair it read. Per batch, in one database transaction:

1. lock the accounts involved (`SELECT … FOR UPDATE`, ordered by id) and read their
   BillingState from the same rows, so two batches that share an account serialise and the
   carry/tier state cannot be read stale;
2. read back which (meter, reading_at) pairs are already billed (UNIQUE on usage_charge: a
   repeated reading is a no-op that returns the first result) and the accounts' tariffs —
   one query each for the whole batch;
3. price with the pure `bill_round` (server.billing.round: `bill_usage`'s steps per pair),
   threading each account's state (carry in [0, 1) fen, tier use) through its readings in
   order;
4. write with one statement per table: the charges go to the ledger's batch form
   (`server.ledger.post_batch`: one ledger transaction per charge, key `repository.usage_key`,
   wallet − / revenue +, in arrears if need be: consumption already used is never lost) with
   the new states as columns of the same account rows (one `UPDATE account` for wallet and
   state), then the usage_charge rows (binary COPY on PostgreSQL), in the same transaction.

A reading that cannot be billed (meter unknown or not on an account, no tariff, closed
account, register backwards…) gets a REFUSED outcome with its typed error and writes nothing;
the rest of the batch goes ahead. Sub-fen charges move only the carry (no ledger transaction).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.billing import repository as repo
from server.billing.repository import MeterInfo as _Meter
from server.billing.round import Bill, bill_round
from server.billing.usage import BillingRequest, BillingState
from server.core.errors import NotFound, ShuidianError
from server.ledger.errors import AccountClosed
from server.metering.reading import Reading
from server.tariffs.calendar import HolidayRule
from server.tariffs.plans import PlanVersion, Tariff
from server.tariffs.schemas import to_plan
from server.tariffs.service import TariffNotAssigned

ZERO = Decimal(0)


class BillStatus(StrEnum):
    BILLED = "billed"  # charged now (possibly 0 fen: only the carry moved)
    DUPLICATE = "duplicate"  # this reading was billed before; the first result is returned
    REFUSED = "refused"  # not billed; `error` says why (held for review by the caller)
    NOT_PLATFORM = "not_platform"  # the meter bills itself (表端计费): nothing to do here


@dataclass(frozen=True, slots=True)
class ReadingToBill:
    """One meter's previous and current reading (register values before the multiplier)."""

    meter_id: int
    prev: Reading
    curr: Reading
    register_max: Decimal | None = None


class BillOutcome(NamedTuple):
    """What became of one reading pair. (A named tuple: one per reading of every round.)"""

    meter_id: int
    reading_at: datetime
    status: BillStatus
    account_id: int | None = None
    amount_fen: int = 0
    transaction_id: int | None = None
    balance_after_fen: int | None = None  # wallet after this charge (for relay decisions)
    error: ShuidianError | None = None


# Made from a ready tuple by tuple.__new__: half the cost of calling the class, per reading.
_new_outcome = partial(tuple.__new__, BillOutcome)


@dataclass(slots=True)
class _Context:
    meters: dict[int, _Meter]
    open_accounts: set[int]
    billed: dict[tuple[int, datetime], Mapping[str, Any]]
    states: dict[tuple[int, str], BillingState]
    tariffs: dict[tuple[int, str], Tariff]


async def bill_readings(
    items: Sequence[ReadingToBill],
    *,
    actor: str = "system:collector",
    is_holiday: HolidayRule = None,
) -> list[BillOutcome]:
    """Bill a batch of reading pairs; `result[i]` answers `items[i]` (see module docstring).
    Pairs of one meter must come in reading order."""
    if not items:
        return []
    outcomes: list[BillOutcome | None] = [None] * len(items)
    with _cyclic_gc_paused():
        async with in_transaction() as conn:
            ctx = await _load(conn, items)
            todo = _triage(items, ctx, outcomes)
            requests = [
                BillingRequest(
                    account=(m.account_id, m.kind),
                    prev=it.prev,
                    curr=it.curr,
                    tariff=ctx.tariffs[(m.account_id, m.kind)],
                    multiplier=m.multiplier,
                    register_max=it.register_max,
                )
                for _, it, m in todo
            ]
            results, states = bill_round(requests, ctx.states, is_holiday=is_holiday)
            charged: list[repo.Charged] = []
            for (i, it, m), result in zip(todo, results, strict=True):
                if isinstance(result, Bill):
                    charged.append((i, it, m, result))
                else:
                    outcomes[i] = _refused(it, m.account_id, result)
            written = await repo.write_charges(conn, charged, states, actor)
            billed = BillStatus.BILLED
            for (i, it, m, bill), (tx_id, balance) in zip(charged, written, strict=True):
                outcomes[i] = _new_outcome(
                    (it.meter_id, it.curr.taken_at, billed, m.account_id, bill.deduct_fen, tx_id,
                     balance, None)
                )  # fmt: skip
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


_paused = 0  # batches in flight under `_cyclic_gc_paused` (they interleave on one loop)
_was_enabled = False  # whether the cyclic GC ran before the first of them paused it


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is billed; as it was once the last batch in
    flight is done.

    A batch builds tens of thousands of objects (requests, bills, postings, rows) that all
    live until its end and are then freed by their reference counts: billing makes no cycles.
    The collector would walk them many times over as they age through its generations — ~4 µs
    per reading, a seventh of billing's own Python — to find nothing. Batches interleave on
    one event loop (two in flight, and the collector's other tasks), so the pause is counted:
    the first batch in pauses it, the last out restores what the first found. Cycles that
    other tasks make meanwhile wait for the next collection, a batch's time at most."""
    global _paused, _was_enabled
    if _paused == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0 and _was_enabled:
            gc.enable()


def _triage(
    items: Sequence[ReadingToBill], ctx: _Context, outcomes: list[BillOutcome | None]
) -> list[tuple[int, ReadingToBill, _Meter]]:
    """Decide per item: duplicate, refused, not ours, or to be priced."""
    todo = []
    seen: set[tuple[int, datetime]] = set()
    utc: dict[datetime, datetime] = {}  # a round's readings share a few instants
    for i, it in enumerate(items):
        at = it.curr.taken_at
        m = ctx.meters.get(it.meter_id)
        at_utc = utc.get(at)
        if at_utc is None:
            at_utc = utc[at] = at.astimezone(UTC)
        pair = (it.meter_id, at_utc)
        if (ctx.billed and pair in ctx.billed) or pair in seen:  # usually none billed before
            first = ctx.billed.get(pair, {})
            outcomes[i] = BillOutcome(
                it.meter_id, at, BillStatus.DUPLICATE, m.account_id if m else None,
                int(first.get("amount_fen") or 0), first.get("transaction_id"),
                first.get("balance_after_fen"),
            )  # fmt: skip
        elif m is None or m.account_id is None:
            outcomes[i] = _refused(
                it, None, NotFound("电表不存在或未绑定账户", meter_id=it.meter_id)
            )
        elif not m.platform:
            outcomes[i] = BillOutcome(it.meter_id, at, BillStatus.NOT_PLATFORM, m.account_id)
        elif m.account_id not in ctx.open_accounts:
            outcomes[i] = _refused(it, m.account_id, AccountClosed("账户已销户，不能扣费"))
        elif (m.account_id, m.kind) not in ctx.tariffs:
            error = TariffNotAssigned("账户未设置价格方案", account_id=m.account_id, kind=m.kind)
            outcomes[i] = _refused(it, m.account_id, error)
        else:
            todo.append((i, it, m))
        seen.add(pair)
    return todo


def _refused(it: ReadingToBill, account_id: int | None, error: ShuidianError) -> BillOutcome:
    return BillOutcome(it.meter_id, it.curr.taken_at, BillStatus.REFUSED, account_id, error=error)


async def _load(conn: BaseDBAsyncClient, items: Sequence[ReadingToBill]) -> _Context:
    meters = await repo.fetch_meters(conn, sorted({it.meter_id for it in items}))
    account_ids = sorted({m.account_id for m in meters.values() if m.account_id is not None})
    kinds = {(m.account_id, m.kind) for m in meters.values() if m.account_id is not None}
    locked = await repo.lock_accounts(conn, account_ids, kinds)
    since = min(it.curr.taken_at for it in items) - timedelta(seconds=1)
    billed = await repo.fetch_billed(conn, sorted(meters), since)
    tariffs = await _tariffs(conn, account_ids)
    return _Context(meters, locked.open, billed, locked.states, tariffs)


async def _tariffs(
    conn: BaseDBAsyncClient, account_ids: list[int]
) -> dict[tuple[int, str], Tariff]:
    assigned, versions = await repo.fetch_tariff_rows(conn, account_ids)
    by_plan: dict[int, list[PlanVersion]] = {}
    for row in versions:
        spec = json.loads(row["spec"]) if isinstance(row["spec"], str) else row["spec"]
        at = repo.as_datetime(row["effective_from"])
        by_plan.setdefault(row["plan_id"], []).append(PlanVersion(at, to_plan(spec)))
    plans = {pid: Tariff(tuple(vs)) for pid, vs in by_plan.items()}
    return {
        (row["account_id"], row["kind"]): plans[row["plan_id"]]
        for row in assigned
        if row["plan_id"] in plans
    }
