"""GatewayClient on real Mosquitto: bad payloads are dropped with a reason, the loop lives on."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import aiomqtt

from workers.meters.gateway.client import GatewayClient
from workers.meters.gateway.schemas import Command, DataMessage

WAIT = 10.0  # guard against hanging, not a timing assertion

GOOD = (
    '{"v":1,"msgid":"m1","seq":1,"src":"RT","ts_collect":"2025-07-01T00:00:00Z",'
    '"ts_send":"2025-07-01T00:00:01Z","meters":[{"addr":"000000000001","total":"1.00"}]}'
)


async def test_invalid_payloads_are_dropped_and_valid_ones_still_arrive():
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    got: asyncio.Queue = asyncio.Queue()
    calls = 0

    async def on_data(gw: str, msg: DataMessage) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a consumer bug")  # must not stop the loop
        await got.put((gw, msg))

    async with (
        GatewayClient(prefix=prefix, on_data=on_data) as gc,
        aiomqtt.Client("127.0.0.1", 1883) as raw,
    ):
        data = f"{prefix}gw/g1/up/data"
        await raw.publish(data, GOOD, qos=1)  # the callback raises on this one
        await raw.publish(data, GOOD.replace('"1.00"', "1.0"), qos=1)
        await raw.publish(data, b"\xff not json", qos=1)
        await raw.publish(f"{prefix}gw/g1/up/ack", '{"cmd_id":"x","ok":false}', qos=1)
        await raw.publish(data, GOOD.replace('"seq":1', '"seq":2'), qos=1)
        gw, msg = await asyncio.wait_for(got.get(), WAIT)
    assert (gw, msg.seq) == ("g1", 2)
    assert gc.stats["dropped"] == 3
    assert gc.stats["callback_errors"] == 1
    assert gc.last_drop.startswith(f"{prefix}gw/g1/up/ack: ts: Field required")


async def test_publish_command_reaches_the_gateway_topic():
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    cmd = Command(
        cmd_id="c-1",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        addr="000000000001",
        op="relay",
        action="trip",
    )
    async with GatewayClient(prefix=prefix) as gc, aiomqtt.Client("127.0.0.1", 1883) as raw:
        await raw.subscribe(f"{prefix}gw/g7/down/cmd", qos=1)
        await gc.publish_command("g7", cmd)
        message = await asyncio.wait_for(anext(aiter(raw.messages)), WAIT)
    assert message.qos == 1
    assert Command.model_validate_json(message.payload) == cmd
