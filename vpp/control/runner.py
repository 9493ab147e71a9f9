"""Running the controller: live under APScheduler, or stepped by a virtual clock.

``run_live`` is what ``vpp run`` does: it starts (optionally) the simulated fleet, the Modbus
bridge, the recorder, the HTTP server for metrics and the operator page, restores the last plan
and snapshot from the recorder, runs poll, plan and dispatch once, and then lets APScheduler run
the jobs of :mod:`vpp.control.schedule` until SIGINT/SIGTERM or ``stop`` is set. With a
:class:`~vpp.core.clock.ScaledClock` of speed K every job runs K times as often in wall time,
and the simulated devices follow the same clock.

``step`` runs the same jobs in the same order against a :class:`~vpp.core.clock.ManualClock`, for
tests and for replay: no sleeping, no wall-clock dependence.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from vpp.control.controller import Controller
from vpp.control.schedule import (
    PLAN_LEAD_S,
    JobSpec,
    correction_period_s,
    job_specs,
    poll_period_s,
)
from vpp.core.clock import Clock, ManualClock, ScaledClock

log = logging.getLogger("vpp.run")


#: Shortest wall-clock period of a scheduled job [s].
MIN_WALL_PERIOD_S = 0.1


def wall_seconds(clock: Clock, controller_s: float) -> float:
    return controller_s / clock.speed if isinstance(clock, ScaledClock) else controller_s


#: Wall seconds a stop waits for jobs in flight (a dispatch half written, a plan being
#: solved) before it cancels them.
STOP_WAIT_S = 10.0


class JobRunner:
    """Runs the controller's jobs for the scheduler and knows which are in flight, so a stop
    lets them finish (bounded) and a job cancelled at shutdown ends quietly instead of as a
    ``CancelledError`` traceback from the scheduler.

    The scheduler's executor starts a job as a task that takes its first step on the loop's
    next round; a job whose task was made before a stop but takes that step after it is not
    started at all (:meth:`drain`)."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.running: set[asyncio.Task[Any]] = set()
        self.stopping = False

    async def run(self, name: str) -> None:
        if self.stopping:
            log.info("job %s not started: stopping", name)
            return
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            await self.ctl.run_job(name)
        except asyncio.CancelledError:
            log.info("job %s cancelled at shutdown", name)
        finally:
            if task is not None:
                self.running.discard(task)

    async def drain(self, wait_s: float = STOP_WAIT_S) -> None:
        """Start no more jobs; wait up to ``wait_s`` for the jobs in flight, then cancel
        what is left. Job tasks the scheduler made but the loop has not run yet take their
        first step first (they return at once)."""
        self.stopping = True
        await asyncio.sleep(0)
        pending = set(self.running)
        if not pending:
            return
        log.info("waiting up to %.0f s for %d job(s) to finish", wait_s, len(pending))
        _, left = await asyncio.wait(pending, timeout=wait_s)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=wait_s)


