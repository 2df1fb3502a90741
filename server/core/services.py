"""The infrastructure beside the database: Redis (or nothing, in embedded mode) and the MQTT
broker (an external one, or amqtt in-process in embedded mode), with their health checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from server.core.errors import ConfigError
from server.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Health:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


def mqtt_address(settings: Settings) -> tuple[str, int]:
    """Host and port of the MQTT broker the platform uses (the embedded one if none is set)."""
    if not settings.mqtt_url:
        return "127.0.0.1", settings.embedded_mqtt_port
    parts = urlsplit(settings.mqtt_url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ConfigError(
            f"SHUIDIAN_MQTT_URL: expected mqtt://host:port, got {settings.mqtt_url!r}"
        )
    return parts.hostname, parts.port or 1883


async def start_embedded_broker(port: int, host: str = "127.0.0.1") -> Any:
    """Start amqtt in this process (embedded mode only); `.shutdown()` stops it."""
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    broker = Broker(config)
    try:
        await broker.start()
    except Exception as exc:
        raise ConfigError(
            f"SHUIDIAN_EMBEDDED_MQTT_PORT: cannot start the embedded MQTT broker on "
            f"{host}:{port}: {exc}"
        ) from None
    return broker


async def check_mqtt(settings: Settings) -> Health:
    """A real MQTT CONNECT/DISCONNECT: an open port alone does not prove a broker answers."""
    import aiomqtt

    host, port = mqtt_address(settings)
    try:
        async with asyncio.timeout(3):
            async with aiomqtt.Client(host, port, identifier="", timeout=2):
                pass
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        return Health("mqtt", False, f"{host}:{port} unreachable: {exc}")
    return Health("mqtt", True, f"{host}:{port}")


class CachedHealth:
    """The last result of a costly check (the MQTT CONNECT), refreshed at most every
    `interval_s`. One per web worker: callers arriving while it refreshes share that one
    check, so a burst of /healthz calls opens one broker connection, not one per call."""

    def __init__(
        self,
        check: Callable[[], Awaitable[Health]],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._interval_s = interval_s
        self._clock = clock
        self._last: Health | None = None
        self._checked_at = 0.0
        self._running: asyncio.Task[Health] | None = None

    async def get(self) -> Health:
        if self._last is not None and self._clock() - self._checked_at < self._interval_s:
            return self._last
        if self._running is None:
            self._running = asyncio.create_task(self._refresh())
        # A caller that gives up (client gone) does not cancel the others' check.
        return await asyncio.shield(self._running)

    async def _refresh(self) -> Health:
        try:
            health = await self._check()
            self._last, self._checked_at = health, self._clock()
            return health
        finally:
            self._running = None


def redis_client(settings: Settings) -> Any | None:
    """A redis.asyncio client, or None in embedded mode (in-process queue and cache)."""
    if not settings.redis_url:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5)


async def check_redis(client: Any | None) -> Health:
    if client is None:
        return Health("redis", True, "embedded (in-process queue and cache)")
    try:
        await asyncio.wait_for(client.ping(), 3)
    except Exception as exc:  # any failure is "unhealthy", reported with its text
        return Health("redis", False, f"unreachable: {exc}")
    return Health("redis", True, "ok")


async def check_database() -> Health:
    from tortoise import connections

    try:
        conn = connections.get("default")
        await asyncio.wait_for(conn.execute_query("SELECT 1"), 3)
    except Exception as exc:
        return Health("database", False, f"unreachable: {exc}")
    return Health("database", True, conn.capabilities.dialect)
