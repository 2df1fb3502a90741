"""MeterDriver for one meter behind an MQTT gateway: every call is a command and its ack.

The gateway answers each command with an ack that carries the meter's reading after the
operation, so reads are `op=read` commands and a relay command returns the status the meter
reports. No ack within `timeout` → `MeterUnreachable` (gateway offline, link down, command
dropped). The command's `expires_at` tells a gateway that comes back late not to run it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from workers.meters.base import (
    Instant,
    MeterRejected,
    MeterSnapshot,
    MeterStatus,
    MeterUnreachable,
    MoneyRegister,
    Reading,
    RechargeRefused,
    RelayAction,
)
from workers.meters.gateway.client import GatewayClient
from workers.meters.gateway.schemas import AckError, Command, MeterReading, Op


class GatewayDriver:
    """One meter (`addr`) behind gateway `gw`, reached through a shared GatewayClient."""

    def __init__(
        self,
        client: GatewayClient,
        gw: str,
        addr: str,
        *,
        timeout: float = 10.0,
        ttl: timedelta = timedelta(minutes=5),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client, self.gw, self.addr = client, gw, addr
        self.timeout, self.ttl, self._now = timeout, ttl, now

    async def _command(self, op: Op, **fields: object) -> MeterReading:
        cmd = Command(
            cmd_id=uuid.uuid4().hex,
            expires_at=self._now() + self.ttl,
            addr=self.addr,
            op=op,
            **fields,
        )
        try:
            ack = await self.client.request(self.gw, cmd, self.timeout)
        except TimeoutError as exc:
            raise MeterUnreachable(f"no ack from gateway {self.gw} for {op} {self.addr}") from exc
        if not ack.ok:
            text = f"gateway {self.gw} meter {self.addr} {op}: {ack.error} {ack.message or ''}"
            if ack.error is AckError.RECHARGE_REFUSED:
                raise RechargeRefused(text, code=ack.code)
            if ack.error is AckError.EXPIRED:
                raise MeterUnreachable(text)
            raise MeterRejected(text, code=ack.code)
        if ack.meter is None:
            raise MeterRejected(f"gateway {self.gw} acked {op} without a reading")
        return ack.meter

    async def read_energy(self) -> Reading:
        return (await self._command(Op.READ)).registers(self._now())

    async def read_instant(self) -> Instant:
        return (await self._command(Op.READ)).instant()

    async def read_money(self) -> MoneyRegister:
        money = (await self._command(Op.READ)).money()
        if money is None:
            raise MeterRejected(f"meter {self.addr} keeps no money register")
        return money

    async def read_status(self) -> MeterStatus:
        return (await self._command(Op.READ)).status()

    async def read_snapshot(self) -> MeterSnapshot:
        return (await self._command(Op.READ)).snapshot(self._now())

    async def relay(self, action: RelayAction) -> MeterStatus:
        return (await self._command(Op.RELAY, action=action)).status()

    async def write_prices(self, prices_yuan_per_kwh: dict[int, Decimal]) -> None:
        await self._command(Op.PRICES, prices=prices_yuan_per_kwh)

    async def write_alarm_amounts(self, alarm_1_fen: int, alarm_2_fen: int) -> None:
        await self._command(Op.ALARMS, alarm_1_fen=alarm_1_fen, alarm_2_fen=alarm_2_fen)

    async def write_recharge(self, amount_fen: int, purchase_count: int) -> MoneyRegister:
        reading = await self._command(Op.RECHARGE, amount_fen=amount_fen, count=purchase_count)
        money = reading.money()
        if money is None:
            raise MeterRejected(f"meter {self.addr} acked a recharge without its money register")
        return money
