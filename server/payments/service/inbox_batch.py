"""Group commit of payment notifications (PostgreSQL).

One notification in one transaction costs six round trips to the database, and under a
burst those round trips are most of a web worker's CPU. The worker's `InboxBatcher` hands
the payment notifications that arrive while a batch is being written to the next batch; a
batch is one transaction of the same few statements, whatever its size:

    BEGIN
    every raw event stored (UNIQUE (channel, external_id)), every order locked   one statement
    wallets; transactions + chart rows; legs (`ledger.post_batch`)              three statements
    orders paid + follow-up markers + events handled                             one statement
    operation-log rows of the credits (`audit.record_many`: chain lock, head, insert)
    COMMIT

Nothing waits for a batch to fill: the first notification after a quiet moment goes at once
(a batch of one); a batch only takes what queued up while the previous one was written.

The batch writes the common case: a new event whose order is ours, in that channel, unpaid,
not held, for the notified amount. Anything else in it — a copy of an event stored before,
an unknown order, a wrong amount, an order paid or held — is handled in the same transaction
by the code that handles one notification (`inbox_store.handle_event`). Copies of one event within a
batch: the first is handled, the others answer "already done", as they would once the first
committed. If the batch cannot commit whole (a wallet refuses because the account was closed
since the order, a key posted before, a deadlock, any error), it is rolled back and every
notification in it is handled on its own by `handle_verified`, as without a batcher: a
batch changes how many round trips a credit costs, never what is credited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.audit.service import Entry, record_many
from server.ledger import BatchNotPosted, post_batch
from server.ledger.posting import Channel as LedgerChannel
from server.ledger.posting import recharge_posting
from server.ledger.sql import fetch, is_pg, padded, typed_params, values_list
from server.payments.models import EventOutcome, OrderStatus
from server.payments.providers.base import VerifiedNotification
from server.payments.service.inbox_store import (
    NotifyResult,
    event_params,
    existing_event,
    handle_event,
    handle_verified,
    inbox_key,
    is_paid,
    paid_time,
)
from server.payments.service.orders import CHANNEL_NAMES, PaidFact, credit_entry, credit_key

log = logging.getLogger(__name__)

ACTOR = "system:pay-notify"
MAX_BATCH = 64  # notifications per batch: the most a burst gathers while one batch is written
_DONE = NotifyResult(EventOutcome.ALREADY_DONE)


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified notification waiting to be stored and handled."""

    verified: VerifiedNotification
    headers: Mapping[str, str]
    body: bytes
    now: datetime


