"""The controller: named jobs (poll, plan, dispatch, correct, keepalive, watchdog) over one
shared :class:`~vpp.control.state.ControllerState`.

Each job is a plain coroutine method that the scheduler, the CLI, replay and the tests call
alike: it reads the :class:`~vpp.control.plant.Plant`, asks the pure cycle
(:mod:`vpp.control.cycle`) what to do, and writes what it returns. A job never raises:
failures become events, counters and metrics, and the next run tries again. The clock and the
plant are injected, so ``vpp run`` (APScheduler, Modbus fleet), a fast demo, replay (manual
clock, plant model) and a test run the same code.

The job bodies live by responsibility in :mod:`~vpp.control.tracking` (poll, online
tracking, accounting), :mod:`~vpp.control.planning` (plan), :mod:`~vpp.control.applying`
(dispatch, correct, keepalive and the bookkeeping of every write),
:mod:`~vpp.control.signalling` (signals, compliance) and :mod:`~vpp.control.upkeep`
(watchdog); events and records are in :mod:`~vpp.control.recording`; the state they share
and what each job reads of it (the plan's row now, the caps in force) in
:mod:`~vpp.control.base`. This module puts them together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from vpp.control.signalling import Signalling
from vpp.control.tracking import Tracking
from vpp.control.upkeep import Upkeep

log = logging.getLogger("vpp.control")


JOB_NAMES = ("poll", "plan", "dispatch", "correct", "keepalive", "watchdog", "signals")


class Controller(Tracking, Signalling, Upkeep):
    """Everything a control cycle needs (the fields are those of
    :class:`~vpp.control.base.ControllerBase`; ``recorder`` and ``metrics`` are optional)."""

    # -- job plumbing -------------------------------------------------------------------

    async def run_job(self, name: str) -> bool:
        """Run one named job with its statistics; True when it succeeded."""
        job: Callable[[], Awaitable[None]] = getattr(self, name)
        stats = self.state.job(name)
        stats.last_start = self.clock.now()
        started = time.perf_counter()
        ok = True
        try:
            await job()
        except Exception as exc:  # a job must never stop the controller
            ok = False
            stats.failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", name)
            self.event("error", name, "job_failed", f"job {name} failed: {stats.last_error}")
        stats.runs += 1
        stats.last_duration_s = time.perf_counter() - started
        stats.total_s += stats.last_duration_s
        if self.metrics is not None:
            self.metrics.observe_job(name, stats.last_duration_s)
        return ok
