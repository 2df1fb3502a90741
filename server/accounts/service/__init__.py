"""Tenant self-service: sessions, WeChat login, binding identities to accounts, and what a
tenant sees of the accounts bound to them. Windows import from here."""

from server.accounts.service.sessions import (
    MemorySessionStore,
    RedisSessionStore,
    SessionStore,
    TenantSession,
    session_store,
)

__all__ = [
    "MemorySessionStore",
    "RedisSessionStore",
    "SessionStore",
    "TenantSession",
    "session_store",
]
