"""Stopping the scheduled jobs (``vpp.control.runner``): a job in flight finishes, a job the
scheduler had handed to the loop but the loop had not yet run does not start, and nothing is
cancelled after the stop returns.

The scheduler's executor runs a job as a task that takes its first step on the loop's next
round, and ``AsyncIOScheduler.shutdown`` itself runs on the loop's next round, where it
cancels the job tasks still pending. A job whose task was made just before a stop could so
start after the drain had looked for jobs in flight, and be cancelled half done after the
stop had been logged. The tests below build that order of events with the real scheduler,
without timing: the job is due when the scheduler starts, and one round of the loop makes
its task."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.interval import IntervalTrigger

from vpp.control.runner import JobRunner, stop_jobs


class Jobs:
    """Stands in for the controller's ``run_job``: notes each job started and finished; a job
    takes ``rounds`` rounds of the loop."""

    def __init__(self, rounds: int = 3) -> None:
        self.rounds = rounds
        self.started: list[str] = []
        self.finished: list[str] = []

    async def run_job(self, name: str) -> bool:
        self.started.append(name)
        for _ in range(self.rounds):
            await asyncio.sleep(0)
        self.finished.append(name)
        return True


def scheduler_with_due_job(runner: JobRunner) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        runner.run,
        IntervalTrigger(seconds=3600, timezone=UTC),
        args=["dispatch"],
        id="dispatch",
        next_run_time=datetime.now(UTC),
        misfire_grace_time=3600,
    )
    return scheduler


async def test_a_job_handed_to_the_loop_just_before_the_stop_does_not_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobs = Jobs()
    runner = JobRunner(jobs)  # type: ignore[arg-type]
    scheduler = scheduler_with_due_job(runner)
    caplog.set_level(logging.INFO, logger="vpp.run")
    scheduler.start()
    # One round: the scheduler wakes up and its executor makes the due job's task, which
    # has not run yet.
    await asyncio.sleep(0)
    made = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert made, "the scheduler made no job task"
    await stop_jobs(scheduler, runner)
    state_at_stop = scheduler.state
    after_stop = len(caplog.records)
    for _ in range(10):  # let anything still queued run
        await asyncio.sleep(0)
    late = [r.getMessage() for r in caplog.records[after_stop:]]
    assert jobs.started == [], late
    assert not any("cancelled" in m for m in late), late
    assert all(t.done() and not t.cancelled() for t in made)
    assert any("not started: stopping" in r.getMessage() for r in caplog.records)
    assert state_at_stop == STATE_STOPPED


async def test_a_job_in_flight_finishes_before_the_stop_returns() -> None:
    jobs = Jobs(rounds=5)
    runner = JobRunner(jobs)  # type: ignore[arg-type]
    scheduler = scheduler_with_due_job(runner)
    scheduler.start()
    for _ in range(3):  # the scheduler wakes up, makes the task, the task starts the job
        await asyncio.sleep(0)
    assert jobs.started == ["dispatch"] and jobs.finished == []
    await stop_jobs(scheduler, runner)
    assert jobs.finished == ["dispatch"]
    assert scheduler.state == STATE_STOPPED


async def test_a_job_past_the_wait_is_cancelled_within_the_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    never = asyncio.Event()

    class Stuck:
        async def run_job(self, name: str) -> bool:
            await never.wait()
            return True

    runner = JobRunner(Stuck())  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="vpp.run")
    task = asyncio.get_running_loop().create_task(runner.run("plan"))
    await asyncio.sleep(0)
    await runner.drain(wait_s=0.0)
    assert task.done()
    assert any("job plan cancelled at shutdown" in r.getMessage() for r in caplog.records)