class InboxBatcher:
    """One per web worker: gathers verified payment notifications into batches. `lanes`
    batches are written at once (each on its own connection)."""

    def __init__(self, *, max_batch: int = MAX_BATCH, lanes: int = 2) -> None:
        self.max_batch = max_batch
        self.lanes = lanes
        self._queue: list[tuple[Notification, asyncio.Future[NotifyResult]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def takes(self, verified: VerifiedNotification) -> bool:
        """Payments on PostgreSQL; refunds, other statuses and SQLite go one at a time."""
        return is_paid(verified) and is_pg(connections.get("default"))

    async def handle(
        self,
        verified: VerifiedNotification,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> NotifyResult:
        done: asyncio.Future[NotifyResult] = asyncio.get_running_loop().create_future()
        self._queue.append((Notification(verified, headers, body, now), done))
        if self._running < self.lanes:
            self._running += 1
            task = asyncio.create_task(self._lane())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A request given up on (the platform hung up) does not take its batch down with it.
        return await asyncio.shield(done)

    async def stop(self) -> None:
        """Wait until everything queued is written (the server stops taking requests first)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _lane(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await _run([n for n, _ in batch], [f for _, f in batch])
        finally:
            self._running -= 1  # no await between the empty queue and here


async def _run(batch: list[Notification], futures: list[asyncio.Future[NotifyResult]]) -> None:
    try:
        results = await handle_batch(batch)
    except Exception as exc:
        if isinstance(exc, BatchNotPosted):
            log.info("notification batch of %d not posted whole; one by one", len(batch))
        else:
            log.warning("notification batch of %d failed; one by one", len(batch), exc_info=True)
        for n, future in zip(batch, futures, strict=True):
            try:
                result = await handle_verified(n.verified, n.headers, n.body, n.now)
            except Exception as one:
                if not future.done():
                    future.set_exception(one)
                continue
            if not future.done():
                future.set_result(result)
        return
    for future, result in zip(futures, results, strict=True):
        if not future.done():
            future.set_result(result)


async def handle_batch(batch: Sequence[Notification]) -> list[NotifyResult]:
    """Store and handle verified payment notifications in one transaction (PostgreSQL);
    `result[i]` answers `batch[i]`. Raises when the batch cannot commit whole (nothing is
    written then): the caller handles them one by one."""
    results: list[NotifyResult | None] = [None] * len(batch)
    first: dict[tuple[str, str], int] = {}
    for i, n in enumerate(batch):
        slot = (n.verified.channel.value, inbox_key(n.verified))
        if slot in first:
            results[i] = _DONE  # a copy: the first one is handled below
        else:
            first[slot] = i
    primaries = [first[slot] for slot in sorted(first)]  # one lock order for every batch
    async with in_transaction() as conn:
        stored = await _store_locking_orders(conn, [batch[i] for i in primaries])
        common: list[tuple[int, int, Mapping[str, Any]]] = []
        other: list[tuple[int, int | None, Mapping[str, Any] | None]] = []
        orders_taken: set[int] = set()
        for i, (event_id, order) in zip(primaries, stored, strict=True):
            if event_id is not None and _is_common(batch[i].verified, order, orders_taken):
                assert order is not None
                orders_taken.add(int(order["id"]))
                common.append((i, event_id, order))
            else:
                other.append((i, event_id, order))
        if common:
            keys = await _credit(conn, batch, common)
            for (i, _, _), key in zip(common, keys, strict=True):
                results[i] = NotifyResult(EventOutcome.CREDITED, (key,))
        for i, event_id, order in other:
            results[i] = await _handle_other(conn, batch[i], event_id, order)
        if common:  # last: the operation log's chain lock is held only until the commit
            await record_many(_credit_entries(batch, common), conn=conn)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _credit_entries(
    batch: Sequence[Notification], common: Sequence[tuple[int, int, Mapping[str, Any]]]
) -> list[Entry]:
    """The operation-log rows of the batch's credits (written with one insert)."""
    entries = []
    for i, _, order in common:
        n = batch[i]
        v = n.verified
        fact = PaidFact(v.channel, v.out_trade_no, v.amount_fen, v.transaction_id, None, "notify")
        key = credit_key(v.channel, v.out_trade_no)
        entries.append(
            credit_entry(fact, int(order["account_id"]), int(order["amount_fen"]), key, n.now)
        )
    return entries


def _is_common(v: VerifiedNotification, order: Mapping[str, Any] | None, taken: set[int]) -> bool:
    return (
        order is not None
        and order["channel"] == v.channel.value
        and order["status"] not in (OrderStatus.PAID.value, OrderStatus.HELD.value)
        and order["amount_fen"] == v.amount_fen
        and int(order["id"]) not in taken
    )


async def _handle_other(
    conn: BaseDBAsyncClient,
    n: Notification,
    event_id: int | None,
    order: Mapping[str, Any] | None,
) -> NotifyResult:
    """What `inbox._store_and_handle` does after storing, for one notification."""
    if event_id is None:
        event_id, handled = await existing_event(conn, n.verified)
        if handled:
            return _DONE
    return await handle_event(conn, event_id, n.verified, n.now, dict(order) if order else None)


async def _credit(
    conn: BaseDBAsyncClient,
    batch: Sequence[Notification],
    common: Sequence[tuple[int, int, Mapping[str, Any]]],
) -> list[str]:
    """Post the credits (all or nothing), then mark the orders paid, the events handled and
    the follow-ups due, in one statement. Returns the credit keys."""
    keys = [credit_key(batch[i].verified.channel, batch[i].verified.out_trade_no)
            for i, _, _ in common]  # fmt: skip
    postings = []
    for (i, _, order), key in zip(common, keys, strict=True):
        v = batch[i].verified
        postings.append(recharge_posting(
            int(order["account_id"]), LedgerChannel(v.channel.value), int(order["amount_fen"]),
            key=key, actor=ACTOR, memo=f"{CHANNEL_NAMES[v.channel]}充值 {v.out_trade_no}",
        ))  # fmt: skip
    await post_batch(postings)
    size = padded(len(common))
    params: list[Any] = []
    for (i, event_id, order), key in zip(common, keys, strict=True):
        n = batch[i]
        params += [int(order["id"]), n.verified.transaction_id[:64],
                   paid_time(n.verified) or n.now, n.now, key, int(order["account_id"]),
                   event_id]  # fmt: skip
    params += [None] * (7 * (size - len(common)))
    await conn.execute_query(_paid_sql(size), params)
    return keys


async def _store_locking_orders(
    conn: BaseDBAsyncClient, batch: Sequence[Notification]
) -> list[tuple[int | None, Mapping[str, Any] | None]]:
    """One statement: insert each raw event once and lock each order (`FOR UPDATE`, in id
    order). Per notification: the new event's id (None: stored before) and its order row
    (None: no such order)."""
    size = padded(len(batch))
    params: list[Any] = []
    for n in batch:
        params += event_params(n.verified, n.headers, n.body, n.now)
        params.append(n.verified.out_trade_no)
    params += [None] * (9 * (size - len(batch)))
    rows = await fetch(conn, _store_sql(size), params)
    found: list[tuple[int | None, Mapping[str, Any] | None]] = []
    for row in rows[: len(batch)]:
        event_id = row["event_id"]
        order = row if row["id"] is not None else None
        found.append((int(event_id) if event_id is not None else None, order))
    return found


_STORE_SQL: dict[int, str] = {}
_PAID_SQL: dict[int, str] = {}
_EVENT_CASTS = ("text", "text", "text", "text", "jsonb", "text", "bool", "timestamptz", "text")


def _store_sql(size: int) -> str:
    if size not in _STORE_SQL:
        trades = ", ".join(f"${r * 9 + 9}" for r in range(size))
        _STORE_SQL[size] = (
            f"WITH x (ch, ext, kind, nid, headers, body, verified, received, trade, o) AS"
            f" (VALUES {values_list(typed_params(1, 9, size, _EVENT_CASTS), position=True)}),"
            " ev AS (INSERT INTO payment_event (channel, external_id, kind, notification_id,"
            " headers, body, verified, received_at, outcome)"
            " SELECT ch, ext, kind, nid, headers, body, verified, received, '' FROM x"
            " WHERE ch IS NOT NULL ORDER BY o"
            " ON CONFLICT (channel, external_id) DO NOTHING RETURNING id, channel, external_id),"
            " od AS (SELECT id, account_id, channel, amount_fen, status, out_trade_no"
            f" FROM recharge_order WHERE out_trade_no IN ({trades}) ORDER BY id FOR UPDATE)"
            " SELECT x.o, ev.id AS event_id, od.id, od.account_id, od.channel, od.amount_fen,"
            " od.status FROM x LEFT JOIN ev ON ev.channel = x.ch AND ev.external_id = x.ext"
            " LEFT JOIN od ON od.out_trade_no = x.trade WHERE x.ch IS NOT NULL ORDER BY x.o"
        )
    return _STORE_SQL[size]


def _paid_sql(size: int) -> str:
    if size not in _PAID_SQL:
        casts = ("bigint", "text", "timestamptz", "timestamptz", "text", "int", "bigint")
        _PAID_SQL[size] = (
            f"WITH x (order_id, txn, paid_at, now, key, account_id, event_id, o) AS"
            f" (VALUES {values_list(typed_params(1, 7, size, casts), position=True)}),"
            f" od AS (UPDATE recharge_order r SET status = '{OrderStatus.PAID.value}',"
            " transaction_id = x.txn, paid_at = x.paid_at, credited_by = 'notify',"
            " updated_at = x.now FROM x WHERE r.id = x.order_id),"
            " ev AS (UPDATE payment_event p SET handled_at = x.now,"
            f" outcome = '{EventOutcome.CREDITED.value}'"
            " FROM x WHERE p.id = x.event_id AND p.handled_at IS NULL)"
            " INSERT INTO payment_followup (credit_key, account_id, reason, attempts,"
            " last_error, created_at)"
            " SELECT x.key, x.account_id, 'recharge', 0, '', x.now FROM x"
            " WHERE x.key IS NOT NULL ORDER BY x.o"
        )
    return _PAID_SQL[size]
