"""A tiny in-process HTTP/1.1 server and a notification sender with resend schedules.

The server is plain asyncio (one request per connection, `Connection: close`): enough for
httpx and browsers, no global app registry, so several sandboxes can run in one process.

The `Notifier` delivers a notification the way the platforms do: first at once, then after
each delay of the published schedule until the merchant answers as the platform wants.
Time is compressed by `time_scale` (a 15-minute wait with time_scale=900 takes 1 s), and the
sleep function is injectable so tests can record the waits instead of sleeping them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import httpx

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
MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # path + query, as sent
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self.base_url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        self.base_url = f"http://{bound[0]}:{bound[1]}"
        return self.base_url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY:
            return None
        body = await reader.readexactly(length) if length else b""
        parts = urlsplit(target)
        return Request(
            method.upper(), target, parts.path, dict(parse_qsl(parts.query)), headers, body
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read(reader)
            if request is None:
                response = Response(413, b"too large")
            else:
                try:
                    response = await self._handler(request)
                except Exception:  # a sandbox bug must show up as a 500, not a hang
                    log.exception("sandbox handler failed")
                    response = Response(500, b'{"code":"SYSTEM_ERROR","message":"sandbox"}')
            head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
            headers = {"Content-Length": str(len(response.body)), "Connection": "close"}
            headers.update(response.headers)
            head += [f"{k}: {v}" for k, v in headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + response.body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


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


def wechat_accepts(status: int, _answer: bytes) -> bool:
    return status in (200, 204)


def alipay_accepts(status: int, answer: bytes) -> bool:
    return status == 200 and answer == b"success"
