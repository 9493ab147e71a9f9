"""Replaying many days at once: local worker processes, or a Dask distributed cluster.

Each chain of days (:mod:`vpp.replay.runner`; ``ReplayOptions.chain_days`` consecutive
days, counted from the first; a single day when 1) is one task. Locally the tasks run
in a :class:`~concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method (no
forked solver or thread state), one process per worker; with one worker they run in this
process. ``dask`` names the scheduler of an existing Dask distributed cluster
(``tcp://host:8786``); its workers need this package installed, nothing else: each task
carries its own slice of the inputs. Results come back in day order whatever the order they
finished in, and are the same on any number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from vpp.core.site import Site
from vpp.replay.kpi import day_table
from vpp.replay.runner import (
    DayJob,
    DayResult,
    ReplayOptions,
    raw_window,
    replay_chain,
    warm_up,
)

#: Called with each day's result as it completes (progress bars).
OnDay = Callable[[DayResult], None]


@dataclass
class ReplayResult:
    """A replayed period: each day's result in day order, the KPI table, the wall time [s]."""

    site: Site
    options: ReplayOptions
    days: list[DayResult]
    kpis: pd.DataFrame
    wall_s: float
    workers: int
    engine: str


def days_between(first: date, last: date) -> list[date]:
    """Local calendar days ``first..last``, both included."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def make_jobs(
    site: Site, data: pd.DataFrame, days: Iterable[date], options: ReplayOptions
) -> list[DayJob]:
    """One job per day, each with just the rows it needs (history, day, horizon)."""
    index = pd.DatetimeIndex(data.index)
    jobs = []
    for day in days:
        start, end = raw_window(site, day, day)
        jobs.append(DayJob(site, day, data[(index >= start) & (index < end)], options))
    return jobs


def chains(jobs: list[DayJob]) -> list[list[DayJob]]:
    """The jobs in chains: runs of consecutive days, at most ``chain_days`` long, counted
    from the first job of each run, cut at month ends with ``month_chains`` (the first job's
    options decide)."""
    out: list[list[DayJob]] = []
    for job in sorted(jobs, key=lambda j: j.day):
        last = out[-1] if out else None
        if (
            last is not None
            and job.day == last[-1].day + timedelta(days=1)
            and len(last) < last[0].options.chain_days
            and not (last[0].options.month_chains and job.day.day == 1)
        ):
            last.append(job)
        else:
            out.append([job])
    return out


def run_jobs(
    jobs: list[DayJob],
    workers: int | None = None,
    dask: str | None = None,
    on_day: OnDay | None = None,
) -> list[DayResult]:
    """Replay the jobs, chain by chain (:func:`chains`); ``dask`` (a scheduler address) wins
    over local ``workers``. Results come by day, jobs of the same day in the order given,
    however the workers finish."""
    tasks = chains(jobs)
    if dask is not None:
        results = _run_dask(tasks, dask, on_day)
    elif _workers(workers, len(tasks)) <= 1:
        results = []
        for task in tasks:
            done = replay_chain(task)
            results += done
            _report(done, on_day)
    else:
        results = _run_local(tasks, _workers(workers, len(tasks)), on_day)
    return sorted(results, key=lambda r: r.day)


def _report(results: list[DayResult], on_day: OnDay | None) -> None:
    if on_day is not None:
        for result in results:
            on_day(result)


def _workers(requested: int | None, tasks: int) -> int:
    available = os.cpu_count() or 1
    return max(1, min(requested or available, tasks))


def _run_local(tasks: list[list[DayJob]], workers: int, on_day: OnDay | None) -> list[DayResult]:
    context = multiprocessing.get_context("spawn")
    by_task: dict[int, list[DayResult]] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=warm_up) as pool:
        # Longest chains first, so that a long chain does not start last.
        order = sorted(range(len(tasks)), key=lambda i: len(tasks[i]), reverse=True)
        futures = {pool.submit(replay_chain, tasks[i]): i for i in order}
        for future in as_completed(futures):
            done = future.result()
            by_task[futures[future]] = done
            _report(done, on_day)
    # In the jobs' order whatever finished first (jobs of the same day keep their order).
    return [r for i in range(len(tasks)) for r in by_task[i]]


def _run_dask(tasks: list[list[DayJob]], address: str, on_day: OnDay | None) -> list[DayResult]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    by_task: dict[int, list[DayResult]] = {}
    # Closing the client leaves the cluster running: it is someone else's.
    with Client(address, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        futures = client.map(replay_chain, tasks, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future in dask_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            done = future.result()
            by_task[index[future.key]] = done
            _report(done, on_day)
    return [r for i in range(len(tasks)) for r in by_task[i]]


def replay(
    site: Site,
    data: pd.DataFrame,
    first: date,
    last: date,
    options: ReplayOptions | None = None,
    workers: int | None = None,
    dask: str | None = None,
    on_day: OnDay | None = None,
) -> ReplayResult:
    """Replay local days ``first..last`` of ``data`` (raw input schema) for ``site``."""
    opts = options or ReplayOptions()
    jobs = make_jobs(site, data, days_between(first, last), opts)
    tic = time.perf_counter()
    days = run_jobs(jobs, workers, dask, on_day)
    table = day_table((r.day.isoformat(), r.kpis) for r in days)
    engine = f"dask {dask}" if dask else "local processes"
    used = 0 if dask else _workers(workers, len(chains(jobs)))
    return ReplayResult(
        site=site,
        options=opts,
        days=days,
        kpis=table,
        wall_s=time.perf_counter() - tic,
        workers=used,
        engine=engine,
    )
