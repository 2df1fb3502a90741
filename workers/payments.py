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
from collections.abc import Callable
from datetime import UTC, date, datetime, time

from server.core.logs import log_event
from server.core.settings import Settings
from server.payments.providers.base import ProviderError
from server.payments.service.runtime import Payments

log = logging.getLogger(__name__)

RECONCILE_AFTER = time(10, 30)  # WeChat/Alipay daily bills are ready around 10:00 the next day


def reconcile_due(now_local: datetime, last_day: date | None) -> bool:
    """Once a day, after the bills are ready."""
    return now_local.time() >= RECONCILE_AFTER and last_day != now_local.date()


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run(
    settings: Settings,
    stop: asyncio.Event,
    payments: Payments | None = None,
    *,
    period: float = 30.0,
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    from server.payments.config import PaymentSettings
    from server.payments.poller import poll_once
    from server.payments.service.reconciliation import reconcile_yesterday
    from server.payments.service.runtime import build_payments

    owned = payments is None
    payments = payments or build_payments(PaymentSettings())
    _warn_unconfigured(payments)
    reconciled: date | None = None
    try:
        while not stop.is_set():
            try:
                await poll_once(payments)
                now_local = clock().astimezone(settings.tz)
                if reconcile_due(now_local, reconciled):
                    reports = await reconcile_yesterday(payments, now_local.date())
                    reconciled = now_local.date()
                    if reports:
                        log.info("reconciled %d channel(s) for yesterday", len(reports))
            except ProviderError as exc:  # a platform refusing or a bill not ready: retried
                log.warning("payments round: %s; next round in %.0f s", exc, period)
            except Exception:
                log.exception("payments round failed; next round in %.0f s", period)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
    finally:
        if owned:
            await payments.aclose()


def _warn_unconfigured(payments: Payments) -> None:
    """Once at start: the channels without keys (nothing is asked of them afterwards)."""
    configured = set(payments.configured_channels())
    missing = [ch.value for ch in payments.providers if ch not in configured]
    if missing:
        log_event(
            log, "payments_unconfigured",
            "payment channel(s) %s not configured (no SHUIDIAN_PAY_* keys): not reconciled",
            ", ".join(missing), level=logging.WARNING, channels=missing,
        )  # fmt: skip
