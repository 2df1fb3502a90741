"""The simulated meter core: registers, a TOU calendar, meter-side billing and the relay.

Design
------
`SimMeter.advance(now)` integrates energy since the previous call, chunked at every whole
local hour so each chunk lies in one tariff band and gets a fresh power sample.

Exactness: energy is accumulated as kW·s (power has 4 decimals, elapsed seconds 6, so the
product is an exact Decimal). One register step of 0.01 kWh is 36 kW·s; whole steps move to
`total` and the current band, the rest stays in a carry, so nothing is lost or rounded.
Money follows the same idea: 0.01 kWh at `p` yuan/kWh costs exactly `p` fen, whole fen leave
`remaining_fen`, sub-fen stays in a carry. Over any period the money taken equals the sum of
band use × band price, floored to the fen once.

Choices (documented for the platform, see docs/dlt645.md):
- `remaining_fen` is signed; below zero it is the overdrawn amount (DL/T 645 reports it as
  remaining 00900200 = 0 and overdrawn 00900201 > 0).
- A meter-billed meter trips when `remaining_fen <= -overdraft_fen` unless 保电 (protected).
- TRIP under 保电 is refused; CLOSE / CLOSE_ALLOWED while the balance is still at the trip
  level is refused (error "other") unless protected — the meter would trip again at once.
- CLOSE_ALLOWED leaves the relay open until someone presses the button (`press_button`).
  Meters with `close_now_supported=False` refuse CLOSE (1C) and only accept CLOSE_ALLOWED.
- After a recharge lifts the balance above the trip level, a meter that tripped for money
  closes by itself when `auto_close` is True (the demo default), otherwise it becomes
  close-allowed and waits for the button, like most real prepaid meters.
- PROTECT_ON closes the relay (保电 means power stays on); PROTECT_OFF only clears the flag.
- Water meters have no bands and one price, kept under band 3 (flat).
- Maximum demand (最大需量, electricity): the average power of each 15-minute interval on the
  clock (block demand, the DL/T 645 default 需量周期), the highest one of the settlement
  period and the end of its interval; the meter settles at 00:00 on the 1st (local), when
  the period's maximum becomes the previous period's (上1结算日) and a new period starts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from workers.meters.base import (
    Instant,
    MeterKind,
    MeterSnapshot,
    MeterStatus,
    MoneyRegister,
    Reading,
    RelayAction,
    RelayState,
)
from workers.sim.profiles import SHANGHAI, LoadProfile, power_kw

REGISTER_STEP = Decimal("0.01")  # kWh / m³
KWS_PER_STEP = Decimal(36)  # 0.01 kWh = 36 kW·s
PRICE_STEP = Decimal("0.0001")
ELECTRIC_BANDS = (1, 2, 3, 4)
WATER_BAND = 3
DEMAND_PERIOD = timedelta(minutes=15)
DEMAND_STEP = Decimal("0.0001")  # kW, DL/T 645 XX.XXXX

# DL/T 645 error byte bits, reused as SimRefused codes.
ERR_OTHER = 0x01
ERR_NO_DATA = 0x02
ERR_AUTH = 0x04

DEFAULT_PRICES = {
    1: Decimal("1.2000"),
    2: Decimal("0.9500"),
    3: Decimal("0.6500"),
    4: Decimal("0.3500"),
}


class SimRefused(Exception):
    """The simulated meter said no; `code` is the DL/T 645 error byte it answers with."""

    def __init__(self, message: str, code: int = ERR_OTHER) -> None:
        super().__init__(message)
        self.code = code


class SimRechargeRefused(SimRefused):
    """Recharge refused: purchase count not last + 1 (and not a repeat of the last one)."""


def _seconds(delta: timedelta) -> Decimal:
    """Exact seconds of a timedelta as a Decimal (microsecond resolution)."""
    whole = delta.days * 86400 + delta.seconds
    return Decimal(whole) + Decimal(delta.microseconds).scaleb(-6)


def _floor_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


@dataclass
class SimMeter:
    address: str
    kind: MeterKind
    profile: LoadProfile
    rated_kw: Decimal
    meter_billing: bool
    total: Decimal = Decimal("0.00")
    bands: dict[int, Decimal] = field(default_factory=dict)
    remaining_fen: int = 0
    purchase_count: int = 0
    prices: dict[int, Decimal] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    alarm_1_fen: int = 2000
    alarm_2_fen: int = 500
    overdraft_fen: int = 0
    relay: RelayState = RelayState.CLOSED
    protected: bool = False
    voltage: Decimal = Decimal("220.0")
    current: Decimal = Decimal("0.000")
    power: Decimal = Decimal("0.0000")
    power_factor: Decimal = Decimal("1.000")
    online: bool = True
    auto_close: bool = True
    close_now_supported: bool = True
    seed: int = 0
    last_advance: datetime | None = None
    close_allowed_pending: bool = False
    demand_kw: Decimal = Decimal("0.0000")  # this settlement period's maximum demand
    demand_at: datetime | None = None  # the end of its interval
    last_demand_kw: Decimal = Decimal("0.0000")  # the period before (上1结算日)
    last_demand_at: datetime | None = None
    _window: datetime | None = field(default=None, init=False, repr=False)
    _window_kws: Decimal = field(default=Decimal(0), init=False, repr=False)
    _period: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _kws_carry: Decimal = field(default=Decimal(0), init=False, repr=False)
    _fen_carry: Decimal = field(default=Decimal(0), init=False, repr=False)
    _tripped_for_money: bool = field(default=False, init=False, repr=False)
    _last_recharge: tuple[int, int, MoneyRegister] | None = field(
        default=None, init=False, repr=False
    )
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.address) != 12 or not self.address.isdigit():
            raise ValueError(f"address must be 12 decimal digits: {self.address!r}")
        self._rng = random.Random(f"{self.seed}:{self.address}")
        self.total = Decimal(self.total).quantize(REGISTER_STEP)
        if self.kind is MeterKind.ELECTRICITY:
            if not self.bands:
                self.bands = {b: Decimal("0.00") for b in ELECTRIC_BANDS}
                self.bands[3] = self.total  # history before the simulation counts as flat
            if sum(self.bands.values()) != self.total:
                raise ValueError("bands must sum to total")
            self.power_factor = Decimal("0.950")
        else:
            self.bands = {}
            self.voltage = Decimal("0.0")
            self.power_factor = Decimal("0.000")

    # -- calendar -------------------------------------------------------------------------
    def band_at(self, local_dt: datetime) -> int:
        """TOU band: valley 23–7, sharp 19–21 in July/August, peak 8–11 & 17–22, else flat."""
        t = local_dt.astimezone(SHANGHAI)
        h = t.hour
        if self.kind is MeterKind.WATER:
            return WATER_BAND
        if h >= 23 or h < 7:
            return 4
        if t.month in (7, 8) and 19 <= h < 21:
            return 1
        if 8 <= h < 11 or 17 <= h < 22:
            return 2
        return 3

    # -- time -----------------------------------------------------------------------------
    def advance(self, now: datetime) -> None:
        """Integrate use from the last call to `now`, in chunks that end on whole hours."""
        if self.last_advance is None or now <= self.last_advance:
            if self.last_advance is None:
                self.last_advance = now
                self._sample(now)
            return
        t = self.last_advance
        while t < now:
            local = t.astimezone(SHANGHAI)
            hour_end = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            end = min(now, hour_end)
            self._sample(t)
            self._integrate(self.band_at(t), _seconds(end - t))
            self._demand(t, end)
            self._check_trip()
            t = end
        self.last_advance = now
        self._sample(now)

    def _sample(self, at: datetime) -> None:
        """Set the instant values (power, current, voltage) for time `at`."""
        if self.relay is not RelayState.CLOSED:
            self.power, self.current = Decimal("0.0000"), Decimal("0.000")
            return
        self.power = power_kw(self.profile, at, self.rated_kw, self._rng)
        if self.kind is MeterKind.WATER:
            return
        self.voltage = Decimal(f"{self._rng.uniform(215.0, 232.0):.1f}")
        self.power_factor = Decimal(f"{self._rng.uniform(0.86, 0.99):.3f}")
        amps = self.power * 1000 / (self.voltage * self.power_factor)
        self.current = amps.quantize(Decimal("0.001"))

    def _integrate(self, band: int, seconds: Decimal) -> None:
        if self.relay is not RelayState.CLOSED:
            return
        self._kws_carry += self.power * seconds
        steps = _floor_int(self._kws_carry / KWS_PER_STEP)
        if steps <= 0:
            return
        self._kws_carry -= steps * KWS_PER_STEP
        used = steps * REGISTER_STEP
        self.total += used
        if self.kind is MeterKind.ELECTRICITY:
            self.bands[band] += used
        if self.meter_billing:
            # 0.01 kWh × price yuan/kWh = price fen, exactly.
            self._fen_carry += steps * self.prices.get(band, Decimal(0))
            whole = _floor_int(self._fen_carry)
            self._fen_carry -= whole
            self.remaining_fen -= whole

    def _demand(self, start: datetime, end: datetime) -> None:
        """Add [start, end) at the present power to the demand intervals it falls in."""
        if self.kind is not MeterKind.ELECTRICITY:
            return
        power = self.power if self.relay is RelayState.CLOSED else Decimal(0)
        t = start
        while t < end:
            local = t.astimezone(SHANGHAI)
            window = local.replace(minute=local.minute - local.minute % 15, second=0,
                                   microsecond=0)  # fmt: skip
            if window != self._window:
                self._window, self._window_kws = window, Decimal(0)
            stop = min(end, window + DEMAND_PERIOD)
            self._window_kws += power * _seconds(stop - t)
            if stop == window + DEMAND_PERIOD:
                self._close_window(window)
            t = stop

    def _close_window(self, window: datetime) -> None:
        period = (window.year, window.month)
        if self._period is not None and period != self._period:  # settled on the 1st
            self.last_demand_kw, self.last_demand_at = self.demand_kw, self.demand_at
            self.demand_kw, self.demand_at = Decimal("0.0000"), None
        self._period = period
        kw = (self._window_kws / _seconds(DEMAND_PERIOD)).quantize(DEMAND_STEP, ROUND_FLOOR)
        if kw > self.demand_kw or self.demand_at is None:
            self.demand_kw, self.demand_at = kw, window + DEMAND_PERIOD
        self._window = None

    def _at_trip_level(self) -> bool:
        return self.meter_billing and self.remaining_fen <= -self.overdraft_fen

    def _check_trip(self) -> None:
        if self.relay is RelayState.CLOSED and self._at_trip_level() and not self.protected:
            self.relay = RelayState.OPEN
            self._tripped_for_money = True
            self.power, self.current = Decimal("0.0000"), Decimal("0.000")

    # -- commands -------------------------------------------------------------------------
    def relay_action(self, action: RelayAction) -> MeterStatus:
        """Carry out a relay/保电 command; raises SimRefused when the meter says no."""
        if action is RelayAction.TRIP:
            if self.protected:
                raise SimRefused("保电状态下不能跳闸")
            self.relay = RelayState.OPEN
            self.close_allowed_pending = False
            self._tripped_for_money = False
        elif action in (RelayAction.CLOSE, RelayAction.CLOSE_ALLOWED):
            if self._at_trip_level() and not self.protected:
                raise SimRefused("余额不足，不能合闸")
            if action is RelayAction.CLOSE and not self.close_now_supported:
                raise SimRefused("本表只支持允许合闸", ERR_AUTH)
            if action is RelayAction.CLOSE:
                self._close()
            elif self.relay is not RelayState.CLOSED:
                self.close_allowed_pending = True
        elif action is RelayAction.PROTECT_ON:
            self.protected = True
            self._close()
        elif action is RelayAction.PROTECT_OFF:
            self.protected = False
        return self.status()

    def _close(self) -> None:
        self.relay = RelayState.CLOSED
        self.close_allowed_pending = False
        self._tripped_for_money = False

    def press_button(self) -> bool:
        """A person presses the meter's button: closes if close-allowed. Returns closed?"""
        if self.close_allowed_pending and not (self._at_trip_level() and not self.protected):
            self._close()
        return self.relay is RelayState.CLOSED

    def recharge(self, amount_fen: int, count: int) -> MoneyRegister:
        """Add money; `count` must be purchase_count + 1, a repeat returns the first result."""
        last = self._last_recharge
        if last is not None and (amount_fen, count) == last[:2]:
            return last[2]
        if amount_fen <= 0:
            raise SimRechargeRefused("充值金额必须大于零")
        if count != self.purchase_count + 1:
            raise SimRechargeRefused(
                f"购电次数不符: 表内 {self.purchase_count}, 请求 {count}", ERR_OTHER
            )
        self.remaining_fen += amount_fen
        self.purchase_count = count
        if self._tripped_for_money and not self._at_trip_level():
            if self.auto_close:
                self._close()
            else:
                self.close_allowed_pending = True
        result = self.money()
        self._last_recharge = (amount_fen, count, result)
        return result

    def set_prices(self, prices: dict[int, Decimal]) -> None:
        allowed = (WATER_BAND,) if self.kind is MeterKind.WATER else ELECTRIC_BANDS
        for band, price in prices.items():
            if band not in allowed or price < 0:
                raise SimRefused(f"无效电价: 费率{band} {price}", ERR_NO_DATA)
        for band, price in prices.items():
            self.prices[band] = Decimal(price).quantize(PRICE_STEP)

    def set_alarm_amounts(self, alarm_1_fen: int, alarm_2_fen: int) -> None:
        if not 0 <= alarm_2_fen <= alarm_1_fen:
            raise SimRefused("报警金额须满足 0 ≤ 报警2 ≤ 报警1")
        self.alarm_1_fen, self.alarm_2_fen = alarm_1_fen, alarm_2_fen

    # -- reads ----------------------------------------------------------------------------
    def money(self) -> MoneyRegister:
        return MoneyRegister(remaining_fen=self.remaining_fen, purchase_count=self.purchase_count)

    def reading(self, now: datetime) -> Reading:
        return Reading(now, self.total, dict(self.bands))

    def instant(self) -> Instant:
        return Instant(
            voltage=self.voltage,
            current=self.current,
            power=self.power,
            power_factor=self.power_factor,
        )

    def status(self) -> MeterStatus:
        billing = self.meter_billing
        return MeterStatus(
            relay=self.relay,
            protected=self.protected,
            alarm_1=billing and self.remaining_fen <= self.alarm_1_fen,
            alarm_2=billing and self.remaining_fen <= self.alarm_2_fen,
            owing=billing and self.remaining_fen <= 0,
        )

    def snapshot(self, now: datetime) -> MeterSnapshot:
        return MeterSnapshot(
            address=self.address,
            reading=self.reading(now),
            status=self.status(),
            instant=self.instant(),
            money=self.money() if self.meter_billing else None,
        )
