"""What happens after a credit: the metering context re-evaluates alarms (closing a tripped
relay) and queues meter-side recharges.

Durability: the `CreditFollowUp` row is written in the same database transaction as the
ledger credit, so a process killed between the commit and the follow-up leaves a pending row;
`run_pending_followups` (the poller calls it) finishes it. `on_wallet_credited` is safe to
call twice for one credit (it is keyed on `credit_key`), so a follow-up that ran but was not
marked done is simply run again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from server.payments.models import CreditFollowUp

log = logging.getLogger(__name__)

FollowUpHandler = Callable[[int, str, str], Awaitable[None]]
_warned_missing = False


async def metering_seam(account_id: int, reason: str, credit_key: str) -> None:
    """Call server.metering.service.on_wallet_credited if that service exists."""
    global _warned_missing
    try:
        from server.metering.service import on_wallet_credited
    except ImportError:
        if not _warned_missing:
            log.warning("metering service absent: credit follow-ups stay pending")
            _warned_missing = True
        raise
    await on_wallet_credited(account_id, reason=reason, credit_key=credit_key)


async def run_followup(credit_key: str, handler: FollowUpHandler | None = None) -> bool:
    """Run one pending follow-up; True when it is done (now or before)."""
    item = await CreditFollowUp.get_or_none(credit_key=credit_key)
    if item is None or item.done_at is not None:
        return item is not None
    return await _run(item, handler or metering_seam)


async def _run(item: CreditFollowUp, handler: FollowUpHandler) -> bool:
    try:
        await handler(item.account_id, item.reason, item.credit_key)
    except Exception as exc:  # kept pending: the poller retries it
        log.warning("credit follow-up %s failed: %r", item.credit_key, exc)
        await CreditFollowUp.filter(id=item.id).update(
            attempts=item.attempts + 1, last_error=repr(exc)[:300]
        )
        return False
    await CreditFollowUp.filter(id=item.id, done_at=None).update(
        done_at=datetime.now(UTC), attempts=item.attempts + 1
    )
    return True


async def run_followups(keys: Iterable[str], handler: FollowUpHandler | None = None) -> int:
    """Run the follow-ups of credits that just committed; returns how many are done."""
    done = 0
    for key in keys:
        done += await run_followup(key, handler)
    return done


async def run_pending_followups(
    *,
    older_than_s: float = 30.0,
    limit: int = 500,
    now: datetime | None = None,
    handler: FollowUpHandler | None = None,
) -> int:
    """Finish follow-ups left pending (process killed, metering down). Only rows older than
    `older_than_s`, so a request's own follow-up task is not raced on every round."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
    pending = (
        await CreditFollowUp.filter(done_at=None, created_at__lte=cutoff)
        .order_by("id")
        .limit(limit)
    )
    done = 0
    for item in pending:
        done += await _run(item, handler or metering_seam)
    return done
