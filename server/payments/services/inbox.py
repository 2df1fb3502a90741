"""The notification inbox (after Polar's external_event).

    verify (the provider; refused when no key is configured)
      → one transaction:
          store the raw event under UNIQUE (channel, external_id)   [order / refund number;
                                           `<STATUS>:<order>` for closed / not-paid statuses]
          already handled? answer success, do nothing
          handle: credit the order / settle or void the refund (idempotent, row-locked)
          mark handled
      → answer; the credit's follow-up runs after the commit (see followups.py)

One transaction, so the hot path takes one pooled connection (one pool release) and a
PostgreSQL payment costs four statements of ours around the ledger's: BEGIN, event insert
and order lock in one statement, order paid + follow-up marker + event handled in one
statement, COMMIT. A duplicate that arrives while the first copy is being handled waits on
the unique index (or the order row lock) until the first commits, then finds it done.
If handling fails, the transaction rolls back and the raw event is stored on its own,
unhandled, as before: the platform's resend handles it. Nothing here trusts Redis or
memory; the database constraints decide.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.ledger.sql import fetch, is_pg, q
from server.payments.models import EventOutcome, OrderStatus, QuarantineReason, RechargeOrder
from server.payments.providers.base import (
    MAX_NUMBER_LENGTH,
    Channel,
    NotificationKind,
    NotificationRejected,
    OutOfRange,
    RefundStatus,
    RejectReason,
    TradeStatus,
    VerifiedNotification,
)
from server.payments.services.orders import (
    NOT_READ,
    ORDER_COLUMNS,
    PaidFact,
    credit_in_transaction,
)
from server.payments.services.quarantine import quarantine
from server.payments.services.refunds import apply_refund_result
from server.payments.services.runtime import Payments

if TYPE_CHECKING:
    from server.payments.services.inbox_batch import InboxBatcher

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


async def receive_notification(
    payments: Payments,
    channel: Channel | str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    batcher: InboxBatcher | None = None,
) -> NotifyResult:
    """Verify, store and handle one notification. Raises `NotificationRejected` (answer the
    platform with an error: nothing in it is believed). With a `batcher` (the web worker's),
    a payment notification is handled together with those arriving at the same moment."""
    now = now or datetime.now(UTC)
    try:
        verified = await verify(payments, Channel(channel), headers, body, now)
    except OutOfRange as exc:
        # Signed, so not a forgery to refuse; a resend would say the same forever.
        await quarantine_out_of_range(Channel(channel), exc)
        return NotifyResult(EventOutcome.QUARANTINED)
    if batcher is not None and batcher.takes(verified):
        return await batcher.handle(verified, headers, body, now)
    return await handle_verified(verified, headers, body, now)


async def verify(
    payments: Payments,
    channel: Channel,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> VerifiedNotification:
    """The provider's verification; a correctly signed notification for another merchant or
    app is quarantined for a person before it is refused."""
    provider = payments.providers.get(channel)
    if provider is None:
        raise NotificationRejected(RejectReason.NOT_CONFIGURED, channel.value)
    try:
        return provider.verify_notification(headers, body, now)
    except NotificationRejected as exc:
        if exc.reason is RejectReason.WRONG_MERCHANT:
            # Correctly signed by the platform but not for our merchant/app: a person looks.
            digest = hashlib.sha256(body).hexdigest()[:40]
            await quarantine(
                channel, QuarantineReason.WRONG_MERCHANT, digest, detail={"detail": exc.detail}
            )
        raise


async def quarantine_out_of_range(channel: Channel, exc: OutOfRange) -> None:
    """One quarantine row per (number, amount) the platform sent, and no inbox event (the
    values fit neither its columns nor the ledger's). An unpaid order of ours it names is
    held, as for an amount mismatch: neither a resend nor the poller credits it by itself."""
    digest = hashlib.sha256(f"{exc.number}|{exc.amount}".encode()).hexdigest()[:40]
    number = exc.number if exc.number_length <= MAX_NUMBER_LENGTH else ""
    async with in_transaction():
        if number:
            await RechargeOrder.filter(
                out_trade_no=number, channel=channel, status=OrderStatus.CREATED
            ).update(status=OrderStatus.HELD, updated_at=datetime.now(UTC))
        await quarantine(
            channel, QuarantineReason.OUT_OF_RANGE, digest, out_trade_no=number,
            detail={"problem": exc.detail, "number": exc.number,
                    "number_length": exc.number_length, "amount": exc.amount},
        )  # fmt: skip


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
                await _store(conn, verified, headers, body, now)
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
    if _is_paid(v) and is_pg(conn):
        event_id, order = await _store_locking_order(conn, v, headers, body, now)
    else:
        event_id = await _store(conn, v, headers, body, now)
    if event_id is None:
        event_id, handled = await _existing(conn, v)
        if handled:
            return NotifyResult(EventOutcome.ALREADY_DONE)
    return await _handle(conn, event_id, v, now, order)


def _is_paid(v: VerifiedNotification) -> bool:
    return v.kind is NotificationKind.PAYMENT and v.status in (
        TradeStatus.SUCCESS,
        TradeStatus.REFUND,
    )


_INSERT_EVENT = (
    "INSERT INTO payment_event (channel, external_id, kind, notification_id, headers,"
    " body, verified, received_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '')"
    " ON CONFLICT (channel, external_id) DO NOTHING RETURNING id"
)


def _event_params(
    v: VerifiedNotification, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[Any]:
    kept = {k: x for k, x in ((k.lower(), x) for k, x in headers.items()) if k in _KEPT_HEADERS}
    return [v.channel.value, inbox_key(v), v.kind.value, v.notification_id[:64],
            json.dumps(kept, ensure_ascii=False), body.decode("utf-8", "replace"), True,
            now]  # fmt: skip


async def _store(
    conn: BaseDBAsyncClient,
    v: VerifiedNotification,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> int | None:
    """Insert the raw event once; its id, or None when it was there already."""
    rows = await fetch(conn, _INSERT_EVENT, _event_params(v, headers, body, now))
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
        [*_event_params(v, headers, body, now), v.out_trade_no],
    )
    row = rows[0]
    event_id = row.pop("event_id")
    return (int(event_id) if event_id is not None else None), (row if row["id"] else None)


async def _existing(conn: BaseDBAsyncClient, v: VerifiedNotification) -> tuple[int, bool]:
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
    if v.kind is NotificationKind.REFUND or _is_paid(v):
        return v.external_id[:64]
    key = f"{v.status}:{v.external_id}"
    if len(key) > 64:  # order numbers go up to 64 characters (Alipay)
        key = f"{v.status}:#{hashlib.sha256(v.external_id.encode()).hexdigest()[:48]}"
    return key


async def _handle(
    conn: BaseDBAsyncClient,
    event_id: int,
    v: VerifiedNotification,
    now: datetime,
    order: dict[str, Any] | object | None,
) -> NotifyResult:
    if _is_paid(v):
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
