"""The generic session store, in memory and in Redis alike: owner index, absolute and idle
timeouts (a fake clock moves; nothing waits), prefixes that keep kinds of sessions apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.core.sessions import KeyedSessions, MemorySessions, RedisSessions, token_hash
from server.core.throttle import MemoryThrottle, RedisThrottle, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis: object) -> AsyncIterator[tuple]:
    clock = Clock()
    if request.param == "memory":
        yield MemorySessions(3600, idle_s=600, clock=clock), clock, redis
    else:
        yield RedisSessions(redis, "test:", 3600, idle_s=600, clock=clock), clock, redis


async def test_a_session_lives_while_used_and_dies_idle_or_at_its_end(store: tuple) -> None:
    sessions: KeyedSessions
    sessions, clock, _ = store
    token, first = await sessions.issue(7, {"csrf": "c"})
    for _ in range(5):  # 50 busy minutes: each use restarts the idle time
        clock.now += 599
        found = await sessions.resolve(token)
        assert found is not None and found.owner_id == 7 and found.data == {"csrf": "c"}
    clock.now = first.expires_at  # the absolute end, however busy
    assert await sessions.resolve(token) is None
    idle, _ = await sessions.issue(7, {})
    clock.now += 600
    assert await sessions.resolve(idle) is None


async def test_revoking_an_owner_ends_only_their_sessions(store: tuple) -> None:
    sessions, _, _ = store
    a1, _ = await sessions.issue(1, {})
    a2, _ = await sessions.issue(1, {})
    b, _ = await sessions.issue(2, {})
    assert await sessions.revoke_owner(1) == 2
    assert await sessions.resolve(a1) is None and await sessions.resolve(a2) is None
    assert await sessions.resolve(b) is not None
    await sessions.revoke(b)
    assert await sessions.resolve(b) is None and await sessions.resolve("made-up") is None


async def test_redis_keeps_only_the_hash_under_the_prefix(redis: object) -> None:
    sessions = RedisSessions(redis, "ssess:", 3600)
    token, _ = await sessions.issue(3, {})
    keys = sorted(k.decode() for k in await redis.keys("*"))  # type: ignore[attr-defined]
    assert keys == [f"ssess:{token_hash(token)}", "ssess:id:3"]
    assert await RedisSessions(redis, "tsess:", 3600).resolve(token) is None


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_the_throttle_locks_after_the_limit_until_the_window_ends(
    kind: str, redis: object
) -> None:
    clock = Clock()
    counter: Throttle = MemoryThrottle(3, 900, clock=clock)
    if kind == "redis":
        counter = RedisThrottle(redis, "f:", 3, 900)
    for _ in range(3):
        assert not await counter.locked("root")
        await counter.fail("root")
    assert await counter.locked("root") and not await counter.locked("other")
    if kind == "memory":
        clock.now += 900
        assert not await counter.locked("root")
    else:
        assert 0 < await redis.ttl("f:root") <= 900  # type: ignore[attr-defined]
    await counter.clear("root")
    assert not await counter.locked("root")