async def start_jobs(
    ctl: Controller, plan_lead_wall_s: float = PLAN_LEAD_S, runner: JobRunner | None = None
) -> AsyncIOScheduler:
    """Run poll, plan and dispatch once, then schedule every job; returns the scheduler."""
    runner = runner or JobRunner(ctl)
    speed = ctl.clock.speed if isinstance(ctl.clock, ScaledClock) else 1.0
    # A fast demo stretches the correction period (below): the first dispatch's heat pump
    # setpoint already holds until the first correction.
    ctl.state.correction_interval_s = correction_period_s(ctl.site, speed)
    await ctl.run_job("poll")
    if ctl.current_row() is not None:
        # A plan restored from the recorder covers now: write it before the first new plan
        # is solved (which can take the solver's whole time limit).
        await ctl.run_job("dispatch")
    for name in ("plan", "dispatch"):
        await ctl.run_job(name)
    snap = ctl.state.snapshot
    if snap is None or (ctl.clock.now() - snap.time).total_seconds() >= poll_period_s(
        ctl.site, speed
    ):
        # The first plan took a poll period or more (a fast demo on a busy machine): start
        # the schedule from a fresh snapshot, not one the watchdog would find stale.
        await ctl.run_job("poll")
    # Plans take wall time to solve: lead by wall seconds, at most a third of a quarter.
    ctl.plan_lead_s = min(plan_lead_wall_s * speed, 300.0)
    # A fast demo stretches the short intervals to what a busy machine keeps up with; the
    # freshness limits follow the poll period that results.
    ctl.state.poll_interval_s = poll_period_s(ctl.site, speed)
    scheduler = AsyncIOScheduler(timezone=UTC)
    now = ctl.clock.now()
    wall_now = datetime.now(UTC)
    for spec in job_specs(ctl.site, ctl.plan_lead_s, ctl.signal_watch is not None, speed):
        first = spec.next_after(now)
        start = wall_now + timedelta(seconds=wall_seconds(ctl.clock, (first - now).total_seconds()))
        period = max(wall_seconds(ctl.clock, spec.period_s), MIN_WALL_PERIOD_S)
        scheduler.add_job(
            runner.run,  # a coroutine method: the scheduler awaits it on the loop
            IntervalTrigger(seconds=period, start_date=start, timezone=UTC),
            args=[spec.name],
            id=spec.name,
            name=spec.name,
            max_instances=1,
            coalesce=True,
            # A run that starts late (a busy machine) but within its period still runs;
            # coalescing folds what piled up into that one run.
            misfire_grace_time=max(1, math.ceil(period)),
        )

    last_event: dict[str, float] = {}

    def missed(event: JobExecutionEvent) -> None:
        stats = ctl.state.job(event.job_id)
        stats.misses += 1
        # Count every miss; report at most one event a minute per job.
        if time.monotonic() - last_event.get(event.job_id, -1e9) >= 60.0:
            last_event[event.job_id] = time.monotonic()
            ctl.event(
                "warning",
                "scheduler",
                "job_missed",
                f"job {event.job_id} missed a run ({stats.misses} so far)",
            )

    scheduler.add_listener(missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    scheduler.start()
    return scheduler


async def step(
    ctl: Controller,
    clock: ManualClock,
    until: datetime,
    *,
    tick_s: float | None = None,
    before_jobs: Callable[[datetime], Any] | None = None,
    plan_lead_s: float = 60.0,
    speed: float = 1.0,
) -> None:
    """Run the controller's jobs in controller time from now until ``until``.

    tick_s : resolution of the virtual clock (default: the poll interval)
    before_jobs : called with the new time after each tick, before the jobs (e.g. to advance
        a simulated plant)
    speed : run the jobs at the periods ``vpp run --speed`` gives them (stretched short
        intervals, see :mod:`vpp.control.schedule`)
    """
    specs = job_specs(ctl.site, plan_lead_s, ctl.signal_watch is not None, speed)
    ctl.plan_lead_s = plan_lead_s
    ctl.state.poll_interval_s = poll_period_s(ctl.site, speed)
    ctl.state.correction_interval_s = correction_period_s(ctl.site, speed)
    tick = tick_s or ctl.state.poll_interval_s
    due = {s.name: s.next_after(clock.now()) for s in specs}
    for _ in range(int((until - clock.now()).total_seconds() // tick) + 1):
        if clock.now() >= until:
            break
        clock.advance(tick)
        now = clock.now()
        if before_jobs is not None:
            result = before_jobs(now)
            if asyncio.iscoroutine(result):
                await result
        await _run_due(ctl, specs, due, now)


async def _run_due(
    ctl: Controller, specs: list[JobSpec], due: dict[str, datetime], now: datetime
) -> None:
    for spec in specs:
        if due[spec.name] <= now:
            await ctl.run_job(spec.name)
            due[spec.name] = spec.next_after(now)


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """SIGINT and SIGTERM set ``stop``; returns a function that removes the handlers."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(Exception):
                loop.remove_signal_handler(sig)

    return remove


#: Allocations between two collections of the youngest generation (Python's default: 700).
#: A poll allocates a few hundred short-lived objects per device, nearly all freed by their
#: reference counts; at 700 the collector ran every few devices and took 14 us of the
#: controller's CPU per device and poll at 3,000 devices, at 50,000 it takes next to none.
YOUNG_THRESHOLD = 50_000


def freeze_heap() -> None:
    """Move what is alive after start-up (site, drivers and their decoded layouts, the first
    plan and snapshot: hundreds of thousands of objects at 1,000 devices) out of the
    collector's reach. A full collection scans every tracked object; at 1,000 devices one
    landing in the middle of a signal's writes took 0.5 s of the job. Garbage is collected
    first, so only objects that live on are frozen. The youngest generation is collected
    every :data:`YOUNG_THRESHOLD` allocations. Called once per process, after start-up."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


async def run_until_stopped(
    ctl: Controller,
    stop: asyncio.Event,
    plan_lead_wall_s: float = PLAN_LEAD_S,
) -> None:
    runner = JobRunner(ctl)
    scheduler = await start_jobs(ctl, plan_lead_wall_s, runner)
    freeze_heap()
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await stop_jobs(scheduler, runner)
    log.info("stopped")


async def stop_jobs(scheduler: AsyncIOScheduler, runner: JobRunner) -> None:
    """No new runs; the ones in flight finish (the scheduler's shutdown would cancel them),
    then the scheduler is shut down. ``AsyncIOScheduler.shutdown`` defers itself to the
    loop's next round (``call_soon_threadsafe``), where it cancels the job tasks still
    pending; that round runs before this returns, so nothing is cancelled after the stop."""
    scheduler.pause()
    await runner.drain()
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)
