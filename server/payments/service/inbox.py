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
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tortoise.transactions import in_transaction

from server.payments.models import EventOutcome, OrderStatus, QuarantineReason, RechargeOrder
from server.payments.providers.base import (
    MAX_NUMBER_LENGTH,
    Channel,
    NotificationRejected,
    OutOfRange,
    RejectReason,
    VerifiedNotification,
)
from server.payments.service.inbox_store import NotifyResult, handle_verified
from server.payments.service.quarantine import quarantine
from server.payments.service.runtime import Payments

if TYPE_CHECKING:  # only for the annotation; the batcher itself writes through inbox_store
    from server.payments.service.inbox_batch import InboxBatcher


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
