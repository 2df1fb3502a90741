"""Build a MeterDriver for a meter row, sharing one bus object per physical bus.

A bus is what carries one exchange at a time: a TCP transparent channel (DL/T 645, CJ/T 188
hub), a Modbus TCP / RTU-over-TCP connection (ModbusBus), or an MQTT gateway (commands to
one gateway are serialised by the controller; the GatewayClient is shared). `bus_key(meter)`
names it, so the collector can poll buses concurrently and the controller can keep one
command at a time per bus.

The meter's `gateway` row says where the bus is (host, port; for MQTT the gateway code).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from server.core.errors import ConfigError
from server.metering.models import Gateway, Meter
from workers.meters.base import MeterDriver
from workers.meters.base import MeterProtocol as P
from workers.meters.cjt188.driver import Cjt188Driver, cjt188_hub
from workers.meters.dlt645.driver import Dlt645Driver, dlt645_hub
from workers.meters.gateway.client import GatewayClient
from workers.meters.gateway.driver import GatewayDriver
from workers.meters.hub import Hub
from workers.meters.modbus.driver import ModbusBus, ModbusDriver
from workers.meters.modbus.maps import get_map


class NoRoute(Exception):
    """The meter row does not say how to reach it (no gateway, no MQTT client)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def clock_from_spec(spec: str, wall: Callable[[], float] = time.time) -> Callable[[], datetime]:
    """The simulator's clock from SHUIDIAN_SIM_CLOCK (`START/EPOCH/SPEED`, printed by
    `shuidian simulate`; see `SimClock.spec`), or the wall clock when `spec` is empty. Meters
    stamp their readings with their own clock; a sped-up simulator's "own clock" runs fast."""
    if not spec:
        return _utc_now
    try:
        start_s, epoch_s, speed_s = spec.split("/")
        start, epoch, speed = datetime.fromisoformat(start_s), float(epoch_s), float(speed_s)
    except ValueError:
        raise ConfigError(f"SHUIDIAN_SIM_CLOCK: START/EPOCH/SPEED expected, not {spec!r}") from None

    def now() -> datetime:
        return start + timedelta(seconds=(wall() - epoch) * speed)

    return now


def bus_key(meter: Meter) -> str:
    gw: Gateway | None = meter.gateway
    if gw is None:
        return f"none:{meter.id}"
    if meter.protocol == P.MQTT_GATEWAY:
        return f"mqtt:{gw.code}"
    return f"{meter.protocol}:{gw.host}:{gw.port}"


class DriverRegistry:
    """Drivers for meter rows (which must have `gateway` fetched)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = _utc_now,
        gateway_client: GatewayClient | None = None,
        timeout: float = 1.0,
        gateway_timeout: float = 5.0,
    ) -> None:
        self.clock, self.gateway_client = clock, gateway_client
        self.timeout, self.gateway_timeout = timeout, gateway_timeout
        self._hubs: dict[str, Hub] = {}
        self._modbus: dict[str, ModbusBus] = {}

    def driver(self, meter: Meter) -> MeterDriver:
        gw: Gateway | None = meter.gateway
        if gw is None:
            raise NoRoute(f"meter {meter.id} has no gateway/bus")
        key, proto = bus_key(meter), P(meter.protocol)
        if proto is P.DLT645:
            hub = self._hub(key, lambda: dlt645_hub(gw.host, gw.port, timeout=self.timeout))
            return Dlt645Driver(hub, meter.address, clock=self.clock)
        if proto is P.CJT188:
            hub = self._hub(key, lambda: cjt188_hub(gw.host, gw.port, timeout=self.timeout))
            return Cjt188Driver(hub, meter.address, clock=self.clock)
        if proto in (P.MODBUS_TCP, P.MODBUS_RTU_TCP):
            bus = self._modbus.get(key)
            if bus is None:
                rtu = proto is P.MODBUS_RTU_TCP
                bus = self._modbus[key] = ModbusBus(gw.host, gw.port, rtu=rtu, timeout=self.timeout)
            return ModbusDriver(bus, meter.unit, get_map(meter.model), meter.address, self.clock)
        if self.gateway_client is None:
            raise NoRoute(f"meter {meter.id} is behind MQTT gateway {gw.code}: no client")
        return GatewayDriver(
            self.gateway_client,
            gw.code,
            meter.address,
            timeout=self.gateway_timeout,
            now=self.clock,
        )

    def _hub(self, key: str, make: Callable[[], Hub]) -> Hub:
        hub = self._hubs.get(key)
        if hub is None:
            hub = self._hubs[key] = make()
        return hub

    async def close(self) -> None:
        for hub in self._hubs.values():
            await hub.close()
        for bus in self._modbus.values():
            bus.close()
        self._hubs.clear()
        self._modbus.clear()
