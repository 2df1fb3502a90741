"""One hub per bus: a TCP connection (transparent serial server, gateway, simulator) that
several meters share, carrying one request/reply exchange at a time.

Design (after Home Assistant's modbus hub):
- an `asyncio.Lock` serialises exchanges, and a gap is kept between frames so slow RS-485
  converters can turn the line around;
- every exchange has a timeout; silence, a garbled reply or a dropped connection raise a
  typed `MeterUnreachable`, never a silent None;
- a broken connection is reopened on the next exchange (and one retry is made when a
  connection that looked open turns out dead);
- failure is logged once per meter and per connection, recovery once.

The hub is protocol-neutral: it takes a pure `parse(buf)` function returning the result
types below, and a `match(frame)` predicate that picks the reply out of whatever arrives
(late replies to an earlier, timed-out request are skipped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from workers.meters.base import MeterUnreachable

log = logging.getLogger(__name__)

F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class Parsed(Generic[F]):
    """A complete, checksum-valid frame; `consumed` bytes of the buffer are used up."""

    frame: F
    consumed: int


@dataclass(frozen=True, slots=True)
class Corrupt:
    """A frame-shaped run of bytes whose checksum is wrong; drop `consumed` bytes."""

    consumed: int
    raw: bytes
    reason: str = "bad checksum"


@dataclass(frozen=True, slots=True)
class NeedMore:
    """No complete frame yet; the first `discard` bytes are garbage and can be dropped."""

    discard: int = 0


ParseResult = Parsed[Any] | Corrupt | NeedMore
ParseFn = Callable[[bytes], ParseResult]


class CorruptReply(MeterUnreachable):
    """An answer arrived but did not pass the checksum: treated as no valid answer."""


def split_stream(buf: bytes, parse: ParseFn) -> tuple[list[Parsed[Any] | Corrupt], bytes]:
    """Parse every complete frame in `buf`; return them and the unparsed rest."""
    out: list[Parsed[Any] | Corrupt] = []
    while True:
        result = parse(buf)
        if isinstance(result, NeedMore):
            return out, buf[result.discard :]
        out.append(result)
        buf = buf[result.consumed :]


class Hub:
    """One TCP connection shared by the meters behind it."""

    def __init__(
        self,
        host: str,
        port: int,
        parse: ParseFn,
        *,
        timeout: float = 2.0,
        gap: float = 0.02,
        connect_timeout: float = 3.0,
        name: str | None = None,
    ) -> None:
        self.host, self.port, self.parse = host, port, parse
        self.timeout, self.gap, self.connect_timeout = timeout, gap, connect_timeout
        self.name = name or f"{host}:{port}"
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_io = 0.0
        self._link_down = False
        self._failing: set[str] = set()

    async def exchange(self, request: bytes, match: Callable[[Any], bool], *, key: str = "") -> Any:
        """Send `request` and return the first parsed frame for which `match` is true."""
        async with self._lock:
            try:
                frame = await self._exchange_locked(request, match)
            except MeterUnreachable as exc:
                self._note_failure(key, exc)
                raise
            self._note_success(key)
            return frame

    async def send(self, request: bytes) -> None:
        """Send a frame that gets no reply (broadcast time, broadcast freeze)."""
        async with self._lock:
            await self._wait_gap()
            try:
                writer = await self._connection()
                writer.write(request)
                await writer.drain()
            except OSError as exc:
                await self._drop()
                raise MeterUnreachable(f"{self.name}: send failed: {exc}") from exc
            finally:
                self._last_io = time.monotonic()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    # -- internals ------------------------------------------------------------------------
    async def _exchange_locked(self, request: bytes, match: Callable[[Any], bool]) -> Any:
        await self._wait_gap()
        try:
            for attempt in (1, 2):
                fresh = self._writer is None
                try:
                    return await self._attempt(request, match)
                except (OSError, asyncio.IncompleteReadError, EOFError) as exc:
                    await self._drop()
                    if fresh or attempt == 2:
                        self._link_failed(exc)
                        raise MeterUnreachable(f"{self.name}: connection failed: {exc}") from exc
            raise AssertionError("unreachable")
        finally:
            self._last_io = time.monotonic()

    async def _attempt(self, request: bytes, match: Callable[[Any], bool]) -> Any:
        writer = await self._connection()
        reader = self._reader
        assert reader is not None
        writer.write(request)
        await writer.drain()
        buf = b""
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    chunk = await reader.read(4096)
                    if not chunk:
                        raise EOFError("connection closed by peer")
                    frames, buf = split_stream(buf + chunk, self.parse)
                    for item in frames:
                        if isinstance(item, Corrupt):
                            raise CorruptReply(f"{self.name}: {item.reason}: {item.raw.hex(' ')}")
                        if match(item.frame):
                            return item.frame
        except TimeoutError as exc:
            raise MeterUnreachable(f"{self.name}: no answer within {self.timeout}s") from exc

    async def _connection(self) -> asyncio.StreamWriter:
        if self._writer is None or self._writer.is_closing():
            try:
                async with asyncio.timeout(self.connect_timeout):
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except (OSError, TimeoutError) as exc:
                self._link_failed(exc)
                raise MeterUnreachable(f"{self.name}: cannot connect: {exc}") from exc
            if self._link_down:
                log.info("%s: connection restored", self.name)
                self._link_down = False
        return self._writer

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def _wait_gap(self) -> None:
        wait = self.gap - (time.monotonic() - self._last_io)
        if wait > 0:
            await asyncio.sleep(wait)

    def _link_failed(self, exc: BaseException) -> None:
        if not self._link_down:
            log.warning("%s: connection lost: %s", self.name, exc)
            self._link_down = True

    def _note_failure(self, key: str, exc: BaseException) -> None:
        if key and key not in self._failing:
            self._failing.add(key)
            log.warning("%s: meter %s unavailable: %s", self.name, key, exc)

    def _note_success(self, key: str) -> None:
        if key in self._failing:
            self._failing.discard(key)
            log.info("%s: meter %s is back", self.name, key)
