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

from server.payments.models import QuarantineReason
from server.payments.providers.base import (
    Channel,
    NotificationRejected,
    RejectReason,
    VerifiedNotification,
)
from server.payments.services.inbox_store import NotifyResult, handle_verified
from server.payments.services.quarantine import quarantine
from server.payments.services.runtime import Payments

if TYPE_CHECKING:  # only for the annotation; the batcher itself writes through inbox_store
    from server.payments.services.inbox_batch import InboxBatcher


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
    verified = await verify(payments, Channel(channel), headers, body, now)
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
