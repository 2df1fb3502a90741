"""A GatewayClient that stays connected: reconnects after the broker restarts.

`GatewayClient` (workers.meters.gateway.client) holds one MQTT connection; when the broker
goes away its listening task ends. `GatewayLink` owns the current client, re-creates it (and
so re-subscribes) after a pause, and offers the `request()` the GatewayDriver needs: while
disconnected a request fails as a timeout, which the driver reports as MeterUnreachable, so
the controller retries it later like any silent meter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from functools import partial

import aiomqtt

from server.core.logs import log_event
from server.core.services import mqtt_address
from server.core.settings import Settings
from workers.meters.gateway.client import GatewayClient, OnAck, OnData, OnStatus
from workers.meters.gateway.schemas import Ack, Command

log = logging.getLogger(__name__)


class GatewayLink:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        prefix: str = "",
        on_data: OnData | None = None,
        on_ack: OnAck | None = None,
        on_status: OnStatus | None = None,
        retry: float = 1.0,
        client_id: str | None = None,
        persistent: bool = False,
    ) -> None:
        self.host, self.port, self.prefix, self.retry = host, port, prefix, retry
        self.client_id, self.persistent = client_id, persistent
        self.on_data, self.on_ack, self.on_status = on_data, on_ack, on_status
        self.client: GatewayClient | None = None
        self.connected = asyncio.Event()
        self.connects = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def __aenter__(self) -> GatewayLink:
        self._task = asyncio.create_task(self._keep(), name="gateway-link")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep(self) -> None:
        down_logged = False
        while not self._stop.is_set():
            try:
                client = GatewayClient(
                    self.host,
                    self.port,
                    prefix=self.prefix,
                    on_data=self.on_data,
                    on_ack=self.on_ack,
                    on_status=self.on_status,
                    identifier=self.client_id,
                    persistent=self.persistent,
                )
                async with client:
                    self.client, self.connects = client, self.connects + 1
                    self.connected.set()
                    if down_logged:
                        log_event(
                            log, "mqtt_up", "MQTT broker %s:%s reachable again",
                            self.host, self.port, level=logging.WARNING, broker=self.address,
                        )  # fmt: skip
                    down_logged = False
                    # The client's listener ends when the connection is lost.
                    listener = client._task
                    assert listener is not None
                    with contextlib.suppress(aiomqtt.MqttError):
                        await listener
            except aiomqtt.MqttError as exc:
                if not down_logged:
                    log_event(
                        log, "mqtt_down", "MQTT broker %s:%s unreachable: %s",
                        self.host, self.port, exc, level=logging.WARNING,
                        broker=self.address, error=str(exc),
                    )  # fmt: skip
                    down_logged = True
            finally:
                self.client = None
                self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.retry)

    def take_unacked(self) -> Callable[[], None]:
        """What has been handled so far, as a call that acknowledges it (once stored)."""
        client = self.client
        if client is None or not client.persistent:
            return _nothing
        return partial(client.ack, client.take_unacked())

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def request(self, gw: str, cmd: Command, ack_wait: float) -> Ack:
        client = self.client
        if client is None:
            raise TimeoutError("MQTT broker not connected")
        try:
            return await client.request(gw, cmd, ack_wait)
        except aiomqtt.MqttError as exc:
            raise TimeoutError(f"MQTT publish failed: {exc}") from exc


def _nothing() -> None:
    return None


def collector_client_id(settings: Settings) -> str:
    """The collector's fixed MQTT client id: SHUIDIAN_MQTT_CLIENT_ID, else
    `shuidian-collector-<host name>[-<SHUIDIAN_WORKER_NAME>]`."""
    if settings.mqtt_client_id:
        return settings.mqtt_client_id
    name = f"shuidian-collector-{socket.gethostname()}"
    return f"{name}-{settings.worker_name}" if settings.worker_name else name


@contextlib.asynccontextmanager
async def gateway_link_from(
    settings: Settings,
    *,
    on_data: OnData | None = None,
    on_status: OnStatus | None = None,
    client_id: str | None = None,
) -> AsyncIterator[GatewayLink | None]:
    """A GatewayLink to the configured broker (the embedded one when none is configured);
    with `client_id` a persistent session acknowledged by the owner (the collector)."""
    host, port = mqtt_address(settings)
    link = GatewayLink(
        host,
        port,
        on_data=on_data,
        on_status=on_status,
        client_id=client_id,
        persistent=client_id is not None,
    )
    async with link:
        yield link
