"""When each job runs, in the controller's own (possibly accelerated) time.

One table drives both the live scheduler (APScheduler, wall time = controller time / speed) and
the virtual stepper that tests and replays use, so both run the jobs in the same order.

Quarter-hour jobs are aligned to :00/:15/:30/:45. The plan for a quarter hour is made
``plan_lead_s`` before it starts, so that at the boundary the dispatch only writes.
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


def job_specs(site: Site, plan_lead_s: float, signals: bool | None = None) -> list[JobSpec]:
    """The controller's jobs in controller seconds, in the order they run at one instant.
    ``signals``: whether to run the grid-signals job (None: when the site has sources)."""
    revert = float(site.poll.revert_s)
    specs = [
        JobSpec("poll", site.poll.interval_s),
        JobSpec("plan", QUARTER_S, QUARTER_S - plan_lead_s, aligned=True),
        JobSpec("dispatch", QUARTER_S, 0.0, aligned=True),
        JobSpec("correct", site.run.correction_interval_s),
        JobSpec("keepalive", max(5.0, revert / 2)),
        JobSpec("watchdog", 30.0),
    ]
    if site.signals.any_source if signals is None else signals:  # read on their own interval
        specs.insert(1, JobSpec("signals", site.signals.poll_interval_s))
    return specs
