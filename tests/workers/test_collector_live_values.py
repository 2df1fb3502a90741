"""The collector's cadence for live values: polled buses read U/I/P/PF (the drivers'
`read_snapshot`) every Nth round and the cheaper `read_billing` otherwise; gateways' values are
kept from every Nth round (a round: one ts_collect, however many messages carry it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from server.metering.models import GatewayKind, LiveValues, Meter
from tests.factories import create_account, create_gateway, create_meter
from workers.collector import Collector
from workers.meters.base import Instant, MeterSnapshot, MeterStatus, Reading, RelayState
from workers.meters.base import MeterProtocol as P
from workers.meters.gateway.schemas import DataMessage, MeterReading, Source

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


class FakeDriver:
    def __init__(self, registry: FakeRegistry, meter: Meter) -> None:
        self.registry, self.meter = registry, meter

    def _snap(self, instant: Instant | None) -> MeterSnapshot:
        minutes = (self.registry.clock() - T0) // timedelta(minutes=1)
        return MeterSnapshot(
            self.meter.address,
            Reading(self.registry.clock(), Decimal(100) + Decimal(minutes) / 100),
            MeterStatus(RelayState.CLOSED),
            instant,
        )

    async def read_snapshot(self) -> MeterSnapshot:
        self.registry.calls.append("snapshot")
        return self._snap(Instant(Decimal("220.0"), Decimal(minutes_of(self.registry.clock()))))

    async def read_billing(self) -> MeterSnapshot:
        self.registry.calls.append("billing")
        return self._snap(None)


def minutes_of(at: datetime) -> int:
    return (at - T0) // timedelta(minutes=1)


class FakeRegistry:
    def __init__(self, clock: Clock) -> None:
        self.clock, self.calls = clock, []  # type: ignore[var-annotated]

    def driver(self, meter: Meter) -> FakeDriver:
        return FakeDriver(self, meter)


async def test_polled_buses_read_instant_values_every_nth_round(db: None) -> None:
    account = await create_account()
    bus = await create_gateway(
        kind=GatewayKind.TCP_TRANSPARENT, host="10.0.0.9", port=8899, site_id=account.site_id
    )
    meter = await create_meter(account, gateway=bus, rated_kw=Decimal(20))
    clock = Clock()
    registry = FakeRegistry(clock)
    collector = Collector(registry, clock=clock, live_every_poll=3)  # type: ignore[arg-type]
    seen = []
    for _ in range(4):
        clock.at += timedelta(minutes=15)
        await collector.poll_round()
        row = await LiveValues.get(meter_id=meter.id)
        seen.append((minutes_of(row.read_at), minutes_of(row.instant_at), row.current))
    assert registry.calls == ["snapshot", "billing", "billing", "snapshot"]
    assert seen == [
        (15, 15, Decimal("15.0000")),
        (15, 15, Decimal("15.0000")),  # billing-only rounds leave the live row alone
        (15, 15, Decimal("15.0000")),
        (60, 60, Decimal("60.0000")),
    ]


def _message(seq: int, at: datetime, addrs: list[str], current: str) -> DataMessage:
    return DataMessage(
        msgid=f"m{seq}",
        seq=seq,
        src=Source.REALTIME,
        ts_collect=at,
        ts_send=at,
        meters=[
            MeterReading(
                addr=a,
                total=Decimal(100) + Decimal(seq),
                relay=RelayState.CLOSED,
                u=Decimal("230.0"),
                i=Decimal(current),
            )
            for a in addrs
        ],
    )


async def test_gateway_values_are_kept_from_every_nth_round(db: None) -> None:
    account = await create_account()
    gw = await create_gateway(site_id=account.site_id)
    meters = [
        await create_meter(
            account,
            gateway=gw,
            protocol=P.MQTT_GATEWAY,
            address=f"00000000000{i}",
            rated_kw=Decimal(20),
        )
        for i in (1, 2)
    ]
    clock = Clock()
    collector = Collector(FakeRegistry(clock), clock=clock, live_every_gateway=2)  # type: ignore[arg-type]
    t1, t2, t3 = (T0 + timedelta(minutes=15 * k) for k in (1, 2, 3))
    # Round 1 in two messages (a big gateway splits a round), then rounds 2 and 3.
    await collector.on_data(gw.code, _message(1, t1, [meters[0].address], "1"))
    await collector.on_data(gw.code, _message(2, t1, [meters[1].address], "1"))
    await collector.on_data(gw.code, _message(3, t2, [m.address for m in meters], "2"))
    await collector.flush()
    rows = await LiveValues.all().order_by("meter_id")
    assert [(r.read_at, r.instant_at, r.current) for r in rows] == [(t1, t1, Decimal(1))] * 2
    await collector.on_data(gw.code, _message(4, t3, [m.address for m in meters], "3"))
    await collector.flush()
    rows = await LiveValues.all().order_by("meter_id")
    assert [(r.read_at, r.instant_at, r.current) for r in rows] == [(t3, t3, Decimal(3))] * 2
