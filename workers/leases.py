"""One owner per bus: collectors (and controllers) share the buses through PostgreSQL
advisory locks, so no two read the same bus, and a dead one's buses pass to the others.

Why advisory locks and not a lease row: a lock lives exactly as long as its holder's
database session. A collector killed with SIGKILL closes its socket and PostgreSQL frees its
locks at once; no expiry to tune, no clock to trust, no table (and no migration).

Each process of a kind (`role`: "collector", "controller") keeps one dedicated connection and
holds on it a *presence* lock (its own key) and one lock per bus it owns. Before each pass
`claim(buses)` balances: the fair share is ceil(buses / processes of the role present); a
process above it releases its extra buses (idle ones: the caller says which are busy), one
below it tries the free ones. Ownership changes only between passes, so a bus is read by one
process per round; after a takeover the new owner reads it at its next pass.

SQLite (embedded mode: one process) has nothing to share: `LocalLeases` owns every bus.
"""

from __future__ import annotations

import logging
import math
import secrets
import zlib
from collections.abc import Iterable

import asyncpg

from server.core.logs import log_event

log = logging.getLogger(__name__)

# Advisory lock namespaces (the first key, `classid` in pg_locks): buses, and presence
# (the second key is the process's own random key) per role.
_NS = {"collector": 19001, "controller": 19002}
_PRESENCE = {"collector": 19011, "controller": 19012}


def _key(bus: str) -> int:
    """A bus's lock key: a stable signed 32-bit hash (two buses sharing one share an owner)."""
    return zlib.crc32(bus.encode()) - 2**31


class LocalLeases:
    """One process owns every bus (SQLite, tests of a single worker)."""

    def __init__(self) -> None:
        self._last: set[str] = set()

    async def join(self) -> None:
        return None

    async def claim(self, buses: Iterable[str], busy: Iterable[str] = ()) -> set[str]:
        self._last = set(buses)
        return set(self._last)

    def held(self) -> set[str]:
        return set(self._last)

    async def close(self) -> None:
        return None


class PgLeases:
    """Bus ownership through advisory locks on a connection of this object's own."""

    def __init__(self, dsn: str, role: str) -> None:
        dsn = dsn.split("?", 1)[0]  # Tortoise's pool options are not asyncpg's
        self.dsn = "postgresql://" + dsn.split("://", 1)[1]
        self.role, self.ns = role, _NS[role]
        self.me = secrets.randbits(31)  # this process's presence key
        self._conn: asyncpg.Connection | None = None
        self._held: dict[str, int] = {}  # bus → lock key

    def held(self) -> set[str]:
        return set(self._held)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        if self._held:  # the session (and every lock on it) is gone
            log_event(
                log, "lease_lost", "%s: lost every bus lease (database session ended)",
                self.role, level=logging.WARNING, role=self.role, buses=sorted(self._held),
            )  # fmt: skip
            self._held.clear()
        self._conn = await asyncpg.connect(self.dsn)
        await self._conn.execute("SELECT pg_advisory_lock($1, $2)", _PRESENCE[self.role], self.me)
        return self._conn

    async def join(self) -> None:
        """Be counted among the processes of the role (the first `claim` joins too)."""
        await self._connection()

    async def claim(self, buses: Iterable[str], busy: Iterable[str] = ()) -> set[str]:
        """Balance, then return the buses this process owns (of `buses`)."""
        wanted = sorted(set(buses))
        conn = await self._connection()
        present = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = $1 AND objsubid = 2"  # pg_locks lists every database's locks
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            _PRESENCE[self.role],
        )
        share = math.ceil(len(wanted) / max(int(present or 1), 1))
        busy = set(busy)
        gone = [b for b in self._held if b not in wanted and b not in busy]
        extra = len(self._held) - len(gone) - share
        idle = [b for b in sorted(self._held, reverse=True) if b in wanted and b not in busy]
        for bus in gone + idle[: max(extra, 0)]:
            await conn.execute("SELECT pg_advisory_unlock($1, $2)", self.ns, self._held.pop(bus))
            log_event(log, "lease_released", "%s: bus %s released", self.role, bus,
                      role=self.role, bus=bus)  # fmt: skip
        for bus in wanted:
            if len(self._held) >= share:
                break
            if bus in self._held:
                continue
            key = _key(bus)
            if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", self.ns, key):
                self._held[bus] = key
                log_event(log, "lease_gained", "%s: bus %s is ours", self.role, bus,
                          role=self.role, bus=bus)  # fmt: skip
        return {b for b in self._held if b in wanted}

    @property
    def present(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()  # frees every lock
        self._conn = None
        self._held.clear()


def leases_for(db_url: str, role: str) -> LocalLeases | PgLeases:
    if db_url.startswith(("postgres://", "postgresql://")):
        return PgLeases(db_url, role)
    return LocalLeases()
