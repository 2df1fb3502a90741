"""Server-side sessions behind an opaque token, for anyone who signs in: tenants (the
mini-program's bearer token, server.accounts) and staff (the admin panel's cookie).

A token is 256 random bits, given to the client once; the store keeps only its SHA-256 under
a prefix of its own (`tsess:` tenants, `ssess:` staff), so a copy of the store holds no usable
token and the two kinds never meet. A session belongs to an owner (an identity, a staff user)
and carries a small JSON `data`; it ends at its absolute expiry, after `idle_s` without use
(when the store has one), on `revoke` (sign-out) or with every session of its owner
(`revoke_owner`: unbinding, disabling a staff member). Production keeps sessions in Redis, so
every web worker and host shares them; embedded mode (one process) keeps them in memory.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Session:
    owner_id: int
    data: dict[str, Any]
    created_at: float  # Unix time
    expires_at: float  # absolute end
    seen_at: float  # last use (idle timeout)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Session:
        return cls(**json.loads(text))


class KeyedSessions(Protocol):
    async def issue(self, owner_id: int, data: dict[str, Any]) -> tuple[str, Session]:
        """A new token for this owner, and its session."""
        ...

    async def resolve(self, token: str) -> Session | None:
        """The live session of `token` (its use noted), or None: unknown, expired, idle too
        long or revoked."""
        ...

    async def revoke(self, token: str) -> None: ...

    async def revoke_owner(self, owner_id: int) -> int:
        """End every session of this owner; how many there were."""
        ...


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Timing:
    def __init__(self, ttl_s: int, idle_s: int | None, clock: Clock) -> None:
        self.ttl_s = ttl_s
        self.idle_s = idle_s
        self.clock = clock

    def new(self, owner_id: int, data: dict[str, Any]) -> Session:
        now = self.clock()
        return Session(owner_id, data, now, now + self.ttl_s, now)

    def alive(self, session: Session, now: float) -> bool:
        if session.expires_at <= now:
            return False
        return self.idle_s is None or session.seen_at + self.idle_s > now


class MemorySessions(_Timing):
    """One process's sessions (embedded mode)."""

    def __init__(self, ttl_s: int, *, idle_s: int | None = None, clock: Clock = time.time) -> None:
        super().__init__(ttl_s, idle_s, clock)
        self._sessions: dict[str, Session] = {}
        self._by_owner: dict[int, set[str]] = {}

    async def issue(self, owner_id: int, data: dict[str, Any]) -> tuple[str, Session]:
        self._purge(self.clock())
        token = new_token()
        session = self.new(owner_id, data)
        key = token_hash(token)
        self._sessions[key] = session
        self._by_owner.setdefault(owner_id, set()).add(key)
        return token, session

    async def resolve(self, token: str) -> Session | None:
        key = token_hash(token)
        session = self._sessions.get(key)
        now = self.clock()
        if session is None or not self.alive(session, now):
            return None
        if self.idle_s is not None:
            session = self._sessions[key] = replace(session, seen_at=now)
        return session

    async def revoke(self, token: str) -> None:
        self._drop(token_hash(token))

    async def revoke_owner(self, owner_id: int) -> int:
        keys = self._by_owner.pop(owner_id, set())
        for key in keys:
            self._sessions.pop(key, None)
        return len(keys)

    def _drop(self, key: str) -> None:
        session = self._sessions.pop(key, None)
        if session is not None:
            self._by_owner.get(session.owner_id, set()).discard(key)

    def _purge(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if not self.alive(s, now)]:
            self._drop(key)


class RedisSessions(_Timing):
    """Sessions in Redis: `<prefix><sha256>` holds the session until its absolute end (the
    key's TTL), the set `<prefix>id:<owner>` the hashes of an owner's sessions."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        ttl_s: int,
        *,
        idle_s: int | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(ttl_s, idle_s, clock)
        self.redis = redis
        self.prefix = prefix

    def _key(self, digest: str) -> str:
        return f"{self.prefix}{digest}"

    def _owner_key(self, owner_id: int) -> str:
        return f"{self.prefix}id:{owner_id}"

    async def issue(self, owner_id: int, data: dict[str, Any]) -> tuple[str, Session]:
        token = new_token()
        session = self.new(owner_id, data)
        digest = token_hash(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(digest), session.to_json(), ex=self.ttl_s)
            pipe.sadd(self._owner_key(owner_id), digest)
            pipe.expire(self._owner_key(owner_id), self.ttl_s)
            await pipe.execute()
        return token, session

    async def resolve(self, token: str) -> Session | None:
        key = self._key(token_hash(token))
        raw = await self.redis.get(key)
        if raw is None:
            return None
        session = Session.from_json(raw)
        now = self.clock()
        if not self.alive(session, now):
            return None
        if self.idle_s is not None:
            session = replace(session, seen_at=now)
            await self.redis.set(key, session.to_json(), keepttl=True, xx=True)
        return session

    async def revoke(self, token: str) -> None:
        digest = token_hash(token)
        raw = await self.redis.getdel(self._key(digest))
        if raw is not None:
            await self.redis.srem(self._owner_key(Session.from_json(raw).owner_id), digest)

    async def revoke_owner(self, owner_id: int) -> int:
        digests = await self.redis.smembers(self._owner_key(owner_id))
        keys = [self._key(d.decode() if isinstance(d, bytes) else d) for d in digests]
        removed = await self.redis.delete(*keys) if keys else 0
        await self.redis.delete(self._owner_key(owner_id))
        return int(removed)


def keyed_sessions(
    redis: Any, prefix: str, ttl_s: int, *, idle_s: int | None = None, clock: Clock = time.time
) -> KeyedSessions:
    """Redis when the platform has one (production), else this process's memory."""
    if redis is not None:
        return RedisSessions(redis, prefix, ttl_s, idle_s=idle_s, clock=clock)
    return MemorySessions(ttl_s, idle_s=idle_s, clock=clock)
