"""Hub: one exchange at a time, typed errors, reconnects, log once at failure and recovery."""

import asyncio
import logging
import socket
from datetime import datetime
from decimal import Decimal

import pytest

from workers.meters.base import MeterKind, MeterUnreachable
from workers.meters.dlt645.driver import Dlt645Driver, dlt645_hub
from workers.meters.dlt645.framer import Frame, build_frame, parse_frame
from workers.meters.hub import Corrupt, NeedMore, Parsed, split_stream
from workers.sim.clock import ManualClock, SimClock
from workers.sim.dlt645_server import Dlt645Server
from workers.sim.meter import SimMeter
from workers.sim.profiles import SHANGHAI, LoadProfile

T0 = datetime(2024, 7, 15, 10, 0, tzinfo=SHANGHAI)
A = "000000000161"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served():
    meter = SimMeter(
        address=A,
        kind=MeterKind.ELECTRICITY,
        profile=LoadProfile.SHOP,
        rated_kw=Decimal(5),
        meter_billing=False,
    )
    server = Dlt645Server({A: meter}, SimClock(T0, real=ManualClock()))
    port = await server.start()
    yield meter, server, port
    await server.close()


def test_split_stream_keeps_the_tail():
    one = build_frame(Frame(A, 0x11, b"\x00\x00\x00\x00"))
    results, rest = split_stream(one + one[:5], parse_frame)
    assert [type(r) for r in results] == [Parsed] and rest == one[4:5]  # FE dropped
    assert isinstance(parse_frame(rest), NeedMore)
    bad = bytearray(one)
    bad[-2] ^= 1
    results, rest = split_stream(bytes(bad), parse_frame)
    assert isinstance(results[0], Corrupt) and rest == b""


async def test_connection_refused_is_unreachable():
    hub = dlt645_hub("127.0.0.1", free_port(), timeout=0.2, connect_timeout=0.5)
    with pytest.raises(MeterUnreachable):
        await Dlt645Driver(hub, A).read_energy()
    await hub.close()


async def test_concurrent_exchanges_are_serialised(served):
    meter, _, port = served
    hub = dlt645_hub("127.0.0.1", port, timeout=0.5, gap=0.001)
    d = Dlt645Driver(hub, A)
    values = await asyncio.gather(*(d.read_decimal(0x02010100) for _ in range(20)))
    assert values == [meter.voltage] * 20
    await hub.close()


async def test_logs_once_at_failure_and_once_at_recovery(served, caplog):
    meter, _, port = served
    hub = dlt645_hub("127.0.0.1", port, timeout=0.1, gap=0.0)
    d = Dlt645Driver(hub, A)
    caplog.set_level(logging.INFO, logger="workers.meters.hub")
    meter.online = False
    for _ in range(3):
        with pytest.raises(MeterUnreachable):
            await d.read_status()
    meter.online = True
    await d.read_status()
    await d.read_status()
    messages = [r.getMessage() for r in caplog.records if r.name == "workers.meters.hub"]
    assert sum("unavailable" in m for m in messages) == 1
    assert sum("is back" in m for m in messages) == 1
    await hub.close()
