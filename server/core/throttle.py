"""Counting failures to slow down guessing: after `limit` failures of one key (a username, an
IP address) within `window_s`, the key is locked until the window ends. Redis in production
(every web worker counts together), memory in embedded mode."""

from __future__ import annotations

import time
from typing import Any, Protocol

from server.core.sessions import Clock


class Throttle(Protocol):
    async def locked(self, key: str) -> bool:
        """True when `key` has used up its failures."""
        ...

    async def fail(self, key: str) -> None:
        """Count one failure of `key`."""
        ...

    async def clear(self, key: str) -> None: ...


class MemoryThrottle:
    def __init__(self, limit: int, window_s: int, *, clock: Clock = time.time) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (failures, window end)

    def _count(self, key: str) -> int:
        count, until = self._counts.get(key, (0, 0.0))
        return count if until > self.clock() else 0

    async def locked(self, key: str) -> bool:
        return self._count(key) >= self.limit

    async def fail(self, key: str) -> None:
        count = self._count(key)
        until = self._counts[key][1] if count else self.clock() + self.window_s
        self._counts[key] = (count + 1, until)

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)


class RedisThrottle:
    """`<prefix><key>` counts failures; it expires `window_s` after the first one."""

    def __init__(self, redis: Any, prefix: str, limit: int, window_s: int) -> None:
        self.redis, self.prefix, self.limit, self.window_s = redis, prefix, limit, window_s

    async def locked(self, key: str) -> bool:
        raw = await self.redis.get(self.prefix + key)
        return raw is not None and int(raw) >= self.limit

    async def fail(self, key: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, self.window_s, nx=True)
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)


def throttle(redis: Any, prefix: str, limit: int, window_s: int) -> Throttle:
    if redis is not None:
        return RedisThrottle(redis, prefix, limit, window_s)
    return MemoryThrottle(limit, window_s)
