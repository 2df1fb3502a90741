"""Tenant sessions: the bearer token the mini-program sends, and who it stands for.

The generic store (server/core/sessions.py, prefix `tsess:`) keeps them: only the token's
SHA-256 is stored; sessions expire (`TenantSettings.session_ttl_s`) and are revoked one at a
time (logout) or all of an identity's at once (unbind, a staff action). Production keeps
them in Redis, so every web worker and host accepts them; embedded mode (one process) keeps
them in memory, and a restart logs tenants out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from server.accounts.models import TenantApp
from server.core.sessions import KeyedSessions, MemorySessions, RedisSessions, Session

PREFIX = "tsess:"


@dataclass(frozen=True, slots=True)
class TenantSession:
    identity_id: int
    app: TenantApp
    openid: str
    expires_at: float  # Unix time

    @classmethod
    def of(cls, session: Session) -> TenantSession:
        data = session.data
        return cls(session.owner_id, TenantApp(data["app"]), data["openid"], session.expires_at)


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


class _TenantSessions:
    """A `SessionStore` over the generic keyed store (the identity is the owner)."""

    def __init__(self, store: KeyedSessions) -> None:
        self.store = store

    async def issue(
        self, identity_id: int, app: TenantApp, openid: str
    ) -> tuple[str, TenantSession]:
        token, session = await self.store.issue(identity_id, {"app": app.value, "openid": openid})
        return token, TenantSession.of(session)

    async def resolve(self, token: str) -> TenantSession | None:
        session = await self.store.resolve(token)
        return TenantSession.of(session) if session is not None else None

    async def revoke(self, token: str) -> None:
        await self.store.revoke(token)

    async def revoke_identity(self, identity_id: int) -> int:
        return await self.store.revoke_owner(identity_id)


class MemorySessionStore(_TenantSessions):
    """One process's tenant sessions (embedded mode)."""

    def __init__(self, ttl_s: int) -> None:
        super().__init__(MemorySessions(ttl_s))


class RedisSessionStore(_TenantSessions):
    """Tenant sessions in Redis under `tsess:`."""

    def __init__(self, redis: Any, ttl_s: int) -> None:
        super().__init__(RedisSessions(redis, PREFIX, ttl_s))


def session_store(redis: Any, ttl_s: int) -> SessionStore:
    """Redis when the platform has one (production), else this process's memory."""
    return RedisSessionStore(redis, ttl_s) if redis is not None else MemorySessionStore(ttl_s)
