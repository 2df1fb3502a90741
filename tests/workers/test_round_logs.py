"""Rounds you can see: one log record per bus per polling round (meters read, missed, held,
duration), one at each state change (a bus down, up again), one per gateway batch; the
fields ride on the record (`event`, `fields`) and `SHUIDIAN_LOG_FORMAT=json` prints them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket

import pytest

from server.core.logs import JsonFormatter
from server.metering.models import Gateway, GatewayKind
from tests.workers.conftest import Park
from tests.workers.helpers import Workers


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, object]]:
    return [r.fields for r in caplog.records if getattr(r, "event", None) == name]  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def forward(port: int, to: tuple[str, int]) -> asyncio.Server:
    """A TCP relay on `port` to the simulator's bus: the bus "comes back" when it starts."""

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await r.read(4096):
                w.write(data)
                await w.drain()
        w.close()

    async def relay(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(*to)
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    return await asyncio.start_server(relay, "127.0.0.1", port)


async def test_each_bus_logs_its_round_and_a_dead_bus_logs_down_then_up(
    park: Park, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers")
    wired = [g for g in await Gateway.filter(site_id=park.site.id) if g.kind != GatewayKind.MQTT]
    per_bus = {g.id: sum(1 for m in park.meters.values() if m.gateway_id == g.id) for g in wired}
    async with Workers(park) as w:
        await w.step()
        rounds = events(caplog, "bus_round")
        assert len(rounds) == len(wired)
        assert sorted(r["read"] for r in rounds) == sorted(per_bus.values())
        assert {r["missed"] for r in rounds} == {0}
        assert all(r["held"] == 0 and r["seconds"] >= 0 for r in rounds)
        assert sum(r["readings"] for r in events(caplog, "gateway_batch")) == sum(
            len(gw.meters) for gw in park.sim.gateways
        )

        dead = wired[0]
        relay_port = free_port()
        await Gateway.filter(id=dead.id).update(port=relay_port)  # nobody listens there yet
        caplog.clear()
        await w.step()
        await w.step()  # still down: no second "down"
        down = events(caplog, "bus_down")
        assert len(down) == 1 and down[0]["missed"] == per_bus[dead.id]
        missed = [r for r in events(caplog, "bus_round") if r["missed"]]
        assert [r["read"] for r in missed] == [0, 0]

        relay = await forward(relay_port, (dead.host, dead.port))
        try:
            caplog.clear()
            await w.step()
        finally:
            relay.close()
        up = events(caplog, "bus_up")
        assert len(up) == 1 and up[0]["read"] == per_bus[dead.id]
        assert not events(caplog, "bus_down")


def test_json_format_prints_the_event_and_its_fields() -> None:
    record = logging.LogRecord("workers.collector", logging.INFO, __file__, 1,
                               "bus %s: %d read", ("dlt645:h:1", 3), None)  # fmt: skip
    record.event, record.fields = "bus_round", {"bus": "dlt645:h:1", "read": 3}
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "bus dlt645:h:1: 3 read"
    assert (out["event"], out["bus"], out["read"], out["level"]) == (
        "bus_round",
        "dlt645:h:1",
        3,
        "INFO",
    )
