"""Fleet poll: every enabled device of a Site read concurrently into one Snapshot.

Concurrency is bounded (``poll.max_concurrency`` devices in flight); each device's poll runs
under its circuit breaker, so a dead device costs nothing once its breaker is open and a slow
one costs only its own timeout, in parallel with the rest. A device whose poll fails keeps its
last reading (with its ``read_at``) and its health says why.

Meant to run every 10 s for months: the poller keeps a fixed amount of state per device (the
latest reading, counters, the last error text) and nothing that grows per poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from adapters.breaker import BreakerOpenError
from adapters.bridge import CommsError, DeviceLink, ModbusBridge
from adapters.devices import DeviceDataError, Driver, driver_for
from adapters.snapshot import CommsHealth, DeviceState, Reading, Snapshot
from adapters.sunspec.models import SunSpecError
from vpp.core.clock import Clock, SystemClock
from vpp.core.site import Site

log = logging.getLogger(__name__)

#: Failures that are the device's fault; anything else is logged with its traceback.
EXPECTED_ERRORS = (CommsError, DeviceDataError, SunSpecError)


@dataclass(slots=True)
class _Tracked:
    """Mutable per-device state between polls (one per device, never more)."""

    device: Any
    link: DeviceLink
    driver: Driver
    reading: Reading | None = None
    read_at: datetime | None = None
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    consecutive_failures: int = 0
    error_count: int = 0
    last_error: str | None = None
    latency_s: float | None = None

    def state(self) -> DeviceState:
        health = CommsHealth(
            last_success=self.last_success,
            last_attempt=self.last_attempt,
            consecutive_failures=self.consecutive_failures,
            error_count=self.error_count,
            breaker=self.link.breaker.state,
            last_error=self.last_error,
            latency_s=self.latency_s,
        )
        return DeviceState(
            id=self.device.id,
            kind=str(self.device.kind),
            reading=self.reading,
            health=health,
            read_at=self.read_at,
        )


T = TypeVar("T")


def round_robin(items: Iterable[T], gateway: Callable[[T], Hashable]) -> list[T]:
    """``items`` in round-robin order over their gateway (``host:port``), each gateway's own
    items in their given order.

    Devices behind one gateway share its few connections; taking them in config order would
    put every worker in the queue of the first gateway while the others sit idle.
    """
    queues: dict[Hashable, list[T]] = {}
    for item in items:
        queues.setdefault(gateway(item), []).append(item)
    longest = max((len(q) for q in queues.values()), default=0)
    return [q[i] for i in range(longest) for q in queues.values() if i < len(q)]


def _gateway(t: _Tracked) -> tuple[str, int]:
    return (t.device.modbus.host, t.device.modbus.port)


class FleetPoller:
    """Polls the enabled devices of ``site`` through ``bridge``.

    ``clock`` stamps snapshots and readings (UTC); ``max_concurrency`` overrides the site's
    ``poll.max_concurrency`` (devices polled at the same time).
    """

    def __init__(
        self,
        site: Site,
        bridge: ModbusBridge,
        clock: Clock | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.site = site
        self.bridge = bridge
        self.clock: Clock = clock or SystemClock()
        self.max_concurrency = max_concurrency or site.poll.max_concurrency
        self._tracked: dict[str, _Tracked] = {}
        for device in site.devices:
            if device.enabled:
                link = bridge.link(device.id, device.modbus, site.poll)
                self._tracked[device.id] = _Tracked(device, link, driver_for(device, link))
        self._order = round_robin(self._tracked.values(), _gateway)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tracked)

    def driver(self, device_id: str) -> Driver:
        """The driver of an enabled device (KeyError naming it otherwise)."""
        try:
            return self._tracked[device_id].driver
        except KeyError:
            raise KeyError(
                f"no enabled device {device_id!r} in site {self.site.site.name!r}"
            ) from None

    def gateway(self, device_id: str) -> tuple[str, int] | None:
        """``(host, port)`` of an enabled device, None for any other id."""
        tracked = self._tracked.get(device_id)
        return None if tracked is None else _gateway(tracked)

    def snapshot(self) -> Snapshot:
        """The process image as of the last poll, without polling."""
        return Snapshot(self.clock.now(), {i: t.state() for i, t in self._tracked.items()})

    async def poll(self) -> Snapshot:
        """Poll every enabled device once, at most ``max_concurrency`` at a time."""
        started = self.clock.now()
        queue = iter(self._order)

        async def worker() -> None:
            for tracked in queue:  # workers share the iterator: each device polled once
                await self._poll_one(tracked)

        workers = min(self.max_concurrency, len(self._tracked))
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
        return Snapshot(started, {i: t.state() for i, t in self._tracked.items()})

    async def poll_device(self, device_id: str) -> DeviceState:
        """Poll one device now (e.g. right after a control write)."""
        if device_id not in self._tracked:
            self.driver(device_id)  # raises the KeyError with the message
        tracked = self._tracked[device_id]
        await self._poll_one(tracked)
        return tracked.state()

    async def _poll_one(self, t: _Tracked) -> None:
        """Poll one device; never raises (except on cancellation)."""
        t0 = time.monotonic()
        attempt_at = self.clock.now()
        try:
            async with t.link.attempt():
                try:
                    reading = await t.driver.read()
                except BaseException:
                    t.driver.forget()
                    raise
        except BreakerOpenError as exc:
            t.last_error = str(exc)  # skipped: no I/O, so no attempt and no new failure
            return
        except Exception as exc:
            self._failed(t, exc, attempt_at)
            return
        t.last_attempt = attempt_at
        if t.consecutive_failures:
            log.info("%s: polled again after %d failures", t.device.id, t.consecutive_failures)
        t.reading, t.read_at, t.last_success = reading, self.clock.now(), attempt_at
        t.consecutive_failures, t.last_error = 0, None
        t.latency_s = time.monotonic() - t0

    def _failed(self, t: _Tracked, exc: Exception, attempt_at: datetime) -> None:
        message = str(exc) or type(exc).__name__
        if not message.startswith(f"{t.device.id}:"):
            message = f"{t.device.id}: {message}"
        if not t.consecutive_failures:  # log transitions, not every failed poll for months
            if isinstance(exc, EXPECTED_ERRORS):
                log.warning("%s", message)
            else:
                log.error("%s", message, exc_info=exc)
        t.last_attempt = attempt_at
        t.consecutive_failures += 1
        t.error_count += 1
        t.last_error = message
