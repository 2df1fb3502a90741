"""Platform side of the gateway contract: subscribe to readings, acks and status; send commands.

`GatewayClient` keeps one MQTT connection. Every incoming payload is parsed and validated;
an invalid one is logged with the reason and dropped (counted in `stats`), and an exception
raised by a callback is logged too, so one bad gateway never stops the loop. Acks resolve
the future of a pending `request()` by `cmd_id`, then go to `on_ack` as well.

QoS 1 everywhere: expect duplicates (a redelivered message after a reconnect). Consumers
deduplicate — readings on (gateway, meter, ts_collect), acks on cmd_id.

`persistent=True` (the collector): a fixed client id with a persistent session (clean session
off), so the broker queues QoS 1 messages while the client is away, and manual
acknowledgement — a message is acknowledged (PUBACK) only when the owner says it is stored
(`take_unacked()` then `ack(...)`); one lost before that is redelivered at the next connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Self

import aiomqtt
from pydantic import ValidationError

from workers.meters.gateway.schemas import Ack, Command, DataMessage, GatewayStatus
from workers.meters.gateway.topics import BadTopic, TopicKind, parse_topic, subscription, topic

log = logging.getLogger(__name__)

OnData = Callable[[str, DataMessage], Awaitable[None]]
OnAck = Callable[[str, Ack], Awaitable[None]]
OnStatus = Callable[[str, GatewayStatus], Awaitable[None]]

_MODELS = {TopicKind.DATA: DataMessage, TopicKind.ACK: Ack, TopicKind.STATUS: GatewayStatus}


class GatewayClient:
    """Use as `async with GatewayClient(...) as gc:`; it listens in a background task."""

    def __init__(
        self,
        hostname: str = "127.0.0.1",
        port: int = 1883,
        *,
        prefix: str = "",
        on_data: OnData | None = None,
        on_ack: OnAck | None = None,
        on_status: OnStatus | None = None,
        identifier: str | None = None,
        persistent: bool = False,
    ) -> None:
        self.prefix, self.persistent = prefix, persistent
        self.on_data, self.on_ack, self.on_status = on_data, on_ack, on_status
        if persistent and not identifier:
            raise ValueError("a persistent session needs a fixed client identifier")
        self._mqtt = aiomqtt.Client(
            hostname,
            port,
            identifier=identifier or f"shuidian-platform-{uuid.uuid4().hex[:8]}",
            clean_session=False if persistent else None,
        )
        if persistent:
            # aiomqtt (2.5.1, uv.lock) has no switch of its own; paho's client under it has.
            self._mqtt._client.manual_ack_set(True)
        self._unacked: list[tuple[int, int]] = []  # (mid, qos) handled, not yet acknowledged
        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._task: asyncio.Task[None] | None = None
        self.stats: Counter[str] = Counter()
        self.last_drop: str | None = None

    async def __aenter__(self) -> Self:
        await self._mqtt.__aenter__()
        for kind in (TopicKind.DATA, TopicKind.ACK, TopicKind.STATUS):
            await self._mqtt.subscribe(subscription(kind, self.prefix), qos=1)
        self._task = asyncio.create_task(self._listen(), name="gateway-client")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for fut in self._pending.values():
            fut.cancel()
        await self._mqtt.__aexit__(None, None, None)

    async def _listen(self) -> None:
        async for message in self._mqtt.messages:
            await self.handle(str(message.topic), bytes(message.payload or b""))
            if self.persistent and message.qos > 0:
                self._unacked.append((message.mid, message.qos))

    def take_unacked(self) -> list[tuple[int, int]]:
        """The messages handled so far and not yet acknowledged (the caller acks them)."""
        taken, self._unacked = self._unacked, []
        return taken

    def ack(self, messages: list[tuple[int, int]]) -> None:
        """PUBACK `messages` (from `take_unacked`); on a lost connection nothing is sent and
        the broker redelivers them at the next connect."""
        for mid, qos in messages:
            self._mqtt._client.ack(mid, qos)

    def _drop(self, name: str, reason: str) -> None:
        self.stats["dropped"] += 1
        self.last_drop = f"{name}: {reason}"
        log.warning("gateway message dropped on %s: %s", name, reason)

    async def handle(self, name: str, payload: bytes) -> None:
        """Parse one message and hand it on; never raises."""
        try:
            parsed = parse_topic(name, self.prefix)
        except BadTopic:
            return self._drop(name, "topic outside the contract")
        model = _MODELS.get(parsed.kind)
        if model is None:
            return self._drop(name, "not an upstream topic")
        try:
            msg = model.model_validate_json(payload)
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]
            )
            return self._drop(name, errors or "invalid JSON")
        self.stats[parsed.kind.value] += 1
        try:
            await self._dispatch(parsed.gw, msg)
        except Exception:
            log.exception("gateway callback failed for %s", name)
            self.stats["callback_errors"] += 1
        return None

    async def _dispatch(self, gw: str, msg: DataMessage | Ack | GatewayStatus) -> None:
        if isinstance(msg, DataMessage):
            if self.on_data:
                await self.on_data(gw, msg)
        elif isinstance(msg, Ack):
            fut = self._pending.pop(msg.cmd_id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            if self.on_ack:
                await self.on_ack(gw, msg)
        elif self.on_status:
            await self.on_status(gw, msg)

    async def publish_command(self, gw: str, cmd: Command) -> None:
        """Send a command (QoS 1). Its ack arrives on `on_ack` / a pending `request()`."""
        payload = cmd.model_dump_json(exclude_none=True)
        await self._mqtt.publish(topic(gw, TopicKind.CMD, self.prefix), payload, qos=1)

    async def request(self, gw: str, cmd: Command, ack_wait: float) -> Ack:
        """Send `cmd` and wait for its ack; raises TimeoutError when none comes in time."""
        fut: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[cmd.cmd_id] = fut
        try:
            await self.publish_command(gw, cmd)
            return await asyncio.wait_for(fut, ack_wait)
        finally:
            self._pending.pop(cmd.cmd_id, None)
