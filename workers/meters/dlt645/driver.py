"""Dlt645Driver: one DL/T 645-2007 meter behind a Hub, implementing MeterDriver.

Reads use 0x11 and follow "more frames" with 0x12; writes use 0x14 with password and
operator code; relay and 保电 use 0x1C; recharges go through the SecurityProvider. An error
reply becomes MeterRejected(code) (RechargeRefused for a recharge); silence or a garbled
reply becomes MeterUnreachable (raised by the hub).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from workers.meters.base import (
    Instant,
    MaxDemand,
    MeterRejected,
    MeterSnapshot,
    MeterStatus,
    MeterUnreachable,
    MoneyRegister,
    Reading,
    RechargeRefused,
    RelayAction,
    RelayState,
)
from workers.meters.dlt645 import dataid as di
from workers.meters.dlt645.framer import (
    BROADCAST,
    BROADCAST_TIME,
    ERR_NO_DATA,
    READ,
    READ_ADDRESS,
    READ_MORE,
    WILDCARD,
    WRITE,
    Frame,
    build_frame,
    parse_frame,
)
from workers.meters.dlt645.security import (
    Plaintext,
    SecurityProvider,
    encode_operator,
    encode_password,
)
from workers.meters.hub import Hub

RELAY_N1 = {
    RelayAction.TRIP: 0x1A,
    RelayAction.CLOSE_ALLOWED: 0x1B,
    RelayAction.CLOSE: 0x1C,
    RelayAction.PROTECT_ON: 0x3A,
    RelayAction.PROTECT_OFF: 0x3B,
}
_MAX_FOLLOW_UPS = 16


def dlt645_hub(host: str, port: int, **kwargs: float) -> Hub:
    """A Hub that parses DL/T 645 frames."""
    return Hub(host, port, parse_frame, **kwargs)  # type: ignore[arg-type]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Dlt645Driver:
    def __init__(
        self,
        hub: Hub,
        address: str,
        security: SecurityProvider | None = None,
        password: str = "02000000",
        operator: str = "00000000",
        clock: Callable[[], datetime] = _utc_now,
        valid_for: timedelta = timedelta(hours=1),
    ) -> None:
        if len(address) != 12 or not address.isdigit():
            raise ValueError(f"DL/T 645 address must be 12 digits: {address!r}")
        self.hub, self.address = hub, address
        self.security: SecurityProvider = security or Plaintext()
        self._password, self._operator = encode_password(password), encode_operator(operator)
        self.clock, self.valid_for = clock, valid_for

    # -- exchanges ------------------------------------------------------------------------
    async def request(self, control: int, data: bytes = b"", echo: bytes = b"") -> Frame:
        """One exchange; returns the normal reply or raises MeterRejected on an error reply.

        `echo` is what a normal reply starts with (the DI), so a late reply to an earlier
        request for another DI is skipped instead of taken for this one.
        """
        wire = build_frame(Frame(self.address, control, data))

        def match(f: Frame) -> bool:
            if f.address != self.address or not f.is_reply or f.function != control:
                return False
            return f.is_error or f.data.startswith(echo)

        reply: Frame = await self.hub.exchange(wire, match, key=self.address)
        if reply.is_error:
            code = reply.error_code
            raise MeterRejected(
                f"表 {self.address} 拒绝命令 {control:02X}: 错误字 {code:02X}", code
            )
        return reply

    async def read_raw(self, data_id: int) -> bytes:
        """The value bytes of `data_id`, joined over follow-up frames."""
        raw_di = di.encode_di(data_id)
        reply = await self.request(READ, raw_di, echo=raw_di)
        value = reply.data[4:]
        seq = 0
        while reply.more_follows:
            seq += 1
            if seq > _MAX_FOLLOW_UPS:
                raise MeterUnreachable(f"表 {self.address}: too many follow-up frames")
            reply = await self.request(READ_MORE, raw_di + bytes([seq]), echo=raw_di)
            value += reply.data[4:-1]  # the last byte echoes SEQ
        return value

    async def read(self, data_id: int) -> object:
        raw = await self.read_raw(data_id)
        try:
            return di.decode_value(data_id, raw)
        except di.BadValue as exc:
            raise MeterUnreachable(
                f"表 {self.address}: bad value for {data_id:08X}: {exc}"
            ) from exc

    async def read_decimal(self, data_id: int) -> Decimal:
        value = await self.read(data_id)
        assert isinstance(value, Decimal)
        return value

    async def write(self, data_id: int, value: bytes) -> None:
        await self.request(WRITE, di.encode_di(data_id) + self._password + self._operator + value)

    # -- MeterDriver ----------------------------------------------------------------------
    async def read_energy(self) -> Reading:
        try:
            block = await self.read(di.ENERGY_BLOCK)
            assert isinstance(block, tuple)
            total, *bands = block
        except MeterRejected as exc:
            if exc.code != ERR_NO_DATA:
                raise
            # Meters without block reads: one DI at a time.
            total = await self.read_decimal(di.ENERGY_TOTAL)
            bands = [await self.read_decimal(d) for d in di.ENERGY_BANDS.values()]
        return Reading(self.clock(), total, dict(zip(di.ENERGY_BANDS, bands, strict=True)))

    async def read_instant(self) -> Instant:
        return Instant(
            voltage=await self.read_decimal(di.VOLTAGE_A),
            current=await self.read_decimal(di.CURRENT_A),
            power=await self.read_decimal(di.POWER_TOTAL),
            power_factor=await self.read_decimal(di.POWER_FACTOR),
        )

    async def read_money(self) -> MoneyRegister:
        remaining = await self.read_decimal(di.REMAINING_MONEY)
        overdrawn = await self.read_decimal(di.OVERDRAWN_MONEY)
        count = await self.read_decimal(di.PURCHASE_COUNT)
        fen = int((remaining - overdrawn).scaleb(2))
        return MoneyRegister(remaining_fen=fen, purchase_count=int(count))

    async def _status(self) -> tuple[MeterStatus, MoneyRegister | None]:
        word = await self.read(di.STATUS_3)
        assert isinstance(word, int)
        sw = di.StatusWord3.decode(word)
        relay = RelayState.OPEN if sw.relay_open else RelayState.CLOSED
        if not sw.money_prepaid:
            return MeterStatus(relay=relay, protected=sw.protected), None
        money = await self.read_money()
        alarm_1 = int((await self.read_decimal(di.ALARM_1)).scaleb(2))
        status = MeterStatus(
            relay=relay,
            protected=sw.protected,
            alarm_1=money.remaining_fen <= alarm_1,
            alarm_2=sw.pre_trip_alarm,
            owing=money.remaining_fen <= 0,
        )
        return status, money

    async def read_status(self) -> MeterStatus:
        return (await self._status())[0]

    async def read_snapshot(self) -> MeterSnapshot:
        reading = await self.read_energy()
        status, money = await self._status()
        instant = await self.read_instant()
        return MeterSnapshot(
            address=self.address,
            reading=reading,
            status=status,
            instant=instant,
            money=money,
        )

    async def read_billing(self) -> MeterSnapshot:
        """What a billing round needs: energy, status, money if meter-billed; no instant.

        Two frames for a platform-billed meter, six for a meter-billed one, where
        `read_snapshot` adds four instant-value frames the bill does not use.
        """
        reading = await self.read_energy()
        status, money = await self._status()
        return MeterSnapshot(address=self.address, reading=reading, status=status, money=money)

    async def read_max_demand(self, previous: bool = False) -> MaxDemand:
        """Forward active total maximum demand and when it happened: the current settlement
        period (01010000) or the one before (01010001, 上1结算日)."""
        value = await self.read(di.MAX_DEMAND_LAST if previous else di.MAX_DEMAND)
        assert isinstance(value, tuple)
        kw, at = value
        return MaxDemand(kw, at)

    async def relay(self, action: RelayAction) -> MeterStatus:
        valid_until = self.clock() + self.valid_for
        control, data = self.security.relay_request(
            self.address, RELAY_N1[action], valid_until, self._password, self._operator
        )
        await self.request(control, data)
        return await self.read_status()

    async def write_prices(self, prices_yuan_per_kwh: dict[int, Decimal]) -> None:
        for band, price in sorted(prices_yuan_per_kwh.items()):
            if band not in di.PRICES:
                raise ValueError(f"DL/T 645 meters take prices for bands 1–4, not {band}")
            await self.write(di.PRICES[band], di.encode_value(di.PRICES[band], price))

    async def write_alarm_amounts(self, alarm_1_fen: int, alarm_2_fen: int) -> None:
        for data_id, fen in ((di.ALARM_1, alarm_1_fen), (di.ALARM_2, alarm_2_fen)):
            await self.write(data_id, di.encode_value(data_id, Decimal(fen).scaleb(-2)))

    async def write_recharge(self, amount_fen: int, purchase_count: int) -> MoneyRegister:
        control, data = self.security.recharge_request(
            self.address, amount_fen, purchase_count, self._password, self._operator
        )
        try:
            await self.request(control, data)
        except MeterRejected as exc:
            raise RechargeRefused(
                f"表 {self.address} 拒绝充值 (购电次数 {purchase_count})", exc.code
            ) from exc
        return await self.read_money()


async def broadcast_time(hub: Hub, when: datetime) -> None:
    """0x08 to 99…99: every meter on the bus sets its clock; nobody answers."""
    await hub.send(build_frame(Frame(BROADCAST, BROADCAST_TIME, di.encode_time6(when))))


async def read_address(hub: Hub) -> str:
    """0x13 to AA…AA: the address of the single meter on the bus."""
    wire = build_frame(Frame(WILDCARD, READ_ADDRESS))

    def match(f: Frame) -> bool:
        return f.is_reply and f.function == READ_ADDRESS

    reply: Frame = await hub.exchange(wire, match, key="read-address")
    return reply.data[:6][::-1].hex() if len(reply.data) >= 6 else reply.address
