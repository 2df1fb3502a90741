"""One verified payment notification, stored and handled: the raw event inserted once under
UNIQUE (channel, external_id), the order credited or the refund settled, the event marked
handled. `inbox` (one at a time) and `inbox_batch` (group commit) both write through here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.ledger.sql import fetch, is_pg, q
from server.payments.models import EventOutcome
from server.payments.providers.base import (
    Channel,
    NotificationKind,
    RefundStatus,
    TradeStatus,
    VerifiedNotification,
)
from server.payments.service.orders import (
    NOT_READ,
    ORDER_COLUMNS,
    PaidFact,
    credit_in_transaction,
)
from server.payments.service.refunds import apply_refund_result

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
_KEPT_HEADERS = (
    "wechatpay-serial",
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-signature",
    "wechatpay-signature-type",
    "content-type",
)


@dataclass(frozen=True, slots=True)
class NotifyResult:
    outcome: EventOutcome
    followup_keys: tuple[str, ...] = ()


async def handle_verified(
    verified: VerifiedNotification, headers: Mapping[str, str], body: bytes, now: datetime
) -> NotifyResult:
    """Store and handle one verified notification in its own transaction."""
    try:
        async with in_transaction() as conn:
            return await _store_and_handle(conn, verified, headers, body, now)
    except Exception:
        # Keep the raw event (unhandled) for the resend and for a person, as before.
        try:
            async with in_transaction() as conn:
                await store_event(conn, verified, headers, body, now)
        except Exception:
            log.exception("payment event %s not stored", inbox_key(verified))
        raise


async def _store_and_handle(
    conn: BaseDBAsyncClient,
    v: VerifiedNotification,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> NotifyResult:
    order: dict[str, Any] | object | None = NOT_READ
    if is_paid(v) and is_pg(conn):
        event_id, order = await _store_locking_order(conn, v, headers, body, now)
    else:
        event_id = await store_event(conn, v, headers, body, now)
    if event_id is None:
        event_id, handled = await existing_event(conn, v)
        if handled:
            return NotifyResult(EventOutcome.ALREADY_DONE)
    return await handle_event(conn, event_id, v, now, order)


def is_paid(v: VerifiedNotification) -> bool:
    return v.kind is NotificationKind.PAYMENT and v.status in (
        TradeStatus.SUCCESS,
        TradeStatus.REFUND,
    )


_INSERT_EVENT = (
    "INSERT INTO payment_event (channel, external_id, kind, notification_id, headers,"
    " body, verified, received_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '')"
    " ON CONFLICT (channel, external_id) DO NOTHING RETURNING id"
)


def event_params(
    v: VerifiedNotification, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[Any]:
    kept = {k: x for k, x in ((k.lower(), x) for k, x in headers.items()) if k in _KEPT_HEADERS}
    return [v.channel.value, inbox_key(v), v.kind.value, v.notification_id[:64],
            json.dumps(kept, ensure_ascii=False), body.decode("utf-8", "replace"), True,
            now]  # fmt: skip


async def store_event(
    conn: BaseDBAsyncClient,
    v: VerifiedNotification,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> int | None:
    """Insert the raw event once; its id, or None when it was there already."""
    rows = await fetch(conn, _INSERT_EVENT, event_params(v, headers, body, now))
    return int(rows[0]["id"]) if rows else None


async def _store_locking_order(
    conn: BaseDBAsyncClient,
    v: VerifiedNotification,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> tuple[int | None, dict[str, Any] | None]:
    """PostgreSQL, one statement: insert the raw event once and read the order `FOR UPDATE`.
    Returns (new event id or None when it was there already, the order row or None)."""
    rows = await fetch(
        conn,
        f"WITH ev AS ({_INSERT_EVENT}) SELECT (SELECT id FROM ev) AS event_id, o.*"
        f" FROM (SELECT 1) AS one LEFT JOIN (SELECT {ORDER_COLUMNS} FROM recharge_order"
        " WHERE out_trade_no = $9 FOR UPDATE) AS o ON true",
        [*event_params(v, headers, body, now), v.out_trade_no],
    )
    row = rows[0]
    event_id = row.pop("event_id")
    return (int(event_id) if event_id is not None else None), (row if row["id"] else None)


async def existing_event(conn: BaseDBAsyncClient, v: VerifiedNotification) -> tuple[int, bool]:
    """(id, handled) of the event stored earlier (another copy, or a failed attempt)."""
    rows = await fetch(
        conn,
        "SELECT id, handled_at FROM payment_event WHERE channel = $1 AND external_id = $2",
        [v.channel.value, inbox_key(v)],
    )
    return int(rows[0]["id"]), rows[0]["handled_at"] is not None


def inbox_key(v: VerifiedNotification) -> str:
    """The event's unique `external_id`: the order or refund number, except for a payment
    status that asks nothing of us (closed, not paid): `<STATUS>:<order number>`. Alipay
    notifies TRADE_CLOSED and WAIT_BUYER_PAY too; stored under the order's own number, such
    an event would make the later TRADE_SUCCESS of the same order a "duplicate" and leave the
    credit to the poller. Copies of one status still share one row."""
    if v.kind is NotificationKind.REFUND or is_paid(v):
        return v.external_id[:64]
    key = f"{v.status}:{v.external_id}"
    if len(key) > 64:  # order numbers go up to 64 characters (Alipay)
        key = f"{v.status}:#{hashlib.sha256(v.external_id.encode()).hexdigest()[:48]}"
    return key


async def handle_event(
    conn: BaseDBAsyncClient,
    event_id: int,
    v: VerifiedNotification,
    now: datetime,
    order: dict[str, Any] | object | None,
) -> NotifyResult:
    if is_paid(v):
        fact = PaidFact(v.channel, v.out_trade_no, v.amount_fen, v.transaction_id,
                        paid_time(v), "notify")  # fmt: skip
        result = await credit_in_transaction(conn, fact, now, locked=order, event_id=event_id)
        if result.outcome is EventOutcome.CREDITED:  # the event was marked with the credit
            return NotifyResult(result.outcome, (result.followup_key,))
        outcome = result.outcome
    elif v.kind is NotificationKind.PAYMENT:
        outcome = EventOutcome.IGNORED
    else:
        outcome = await apply_refund_result(
            v.channel, v.out_refund_no, RefundStatus(v.status), source="notify",
            notified_fen=v.amount_fen, cumulative=v.channel is Channel.ALIPAY,
            settled_at=refund_time(v),
        )  # fmt: skip
    await conn.execute_query(
        q(conn, "UPDATE payment_event SET handled_at = $1, outcome = $2"
                " WHERE id = $3 AND handled_at IS NULL"),
        [now, outcome.value, event_id],
    )  # fmt: skip
    return NotifyResult(outcome)


def paid_time(v: VerifiedNotification) -> datetime | None:
    """The platform's success time, which the daily bill uses (None if absent)."""
    raw: Any = v.raw
    if v.channel is Channel.WECHAT:
        return _iso(raw.get("resource", {}).get("success_time"))
    return _alipay_time(raw.get("gmt_payment"))


def refund_time(v: VerifiedNotification) -> datetime | None:
    raw: Any = v.raw
    if v.channel is Channel.WECHAT:
        return _iso(raw.get("resource", {}).get("success_time"))
    return _alipay_time(str(raw.get("gmt_refund", "")).split(".")[0])


def _iso(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except (TypeError, ValueError):
        return None


def _alipay_time(text: Any) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except (TypeError, ValueError):
        return None
