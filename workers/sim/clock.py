"""Simulated time: a start instant plus real elapsed time multiplied by a speed-up factor."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta


class SimClock:
    """Simulated wall clock; `real` is injectable so tests can drive time by hand."""

    def __init__(
        self, start: datetime, speed: float = 1.0, real: Callable[[], float] = time.time
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._real = real
        self._real0 = real()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        elapsed = (self._real() - self._real0) * self.speed
        return self.start + self._offset + timedelta(seconds=elapsed)

    def spec(self) -> str:
        """`START/EPOCH/SPEED` for SHUIDIAN_SIM_CLOCK: the platform stamps polled readings
        with this clock (`workers.registry.clock_from_spec`), as a real meter's clock would."""
        return f"{self.start.isoformat()}/{self._real0:.3f}/{self.speed:g}"

    def jump(self, delta: timedelta) -> None:
        """Move simulated time forward at once (demo "skip a day", tests)."""
        if delta < timedelta(0):
            raise ValueError("simulated time never goes backwards")
        self._offset += delta


class ManualClock:
    """A clock that only moves when told: `real` for SimClock in tests."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def tick(self, seconds: float) -> None:
        self.t += seconds
