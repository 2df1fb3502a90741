"""The payment sandboxes' notification sender with resend schedules; the loopback HTTP
server they answer on is server.core.httpd's (re-exported here for the fakes and tests).

The `Notifier` delivers a notification the way the platforms do: first at once, then after
each delay of the published schedule until the merchant answers as the platform wants.
Time is compressed by `time_scale` (a 15-minute wait with time_scale=900 takes 1 s), and the
sleep function is injectable so tests can record the waits instead of sleeping them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from server.core.httpd import Handler, HttpServer, Request, Response

log = logging.getLogger(__name__)

WECHAT_RESEND_S = (
    15,
    15,
    30,
    180,
    600,
    1200,
    1800,
    1800,
    1800,
    3600,
    10800,
    10800,
    10800,
    21600,
    21600,
)
ALIPAY_RESEND_S = (240, 600, 600, 3600, 7200, 21600, 54000)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt; `scheduled_s` is the platform's (uncompressed) wait before it."""

    delivery: int
    number: int
    scheduled_s: float
    status: int | None
    answer: bytes
    accepted: bool


Build = Callable[[], tuple[dict[str, str], bytes]]
Accept = Callable[[int, bytes], bool]


class Notifier:
    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        answer_timeout_s: float = 5.0,
    ) -> None:
        self.time_scale = time_scale
        self._sleep = sleep
        self._client = httpx.AsyncClient(timeout=answer_timeout_s)
        self._tasks: set[asyncio.Task[bool]] = set()
        self._next_id = 0
        self.attempts: list[Attempt] = []

    def send(self, url: str, build: Build, accept: Accept, schedule: Sequence[float]) -> int:
        """Start delivering; returns the delivery id (see `attempts`)."""
        self._next_id += 1
        task = asyncio.create_task(self._deliver(self._next_id, url, build, accept, schedule))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return self._next_id

    async def _deliver(
        self, delivery: int, url: str, build: Build, accept: Accept, schedule: Sequence[float]
    ) -> bool:
        waits = [0.0, *schedule]
        for number, wait in enumerate(waits, start=1):
            if wait:
                await self._sleep(wait / self.time_scale)
            headers, body = build()
            status: int | None = None
            answer = b""
            try:
                response = await self._client.post(url, content=body, headers=headers)
                status, answer = response.status_code, response.content
            except httpx.HTTPError as exc:
                log.info("notification %s attempt %s failed: %r", delivery, number, exc)
            ok = status is not None and accept(status, answer)
            self.attempts.append(Attempt(delivery, number, wait, status, answer, ok))
            if ok:
                return True
        return False

    def attempts_of(self, delivery: int) -> list[Attempt]:
        return [a for a in self.attempts if a.delivery == delivery]

    async def drain(self) -> None:
        """Wait until every delivery has been accepted or has run out of retries."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._client.aclose()


__all__ = [
    "ALIPAY_RESEND_S",
    "WECHAT_RESEND_S",
    "Attempt",
    "Handler",
    "HttpServer",
    "Notifier",
    "Request",
    "Response",
    "alipay_accepts",
    "wechat_accepts",
]


def wechat_accepts(status: int, _answer: bytes) -> bool:
    return status in (200, 204)


def alipay_accepts(status: int, answer: bytes) -> bool:
    return status == 200 and answer == b"success"
