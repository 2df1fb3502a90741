"""Tenant sessions: the bearer token the mini-program sends, and who it stands for.

A token is 256 random bits, given to the client once; the store keeps only its SHA-256, so a
copy of the store holds no usable token. Sessions expire (`TenantSettings.session_ttl_s`),
and are revoked one at a time (logout) or all of an identity's at once (unbind, a staff
action). Production keeps them in Redis, so every web worker and host accepts them;
embedded mode (one process) keeps them in memory, and a restart logs tenants out.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from server.accounts.models import TenantApp


@dataclass(frozen=True, slots=True)
class TenantSession:
    identity_id: int
    app: TenantApp
    openid: str
    expires_at: float  # Unix time

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> TenantSession:
        data = json.loads(text)
        return cls(data["identity_id"], TenantApp(data["app"]), data["openid"], data["expires_at"])


class SessionStore(Protocol):
    async def issue(
        self, identity_id: int, app: TenantApp, openid: str
    ) -> tuple[str, TenantSession]:
        """A new token for this identity, and its session."""
        ...

    async def resolve(self, token: str) -> TenantSession | None:
        """The live session of `token`, or None (unknown, expired or revoked)."""
        ...

    async def revoke(self, token: str) -> None: ...

    async def revoke_identity(self, identity_id: int) -> int:
        """End every session of this identity; how many there were."""
        ...


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class MemorySessionStore:
    """One process's sessions (embedded mode)."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl_s = ttl_s
        self._sessions: dict[str, TenantSession] = {}
        self._by_identity: dict[int, set[str]] = {}

    async def issue(
        self, identity_id: int, app: TenantApp, openid: str
    ) -> tuple[str, TenantSession]:
        self._purge_expired()
        token = new_token()
        session = TenantSession(identity_id, app, openid, time.time() + self.ttl_s)
        key = token_hash(token)
        self._sessions[key] = session
        self._by_identity.setdefault(identity_id, set()).add(key)
        return token, session

    async def resolve(self, token: str) -> TenantSession | None:
        session = self._sessions.get(token_hash(token))
        if session is None or session.expires_at <= time.time():
            return None
        return session

    async def revoke(self, token: str) -> None:
        key = token_hash(token)
        session = self._sessions.pop(key, None)
        if session is not None:
            self._by_identity.get(session.identity_id, set()).discard(key)

    async def revoke_identity(self, identity_id: int) -> int:
        keys = self._by_identity.pop(identity_id, set())
        for key in keys:
            self._sessions.pop(key, None)
        return len(keys)

    def _purge_expired(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            session = self._sessions.pop(key)
            self._by_identity.get(session.identity_id, set()).discard(key)


class RedisSessionStore:
    """Sessions in Redis: `tsess:<sha256>` holds the session with its TTL, the set
    `tsess:id:<identity>` the hashes of an identity's sessions (for revoke_identity)."""

    PREFIX = "tsess:"

    def __init__(self, redis: Any, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    def _key(self, digest: str) -> str:
        return f"{self.PREFIX}{digest}"

    def _identity_key(self, identity_id: int) -> str:
        return f"{self.PREFIX}id:{identity_id}"

    async def issue(
        self, identity_id: int, app: TenantApp, openid: str
    ) -> tuple[str, TenantSession]:
        token = new_token()
        session = TenantSession(identity_id, app, openid, time.time() + self.ttl_s)
        digest = token_hash(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(digest), session.to_json(), ex=self.ttl_s)
            pipe.sadd(self._identity_key(identity_id), digest)
            pipe.expire(self._identity_key(identity_id), self.ttl_s)
            await pipe.execute()
        return token, session

    async def resolve(self, token: str) -> TenantSession | None:
        raw = await self.redis.get(self._key(token_hash(token)))
        if raw is None:
            return None
        session = TenantSession.from_json(raw)
        return session if session.expires_at > time.time() else None

    async def revoke(self, token: str) -> None:
        digest = token_hash(token)
        raw = await self.redis.getdel(self._key(digest))
        if raw is not None:
            await self.redis.srem(
                self._identity_key(TenantSession.from_json(raw).identity_id), digest
            )

    async def revoke_identity(self, identity_id: int) -> int:
        digests = await self.redis.smembers(self._identity_key(identity_id))
        keys = [self._key(d.decode() if isinstance(d, bytes) else d) for d in digests]
        removed = await self.redis.delete(*keys) if keys else 0
        await self.redis.delete(self._identity_key(identity_id))
        return int(removed)


def session_store(redis: Any, ttl_s: int) -> SessionStore:
    """Redis when the platform has one (production), else this process's memory."""
    return RedisSessionStore(redis, ttl_s) if redis is not None else MemorySessionStore(ttl_s)
