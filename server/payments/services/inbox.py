"""The notification inbox (after Polar's external_event).

    verify (the provider; refused when no key is configured)
      → store the raw event under UNIQUE (channel, external_id)   [order / refund number]
      → already handled? answer success, do nothing
      → handle: credit the order / settle or void the refund (idempotent, row-locked)
      → mark handled, in the same transaction as the credit
      → answer; the credit's follow-up runs after the commit (see followups.py)

A duplicate that arrives while the first copy is still being handled finds the event
unhandled and handles it too: the order row lock and the ledger key make that a no-op.
Nothing here trusts Redis or memory; the database constraints decide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.transactions import in_transaction

from server.ledger.sql import fetch, q
from server.payments.models import EventOutcome, QuarantineReason
from server.payments.providers.base import (
    Channel,
    NotificationKind,
    NotificationRejected,
    RefundStatus,
    RejectReason,
    TradeStatus,
    VerifiedNotification,
)
from server.payments.services.orders import PaidFact, credit_in_transaction
from server.payments.services.quarantine import quarantine
from server.payments.services.refunds import apply_refund_result
from server.payments.services.runtime import Payments

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
) -> NotifyResult:
    """Verify, store and handle one notification. Raises `NotificationRejected` (answer the
    platform with an error: nothing in it is believed)."""
    channel = Channel(channel)
    now = now or datetime.now(UTC)
    provider = payments.providers.get(channel)
    if provider is None:
        raise NotificationRejected(RejectReason.NOT_CONFIGURED, channel.value)
    try:
        verified = provider.verify_notification(headers, body, now)
    except NotificationRejected as exc:
        if exc.reason is RejectReason.WRONG_MERCHANT:
            # Correctly signed by the platform but not for our merchant/app: a person looks.
            digest = hashlib.sha256(body).hexdigest()[:40]
            await quarantine(
                channel, QuarantineReason.WRONG_MERCHANT, digest, detail={"detail": exc.detail}
            )
        raise
    event_id, handled = await _store(verified, headers, body, now)
    if handled:
        return NotifyResult(EventOutcome.ALREADY_DONE)
    return await _handle(event_id, verified, now)


async def _store(
    verified: VerifiedNotification, headers: Mapping[str, str], body: bytes, now: datetime
) -> tuple[int, bool]:
    """Insert the raw event once; returns (event id, already handled)."""
    kept = {k: v for k, v in ((k.lower(), v) for k, v in headers.items()) if k in _KEPT_HEADERS}
    conn = connections.get("default")
    external_id = verified.external_id[:64]
    rows = await fetch(
        conn,
        "INSERT INTO payment_event (channel, external_id, kind, notification_id, headers,"
        " body, verified, received_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '')"
        " ON CONFLICT (channel, external_id) DO NOTHING RETURNING id",
        [verified.channel.value, external_id, verified.kind.value,
         verified.notification_id[:64], json.dumps(kept, ensure_ascii=False),
         body.decode("utf-8", "replace"), True, now],
    )  # fmt: skip
    if rows:
        return int(rows[0]["id"]), False
    rows = await fetch(
        conn,
        "SELECT id, handled_at FROM payment_event WHERE channel = $1 AND external_id = $2",
        [verified.channel.value, external_id],
    )
    return int(rows[0]["id"]), rows[0]["handled_at"] is not None


async def _handle(event_id: int, v: VerifiedNotification, now: datetime) -> NotifyResult:
    async with in_transaction() as conn:
        keys: tuple[str, ...] = ()
        if v.kind is NotificationKind.PAYMENT:
            if v.status in (TradeStatus.SUCCESS, TradeStatus.REFUND):
                fact = PaidFact(v.channel, v.out_trade_no, v.amount_fen, v.transaction_id,
                                paid_time(v), "notify")  # fmt: skip
                result = await credit_in_transaction(conn, fact, now)
                outcome = result.outcome
                keys = (result.followup_key,) if result.followup_key else ()
            else:
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
        return NotifyResult(outcome, keys)


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
