"""A job runner: claims due jobs of the kinds it has handlers for, runs each handler, and
records the outcome (done; or retried with back-off, dead after the last attempt).

    runner = Runner({"scheduler.tick": tick}, leases={"scheduler.daily": 6 * 3600})
    await runner.run(stop)        # or `await runner.run_once()` in tests and tools

Each handler is a task boundary: it opens its own transactions (services open none). A
handler that outlives 90 % of its lease is cancelled and the attempt fails, so the lease never
ends while it still runs. Start as many runners, in as many processes, as the work needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from server.jobs.models import JobStatus
from server.jobs.service import Claimed, claim, complete, fail

log = logging.getLogger(__name__)

Handler = Callable[[Claimed], Awaitable[None]]
DEFAULT_LEASE_S = 300.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def worker_name() -> str:
    """`host:pid:random`, unique per runner, for `job.claimed_by`."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runner:
    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        leases: Mapping[str, float] | None = None,
        batch: int = 10,
        worker: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.handlers = dict(handlers)
        self.leases = {k: (leases or {}).get(k, DEFAULT_LEASE_S) for k in self.handlers}
        self.batch, self.clock = batch, clock
        self.worker = worker or worker_name()

    async def run_once(self) -> int:
        """Claim and run what is due now; returns how many jobs were run."""
        ran = 0
        for kind, lease_s in self.leases.items():
            jobs = await claim(
                self.batch, kinds=[kind], worker=self.worker, lease_s=lease_s, now=self.clock()
            )
            for job in jobs:
                await self._run(job, lease_s)
            ran += len(jobs)
        return ran

    async def run(self, stop: asyncio.Event, *, idle_s: float = 1.0) -> None:
        """Run until `stop` is set, waiting `idle_s` whenever nothing was due."""
        while not stop.is_set():
            try:
                ran = await self.run_once()
            except Exception:
                log.exception("job round failed; next in %.0f s", idle_s)
                ran = 0
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_s)

    async def _run(self, job: Claimed, lease_s: float) -> None:
        try:
            await asyncio.wait_for(self.handlers[job.kind](job), lease_s * 0.9)
        except Exception as exc:  # a failed attempt; CancelledError leaves the lease to end
            status = await fail(job, repr(exc), now=self.clock())
            level = logging.ERROR if status is JobStatus.DEAD else logging.WARNING
            log.log(level, "job %s %s attempt %d failed (%s): %r",
                    job.id, job.kind, job.attempts, status, exc)  # fmt: skip
        else:
            if not await complete(job, now=self.clock()):
                log.warning("job %s %s finished after its lease was lost", job.id, job.kind)
