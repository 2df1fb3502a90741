"""Database connections terminated mid-run (a PostgreSQL restart, a failover): the collector
recovers without a restart — its pool reconnects, its leases are taken again — and the
round that met the dead connections loses nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg
import pytest

from server.core.settings import Settings
from server.metering.models import Meter, Reading
from server.metering.vocabulary import MeterProtocol as P
from tests.conftest import PG_ADMIN_URL
from tests.workers.conftest import Park
from workers.collector import Collector, RoundReport
from workers.leases import PgLeases
from workers.registry import DriverRegistry

pytestmark = pytest.mark.postgres


async def terminate_connections(settings: Settings) -> int:
    """Every connection to the test database but the caller's own: how many were ended."""
    name = settings.db_url.rsplit("/", 1)[1].split("?")[0]
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        )
    finally:
        await conn.close()


async def next_round_that_runs(collector: Collector, passes: int = 5) -> RoundReport:
    """As the collector's loop does: a pass whose first query meets a dead connection fails,
    and the next tick polls again. Each of the pool's dead connections may fail one pass
    (which of them a query gets is the pool's choice), so allow a few."""
    for _ in range(passes - 1):
        try:
            return await collector.poll_round()
        except Exception:  # asyncpg: connection closed / another operation in progress
            continue
    return await collector.poll_round()


async def test_the_collector_recovers_from_terminated_connections(
    park: Park, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers")
    wired = await Meter.filter(site_id=park.site.id).exclude(protocol=P.MQTT_GATEWAY).count()
    collector = Collector(DriverRegistry(clock=park.now, timeout=2), clock=park.now,
                          leases=PgLeases(settings.db_url, "collector"))  # fmt: skip
    try:
        for n in (1, 2, 3):
            park.sim.park.clock.jump(timedelta(minutes=15))
            if n == 2:  # the pool's connections and the leases' one
                assert await terminate_connections(settings) >= 2
            report = await next_round_that_runs(collector)
            assert report.read == wired and not any(b.failed for b in report.buses)
            assert (
                await Reading.filter(meter__site_id=park.site.id)
                .exclude(meter__protocol=P.MQTT_GATEWAY)
                .count()
                == n * wired
            )
        lost = [r for r in caplog.records if getattr(r, "event", "") == "lease_lost"]
        assert len(lost) == 1  # noticed once, every bus taken again at once
    finally:
        await collector.leases.close()
        await collector.registry.close()
