"""Bills (账单通知) and arrears reminders (欠费催缴): the entry points a billing context calls in
its own transaction. Property billing (monthly bills with due dates) does not exist yet: these
are ready for it, with their templates (templates.py `bill.issued`, `arrears.reminder`);
nothing in the code base calls them today.

    await bills_issued(conn, [BillNotice(account_id, "2026年11月", 12_345, due, bill_id)], now=now)
    await arrears_due(conn, [ArrearsNotice(account_id, 12_345, days=7)], now=now)

A bill is announced once (its id is the event key); an arrears reminder at most once per
account per day (its key names the day) and within the de-duplication interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from server.core.money import yuan
from server.notify.service.outbox import Event, enqueue


@dataclass(frozen=True, slots=True)
class BillNotice:
    account_id: int
    period: str  # as the tenant reads it: "2026年11月"
    amount_fen: int
    due: date
    bill_id: int | str


@dataclass(frozen=True, slots=True)
class ArrearsNotice:
    account_id: int
    owed_fen: int  # positive: what the tenant owes
    days: int  # how long in arrears


async def bills_issued(
    conn: BaseDBAsyncClient, bills: Sequence[BillNotice], *, now: datetime
) -> int:
    """Queue 账单通知 for each bill on `conn`; returns how many messages were queued."""
    events = [
        Event(
            b.account_id,
            "bill.issued",
            f"bill:{b.bill_id}",
            f"bill:{b.bill_id}",
            {"period": b.period, "amount": str(yuan(b.amount_fen)), "due": b.due.isoformat()},
            limited=False,
        )
        for b in bills
    ]
    return await enqueue(conn, events, now=now)


async def arrears_due(
    conn: BaseDBAsyncClient, notices: Sequence[ArrearsNotice], *, now: datetime
) -> int:
    """Queue 欠费催缴 for each account on `conn`; returns how many messages were queued."""
    day = now.date().isoformat()
    events = [
        Event(
            n.account_id,
            "arrears.reminder",
            f"arrears:{n.account_id}:{day}",
            "arrears",
            {"amount": str(yuan(n.owed_fen)), "days": n.days},
            -n.owed_fen,
        )
        for n in notices
    ]
    return await enqueue(conn, events, now=now)
