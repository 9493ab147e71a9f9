"""When each job runs, in the controller's own (possibly accelerated) time.

One table drives both the live scheduler (APScheduler, wall time = controller time / speed) and
the virtual stepper that tests and replays use, so both run the jobs in the same order.

Quarter-hour jobs are aligned to :00/:15/:30/:45. The plan for a quarter hour is made
``plan_lead_s`` before it starts, so that at the boundary the dispatch only writes; the plan
job also stages what devices can hold inactive until then (a 124 battery's rates,
:meth:`vpp.control.planning.Planning.stage`), so that the dispatch writes less.

A fast demo (``vpp run --speed K``) runs every job K times as often in wall time. The jobs on
their own short interval (poll, signals, correct, watchdog) would then come faster
than a busy machine can run them (a 10 s poll every 0.17 s of wall time at 60x): their
periods stretch to at least :data:`WALL_FLOOR_S` of wall time, so they run as often as a
machine can keep up with, and the freshness limits follow the stretched poll period
(:func:`poll_period_s`), as does the corrections' horizon (:func:`correction_period_s`):
their setpoints hold until the next correction. At real time nothing stretches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vpp.core.clock import floor_quarter
from vpp.core.site import Site

QUARTER_S = 900.0
#: Seconds by which a plan precedes its quarter hour at real time (``vpp run`` and replay;
#: a fast demo leads by as much wall time, see :func:`vpp.control.runner.start_jobs`).
PLAN_LEAD_S = 30.0
#: Shortest wall-clock period of each job on its own interval in a fast demo, s. A poll of
#: the demo's 88 devices (simulated in the same process) took 0.68 s of wall time on average
#: beside two CPU-bound processes; the signals read (one device) 0.17 s, so a 120 s
#: heartbeat timeout still spans four reads at 60x. The keep-alive stays at half the revert
#: timer whatever the speed.
WALL_FLOOR_S = {"poll": 2.0, "signals": 0.5, "correct": 1.0, "watchdog": 1.0}


@dataclass(frozen=True, slots=True)
class JobSpec:
    """``name`` runs every ``period_s`` seconds of controller time, at ``offset_s`` past the
    quarter-hour grid (or past start when ``aligned`` is False)."""

    name: str
    period_s: float
    offset_s: float = 0.0
    aligned: bool = False

    def next_after(self, when: datetime) -> datetime:
        """First run strictly after ``when``."""
        if not self.aligned:
            return when + timedelta(seconds=self.period_s)
        base = floor_quarter(when) + timedelta(seconds=self.offset_s % self.period_s)
        while base <= when:
            base += timedelta(seconds=self.period_s)
        while base - timedelta(seconds=self.period_s) > when:
            base -= timedelta(seconds=self.period_s)
        return base


def stretched(name: str, period_s: float, speed: float) -> float:
    """The controller-time period of job ``name`` at ``speed``: ``period_s``, or longer so
    that it runs at most once per :data:`WALL_FLOOR_S` of wall time when ``speed`` > 1."""
    if speed <= 1.0:
        return period_s
    return max(period_s, WALL_FLOOR_S.get(name, 0.0) * speed)


def poll_period_s(site: Site, speed: float = 1.0) -> float:
    """Controller seconds between two polls at ``speed`` (the site's interval at real time)."""
    return stretched("poll", site.poll.interval_s, speed)


def correction_period_s(site: Site, speed: float = 1.0) -> float:
    """Controller seconds between two corrections at ``speed`` (the site's interval at real
    time, stretched above ``WALL_FLOOR_S["correct"]`` x its interval of speed)."""
    return stretched("correct", site.run.correction_interval_s, speed)


def job_specs(
    site: Site, plan_lead_s: float, signals: bool | None = None, speed: float = 1.0
) -> list[JobSpec]:
    """The controller's jobs in controller seconds, in the order they run at one instant.
    ``signals``: whether to run the grid-signals job (None: when the site has sources);
    ``speed``: the clock's speed against wall time (the short intervals stretch, see above)."""
    revert = float(site.poll.revert_s)
    periods = {
        "poll": site.poll.interval_s,
        "signals": site.signals.poll_interval_s,
        "correct": site.run.correction_interval_s,
        "keepalive": max(5.0, revert / 2),
        "watchdog": 30.0,
    }
    every = {name: stretched(name, p, speed) for name, p in periods.items()}
    specs = [
        JobSpec("poll", every["poll"]),
        JobSpec("plan", QUARTER_S, QUARTER_S - plan_lead_s, aligned=True),
        JobSpec("dispatch", QUARTER_S, 0.0, aligned=True),
        JobSpec("correct", every["correct"]),
        JobSpec("keepalive", every["keepalive"]),
        JobSpec("watchdog", every["watchdog"]),
    ]
    if site.signals.any_source if signals is None else signals:  # read on their own interval
        specs.insert(1, JobSpec("signals", every["signals"]))
    return specs
