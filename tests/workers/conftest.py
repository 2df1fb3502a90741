"""A small simulated park over real sockets, registered on the platform.

The park's clock runs at speed 1 and moves only when a test jumps it (`sim.park.clock.jump`),
so nothing depends on wall-clock timing; servers advance their meters when read. Gateways do
not publish on their own (a long period): tests call `gw.collect()`.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from server.accounts.models import Account
from server.ledger import service as ledger
from server.ledger.posting import Channel
from server.metering.models import Gateway, GatewayKind, Meter, MeterBilling
from server.metering.vocabulary import MeterKind
from server.metering.vocabulary import MeterProtocol as P
from server.places.models import Site
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_site
from workers.sim.run import SimConfig, Simulation

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Tuesday 2026-03-03 10:00 in Shanghai: a workday, outside the night window.
WORKDAY_10AM = datetime(2026, 3, 3, 10, 0, tzinfo=SHANGHAI)
_keys = itertools.count(1)


@dataclass
class Park:
    sim: Simulation
    site: Site
    meters: dict[str, Meter]  # address → meter row
    prefix: str

    def now(self) -> datetime:
        return self.sim.park.clock.now()


def make_config(meters: int, mqtt: tuple[str, int], start: datetime = WORKDAY_10AM) -> SimConfig:
    return SimConfig(
        meters=meters,
        speed=1.0,
        seed=7,
        start=start,
        dlt645_port=0,
        modbus_port=0,
        modbus_rtu_port=0,
        cjt188_port=0,
        mqtt_url=f"mqtt://{mqtt[0]}:{mqtt[1]}",
        mqtt_prefix=f"t{os.getpid()}-{uuid.uuid4().hex[:6]}/",
        gateway_size=5,
        gateway_period=3600.0,
        tick=3600.0,
    )


async def credit(account_id: int, amount_fen: int) -> str:
    key = f"test-credit-{next(_keys)}-{uuid.uuid4().hex[:6]}"
    await ledger.recharge(account_id, Channel.CASH, amount_fen, key=key, actor="staff:1")
    return key


async def register(
    sim: Simulation, balance_fen: int = 10_000, price: str = "0.6583", water: str = "4.90"
) -> Park:
    """One site, one account per meter (credited `balance_fen`, on flat tariffs at `price`
    per kWh and `water` per m³), gateways per bus."""
    site = await create_site()
    since = datetime(2026, 1, 1, tzinfo=SHANGHAI)
    plans = {
        MeterKind.ELECTRICITY: await create_plan(
            site.id, "电价", TariffKind.ELECTRICITY,
            {"kind": "flat", "unit": "kWh", "price": price}, effective_from=since, actor="staff:1",
        ),
        MeterKind.WATER: await create_plan(
            site.id, "水价", TariffKind.WATER,
            {"kind": "flat", "unit": "m³", "price": water}, effective_from=since, actor="staff:1",
        ),
    }  # fmt: skip
    gateways: dict[tuple[str, str, int], Gateway] = {}
    meters: dict[str, Meter] = {}
    for address, ep in sim.directory.items():
        sm = sim.park.meters[address]
        code = ep.gateway or f"{ep.protocol.value}-{ep.port}"
        kind = {
            P.MQTT_GATEWAY: GatewayKind.MQTT,
            P.MODBUS_TCP: GatewayKind.MODBUS_TCP,
            P.MODBUS_RTU_TCP: GatewayKind.MODBUS_TCP,
        }.get(ep.protocol, GatewayKind.TCP_TRANSPARENT)
        key = (code, ep.host, ep.port)
        if key not in gateways:
            gateways[key] = await Gateway.create(
                site=site, code=code, kind=kind, host=ep.host, port=ep.port, online=True
            )
        account = await create_account(site=site)
        await assign(account.id, plans[sm.kind].id)
        if balance_fen:
            await credit(account.id, balance_fen)
        meters[address] = await Meter.create(
            site=site,
            account=account,
            gateway=gateways[key],
            kind=sm.kind,
            model=ep.model or ("LXSY" if sm.kind is MeterKind.WATER else "DDSU666"),
            protocol=ep.protocol,
            address=address,
            unit=ep.slave or 0,
            rated_kw=sm.rated_kw,
            billing=MeterBilling.METER if sm.meter_billing else MeterBilling.PLATFORM,
            protected=sm.protected,
            purchase_count=sm.purchase_count,
            online=True,
        )
    return Park(sim=sim, site=site, meters=meters, prefix=sim.config.mqtt_prefix)


@pytest.fixture
async def sim(mqtt_broker: tuple[str, int]) -> AsyncIterator[Simulation]:
    simulation = Simulation(make_config(30, mqtt_broker))
    await simulation.start()
    yield simulation
    await simulation.stop()


@pytest.fixture
async def park(db: None, sim: Simulation) -> Park:
    return await register(sim)


async def account_of(meter: Meter) -> Account:
    return await Account.get(id=meter.account_id)
