"""Test fixtures: a fresh database per test run (PostgreSQL by default, SQLite with
SHUIDIAN_TEST_DB=sqlite), migrated once; tables emptied after each test that used it; a clean
Redis database; the real Mosquitto broker.

Tests that need PostgreSQL semantics (row locks, triggers, concurrency) carry
`@pytest.mark.postgres` and are skipped on the SQLite run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator

import pytest
from tortoise import Tortoise, connections

from server.core.db import close_db, init_db, migrate
from server.core.settings import Settings, load_settings

TEST_DB = os.environ.get("SHUIDIAN_TEST_DB", "postgres")
PG_ADMIN_URL = os.environ.get("SHUIDIAN_TEST_PG", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("SHUIDIAN_TEST_REDIS", "redis://127.0.0.1:6379")
MQTT_HOST = os.environ.get("SHUIDIAN_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("SHUIDIAN_TEST_MQTT_PORT", "1883"))
KEEP_TABLES = {"tortoise_migrations"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_DB != "sqlite":
        return
    # The SQLite run exists for what differs by storage: a test that never opens the test
    # database (pure functions, protocol codecs, CLI runs on their own SQLite files, the
    # mini-program's API shapes) proves nothing more the second time, so it runs once, in the
    # PostgreSQL run. `database_url` is in the closure of every fixture that touches storage.
    needs_pg = pytest.mark.skip(reason="needs PostgreSQL (SHUIDIAN_TEST_DB=sqlite run)")
    storage_free = pytest.mark.skip(reason="uses no test database: runs in the PostgreSQL run")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(needs_pg)
        elif "database_url" not in getattr(item, "fixturenames", ()):
            item.add_marker(storage_free)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """Create, migrate and finally drop one database for this test run."""
    if TEST_DB == "sqlite":
        folder = tempfile.mkdtemp(prefix="shuidian-test-")
        url = f"sqlite://{folder}/test.sqlite3"
        await migrate(load_settings(), url)
        yield url
        return
    name = f"shuidian_test_{os.getpid()}"
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    await migrate(load_settings(), url)
    yield url
    await close_db()
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return load_settings(db_url=database_url, data_dir=tempfile.mkdtemp(prefix="shuidian-data-"))


@pytest.fixture(scope="session")
async def _connected(settings: Settings) -> AsyncIterator[None]:
    await init_db(settings)
    yield
    await close_db()


@pytest.fixture
async def db(_connected: None) -> AsyncIterator[None]:
    """A migrated, empty database; everything written is removed after the test."""
    yield
    await truncate_all()


async def truncate_all() -> None:
    conn = connections.get("default")
    tables = sorted(
        {model._meta.db_table for model in Tortoise.apps["models"].values()}
        | {
            field.through
            for model in Tortoise.apps["models"].values()
            for field in model._meta.fields_map.values()
            if getattr(field, "through", None)
        }
    )
    tables = [t for t in tables if t not in KEEP_TABLES]
    if conn.capabilities.dialect == "postgres":
        # DELETE, not TRUNCATE: a TRUNCATE of ~60 tables gives each a new file, ~1.5 s per
        # test on this machine, where a DELETE of a test's few rows takes milliseconds. The
        # replica role skips foreign-key and ledger triggers (as TRUNCATE did), so the order
        # does not matter; the tables' id sequences restart, as RESTART IDENTITY did.
        listed = ", ".join(f"'{t}'" for t in tables)
        statements = ["SET session_replication_role = replica"]
        statements += [f'DELETE FROM "{t}"' for t in tables]
        statements += [
            "SET session_replication_role = DEFAULT",
            "SELECT setval(d.objid::regclass, 1, false) FROM pg_depend d"
            " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
            " JOIN pg_class t ON t.oid = d.refobjid"
            f" WHERE d.deptype IN ('a', 'i') AND t.relname IN ({listed})",
        ]
        await conn.execute_script(";\n".join(statements))
    else:
        statements = ["PRAGMA foreign_keys = OFF"]
        statements += [f'DELETE FROM "{t}"' for t in tables]
        statements += ["DELETE FROM sqlite_sequence", "PRAGMA foreign_keys = ON"]
        await conn.execute_script(";\n".join(statements))


@pytest.fixture
def redis_url() -> str:
    # One Redis database per test run, so concurrent runs do not flush each other: `./run test`
    # gives its two side-by-side suites their own (SHUIDIAN_TEST_REDIS_DB); otherwise 1..15 by pid.
    return f"{REDIS_BASE}/{os.environ.get('SHUIDIAN_TEST_REDIS_DB') or 1 + os.getpid() % 15}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[object]:
    """A clean Redis database over a real connection."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def mqtt_broker() -> tuple[str, int]:
    """The real MQTT broker (Mosquitto) tests talk to."""
    return MQTT_HOST, MQTT_PORT


_exit_status: list[int] = [0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status[0] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """aiosqlite's worker threads are not daemons: one connection left open by a library
    (seen intermittently after Tortoise's migration run) keeps the interpreter alive forever.
    Give them a moment, then say so and exit with pytest's own status instead of hanging CI.
    """
    import sys
    import threading

    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in stuck:
        thread.join(timeout=5)
    stuck = [t for t in stuck if t.is_alive()]
    if stuck:
        names = ", ".join(t.name for t in stuck)
        print(f"\nwarning: non-daemon threads still alive at exit ({names})", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(_exit_status[0])
