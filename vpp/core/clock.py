"""Injected clocks: the live loop, a fast demo and a replay run the same code at other speeds.

All clocks return timezone-aware UTC datetimes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """Time that runs ``speed`` times faster than the wall clock, starting at ``start``.

    ``origin`` (Unix seconds of the wall clock): the clock reads ``start`` at that wall time
    instead of when it is made, and follows the machine's wall clock (``wall``) rather
    than the process's monotonic one. Clocks of several processes given the same ``start``,
    ``speed`` and ``origin`` read the same time at the same moment (``vpp city-demo
    --speed``); without it each runs from its own making."""

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        origin: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if origin is not None and not math.isfinite(origin):
            raise ValueError(f"origin must be finite, got {origin}")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self.origin = origin
        self._elapsed: Callable[[], float]
        if origin is None:
            t0 = time.monotonic()
            self._elapsed = lambda: time.monotonic() - t0
        else:
            self._elapsed = lambda: wall() - origin

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._elapsed() * self.speed)

    def wall_seconds(self, sim_seconds: float) -> float:
        """Wall-clock seconds that ``sim_seconds`` of this clock's time take."""
        return sim_seconds / self.speed


class ManualClock:
    """A clock that only moves when told to (tests and replay)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock start must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)


def floor_quarter(when: datetime) -> datetime:
    """Start of the quarter hour containing ``when`` (:00/:15/:30/:45)."""
    return when.replace(minute=when.minute - when.minute % 15, second=0, microsecond=0)
