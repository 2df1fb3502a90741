"""payments worker: the order-query poller (credits orders whose notification never came,
closes expired ones, resolves refunds in flight, finishes pending credit follow-ups) every
`period` seconds, and the T+1 reconciliation of every channel once a day after the bills are
ready (10:30 Beijing time).

`shuidian worker payments` builds the providers from SHUIDIAN_PAY_* settings; the demo
passes its sandbox-backed `Payments` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime, time

from server.core.settings import Settings
from server.payments.service.runtime import Payments

log = logging.getLogger(__name__)

RECONCILE_AFTER = time(10, 30)  # WeChat/Alipay daily bills are ready around 10:00 the next day


def reconcile_due(now_local: datetime, last_day: date | None) -> bool:
    """Once a day, after the bills are ready."""
    return now_local.time() >= RECONCILE_AFTER and last_day != now_local.date()


async def run(
    settings: Settings,
    stop: asyncio.Event,
    payments: Payments | None = None,
    *,
    period: float = 30.0,
) -> None:
    from server.payments.config import PaymentSettings
    from server.payments.poller import poll_once
    from server.payments.service.reconciliation import reconcile_yesterday
    from server.payments.service.runtime import build_payments

    owned = payments is None
    payments = payments or build_payments(PaymentSettings())
    reconciled: date | None = None
    try:
        while not stop.is_set():
            try:
                await poll_once(payments)
                now_local = datetime.now(UTC).astimezone(settings.tz)
                if reconcile_due(now_local, reconciled):
                    reports = await reconcile_yesterday(payments, now_local.date())
                    reconciled = now_local.date()
                    log.info("reconciled %d channel(s) for yesterday", len(reports))
            except Exception:
                log.exception("payments round failed; next round in %.0f s", period)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
    finally:
        if owned:
            await payments.aclose()
