"""A simulated park: many SimMeters on one SimClock, advanced together by a ticking task."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from workers.meters.base import MeterKind
from workers.sim.clock import SimClock
from workers.sim.meter import SimMeter
from workers.sim.profiles import LoadProfile

# Electricity profile mix for a mixed commercial/residential park, with rated kW ranges.
_MIX: tuple[tuple[LoadProfile, int, tuple[int, int]], ...] = (
    (LoadProfile.SHOP, 40, (3, 15)),
    (LoadProfile.OFFICE, 25, (5, 30)),
    (LoadProfile.APARTMENT, 35, (2, 8)),
)


@dataclass
class SimPark:
    meters: dict[str, SimMeter]
    clock: SimClock

    @classmethod
    def build(
        cls,
        n_meters: int,
        seed: int,
        start: datetime,
        speed: float,
        water_share: float = 0.1,
        meter_billing_share: float = 0.3,
    ) -> SimPark:
        """A deterministic park for `seed`: addresses 000000000001…, a factory or two,
        `water_share` water meters (last addresses), some meter-billed and a few 保电."""
        rng = random.Random(seed)
        n_water = round(n_meters * water_share)
        n_factories = 0 if n_meters < 10 else min(2, 1 + n_meters // 50)
        meters: dict[str, SimMeter] = {}
        for i in range(n_meters):
            address = f"{i + 1:012d}"
            if i >= n_meters - n_water:
                m = cls._water(address, rng, seed)
            else:
                m = cls._electric(address, rng, seed, i < n_factories, meter_billing_share)
            m.advance(start)
            meters[address] = m
        return cls(meters=meters, clock=SimClock(start, speed=speed))

    @staticmethod
    def _electric(
        address: str, rng: random.Random, seed: int, factory: bool, billing_share: float
    ) -> SimMeter:
        if factory:
            # Secondary-side values must fit DL/T 645 formats (XX.XXXX kW signed): <= 79 kW.
            profile, rated = LoadProfile.FACTORY, Decimal(rng.randint(30, 75))
        else:
            profiles, weights, ranges = zip(*_MIX, strict=True)
            k = rng.choices(range(len(profiles)), weights=weights)[0]
            profile, rated = profiles[k], Decimal(rng.randint(*ranges[k]))
        billing = not factory and rng.random() < billing_share
        total = Decimal(rng.randint(0, 5_000_000)).scaleb(-2)
        return SimMeter(
            address=address,
            kind=MeterKind.ELECTRICITY,
            profile=profile,
            rated_kw=rated,
            meter_billing=billing,
            total=total,
            remaining_fen=rng.randint(2_000, 60_000) if billing else 0,
            purchase_count=rng.randint(1, 40) if billing else 0,
            protected=factory or rng.random() < 0.03,
            seed=seed,
        )

    @staticmethod
    def _water(address: str, rng: random.Random, seed: int) -> SimMeter:
        return SimMeter(
            address=address,
            kind=MeterKind.WATER,
            profile=LoadProfile.WATER,
            rated_kw=Decimal(rng.choice(["0.6", "1.0", "1.5", "2.5"])),
            meter_billing=False,
            total=Decimal(rng.randint(0, 300_000)).scaleb(-2),
            prices={3: Decimal("4.9000")},
            seed=seed,
        )

    def advance_all(self) -> None:
        now = self.clock.now()
        for m in self.meters.values():
            m.advance(now)

    async def run(self, tick_seconds: float, stop: asyncio.Event) -> None:
        """Advance every meter each `tick_seconds` of real time until `stop` is set."""
        while not stop.is_set():
            self.advance_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_seconds)
        self.advance_all()
