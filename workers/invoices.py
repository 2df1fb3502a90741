"""invoices worker: issues e-invoices through the platform (server/invoices/service/issuing):
every round it queues red invoices for refunded ones, submits what is queued and asks about
what is being issued; every `period_s` when idle, at once again after a busy round. Several
may run: invoices are claimed `FOR UPDATE SKIP LOCKED`.

Without a Nuonuo app key (SHUIDIAN_INVOICE_NUONUO_APP_KEY), embedded mode issues on the local
fake platform (started here) so the demo's invoices come out issued; production waits with a
warning and leaves them queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.core.settings import Settings
from server.invoices.providers.base import InvoicePlatform

log = logging.getLogger(__name__)


async def run(
    settings: Settings,
    stop: asyncio.Event,
    platform: InvoicePlatform | None = None,
    *,
    period: float | None = None,
) -> None:
    from server.invoices.config import InvoiceSettings
    from server.invoices.providers.nuonuo import NuonuoClient
    from server.invoices.sandbox import FakeNuonuo
    from server.invoices.service.issuing import issue_round

    cfg = InvoiceSettings()
    fake: FakeNuonuo | None = None
    if platform is None and cfg.nuonuo_app_key:
        platform = NuonuoClient(
            cfg.nuonuo_app_key, cfg.app_secret(), endpoint=cfg.nuonuo_endpoint,
            token_url=cfg.nuonuo_token_url, timeout_s=cfg.timeout_s,
        )  # fmt: skip
    elif platform is None and settings.mode == "embedded":
        fake = await FakeNuonuo().start()
        platform = fake.client(cfg.timeout_s)
        log.info("invoices: no Nuonuo app configured; issuing on the local fake platform")
    if platform is None:
        log.warning("invoices: SHUIDIAN_INVOICE_NUONUO_APP_KEY not set; invoices stay queued")
        await stop.wait()
        return
    wait = period if period is not None else cfg.period_s
    try:
        while not stop.is_set():
            busy = False
            try:
                done = await issue_round(
                    platform, batch=cfg.batch, max_attempts=cfg.max_attempts, poll_s=cfg.poll_s
                )
                busy = done.busy
            except Exception:
                log.exception("invoices round failed; next round in %.0f s", wait)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
    finally:
        await platform.aclose()
        if fake is not None:
            await fake.close()
