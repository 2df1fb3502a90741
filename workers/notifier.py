"""notifier worker: claims due messages (server/notify/service/delivery.py), sends them
through their channels, records each outcome; every `period_s` when idle, at once again
after a full batch. Several notifiers may run: a claim is `FOR UPDATE SKIP LOCKED`.

Every `receipt_period_s` it also asks the SMS provider for delivery receipts
(`poll_receipts`): sent messages become DELIVERED, or FAILED with the provider's code.

Embedded mode without configured providers sends to the local fakes (started here), so the
demo's alarms show as delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping

from server.core.settings import Settings
from server.notify.providers.base import Sender
from workers.status import StatusFile

log = logging.getLogger(__name__)


async def run(
    settings: Settings,
    stop: asyncio.Event,
    senders: Mapping[str, Sender] | None = None,
    *,
    period: float | None = None,
) -> None:
    from server.accounts.config import TenantSettings
    from server.notify.config import NotifySettings
    from server.notify.sandbox import NotifySandbox
    from server.notify.service import channels
    from server.notify.service.delivery import deliver_due, poll_receipts

    ns, tenant = NotifySettings(), TenantSettings()
    sandbox: NotifySandbox | None = None
    if senders is None:
        senders = channels.configured(ns, tenant, settings.redis_url)
        if settings.mode == "embedded" and not senders:
            sandbox = await NotifySandbox().start()
            senders = sandbox.senders()
            log.info("notifier: no provider configured; sending to the local fakes")
    name = settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"
    status = StatusFile.for_worker(settings.data_dir, "notifier", settings.worker_name)
    wait = period if period is not None else ns.period_s
    sent = receipts = 0
    loop = asyncio.get_running_loop()
    next_receipts = loop.time()
    try:
        while not stop.is_set():
            claimed = 0
            try:
                claimed = await deliver_due(
                    senders, batch=ns.batch, max_attempts=ns.max_attempts, tenant=tenant,
                    concurrency=ns.concurrency,
                )  # fmt: skip
                sent += claimed
                if loop.time() >= next_receipts:
                    next_receipts = loop.time() + min(ns.receipt_period_s, 10 * wait)
                    receipts += await poll_receipts(
                        senders, window_h=ns.receipt_window_h, every_s=ns.receipt_period_s
                    )
                status.write(
                    worker_name=name, last_claimed=claimed, handled=sent, receipts=receipts
                )
            except Exception:
                log.exception("notifier round failed; next round in %.0f s", wait)
            if claimed < ns.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
    finally:
        for sender in senders.values():
            await sender.aclose()
        if sandbox is not None:
            await sandbox.close()
        status.remove()
