"""A small expiring key-value store for the chatbot: the MsgIds already seen (with the answer
given, so a retry gets the same one) and a follower's binding in progress. Production keeps
it in Redis, so every web worker sees the same ids; embedded mode (one process) in memory —
the same choice as server/core/sessions.py `keyed_sessions`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

Clock = Callable[[], float]


class Store(Protocol):
    async def claim(self, key: str, value: str, ttl_s: int) -> bool:
        """Set `key` only if it is not set (atomic); True when this caller set it."""
        ...

    async def put(self, key: str, value: str, ttl_s: int) -> None: ...

    async def get(self, key: str) -> str | None: ...

    async def delete(self, key: str) -> None: ...


class MemoryStore:
    """One process's keys (embedded mode); expired keys are dropped as new ones come."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._clock = clock

    def _live(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        return item[0]

    async def claim(self, key: str, value: str, ttl_s: int) -> bool:
        if self._live(key) is not None:
            return False
        await self.put(key, value, ttl_s)
        return True

    async def put(self, key: str, value: str, ttl_s: int) -> None:
        now = self._clock()
        if len(self._items) > 10_000:  # keep memory bounded: drop what has expired
            self._items = {k: v for k, v in self._items.items() if v[1] > now}
        self._items[key] = (value, now + ttl_s)

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)


class RedisStore:
    """Keys under `shuidian:wechat:` in the platform's Redis, each with its TTL."""

    def __init__(self, redis: Any, prefix: str = "shuidian:wechat:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def claim(self, key: str, value: str, ttl_s: int) -> bool:
        return bool(await self._redis.set(self._prefix + key, value, ex=ttl_s, nx=True))

    async def put(self, key: str, value: str, ttl_s: int) -> None:
        await self._redis.set(self._prefix + key, value, ex=ttl_s)

    async def get(self, key: str) -> str | None:
        raw = await self._redis.get(self._prefix + key)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)


def chat_store(redis: Any | None) -> Store:
    """Redis when the platform has one (production), else this process's memory."""
    return RedisStore(redis) if redis is not None else MemoryStore()
