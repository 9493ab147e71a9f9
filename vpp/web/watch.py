"""What the operator page needs beyond the controller's state, gathered by watching it.

:class:`Watch` samples :class:`~vpp.control.state.ControllerState` (a background task every
second, and on every API read) and keeps three small things the state does not:

- quarter-hour means of measured site totals next to the values the plan had for the same
  quarter, for the plan-versus-actual chart. The recorder holds every poll, but reading it back
  on every page refresh would compete with the jobs for its lock, and the page only needs a
  few totals over the last hours; after a restart the table is seeded once from the recorder
  (:mod:`vpp.web.history`);
- when counters that mean trouble (recorder errors, read-back mismatches) last rose, so an
  alert can be "active" for a while after the event instead of forever;
- whether the scheduler's plan job is running right now, so an operator's re-plan waits for it
  rather than planning concurrently (the job statistics only say when a run started and how
  many have ended).

Times are on the controller's clock (UTC), so a fast demo or a replay reads right.

The Watch lives on the HTTP server's thread; only :meth:`Watch.plan_job_running` is also
called from the control loop (by an operator's re-plan), and the little it shares is locked.
The state's dicts that jobs add keys to are copied (in one step, under the interpreter lock)
before they are walked.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from adapters.snapshot import (
    Snapshot,
)
from vpp.control.state import ControllerState
from vpp.core.clock import floor_quarter
from vpp.core.kinds import kind_of
from vpp.core.site import DeviceKind, Site

#: Site totals measured per poll, W (grid > 0 imports, battery > 0 discharges).
MEASURED = ("grid_w", "pv_w", "battery_w", "heat_pump_el_w", "heat_pump_th_w", "waste_heat_th_w")
#: Quarter hours of measurements kept for the chart.
KEEP = timedelta(hours=12)
#: A counter that rose within this window keeps its alert active (controller time).
RECENT = timedelta(minutes=15)


def site_totals(site: Site, snapshot: Snapshot) -> dict[str, float]:
    """Measured site totals of the online devices, W; a total nobody measures is left out.

    ``grid_w`` is the grid-connection meter (> 0 import), ``battery_w`` the batteries' net power
    (> 0 discharge), ``waste_heat_th_w`` what the data centre offers (thermal).
    """
    totals: dict[str, float] = {}
    for dev in snapshot.online():
        try:
            spec = kind_of(dev.kind)
        except KeyError:
            continue
        if spec.kind == DeviceKind.METER and dev.id != site.grid.meter:
            continue  # sub-meters are not the grid connection
        for total, name in spec.measures:
            _add(totals, total, getattr(dev.reading, name, None))
    return totals


def _add(totals: dict[str, float], key: str, value: float | None) -> None:
    if value is not None and math.isfinite(value):
        totals[key] = totals.get(key, 0.0) + value


def planned_totals(row: pd.Series) -> dict[str, float]:
    """A plan row as the same totals as :func:`site_totals`, W."""
    pairs = {
        "pv_w": "pv_w",
        "battery_w": "battery_w",
        "heat_pump_el_w": "heat_pump_el_w",
        "heat_pump_th_w": "heat_pump_th_w",
        "waste_heat_th_w": "waste_heat_th_w",
    }
    out = {key: float(row[col]) for key, col in pairs.items() if col in row.index}
    if "grid_import_w" in row.index and "grid_export_w" in row.index:
        out["grid_w"] = float(row["grid_import_w"]) - float(row["grid_export_w"])
    return {k: v for k, v in out.items() if math.isfinite(v)}


@dataclass(slots=True)
class QuarterHour:
    """Measurements of one quarter hour: running sums and counts, and the plan's values."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    planned: dict[str, float] = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        """Mean of each measured total over the polls seen, W."""
        return {k: self.sums[k] / n for k, n in self.counts.items() if n}


class Watch:
    """Samples ``state``; see the module docstring. Use it on one thread (the HTTP server's),
    except :meth:`plan_job_running`, which any thread may call."""

    def __init__(self, state: ControllerState) -> None:
        self.state = state
        self.quarters: OrderedDict[datetime, QuarterHour] = OrderedDict()
        #: When each watched counter last rose: "recorder" or "readback:<device>".
        self.rose_at: dict[str, datetime] = {}
        self._counts: dict[str, int] = {}
        self._snapshot: Snapshot | None = None
        #: Grows whenever ``quarters`` changes (for caches of what is built from them).
        self.version = 0
        # Plan job: (runs, last_start) when it was last seen idle.
        self._plan_idle: tuple[int, datetime | None] = (0, None)
        self._plan_lock = threading.Lock()

    def sample(self, now: datetime) -> None:
        """Take in what changed since the last call (cheap when nothing did)."""
        self._track_plan_job()
        self._track_counters(now)
        snapshot = self.state.snapshot
        if snapshot is None or snapshot is self._snapshot:
            return
        self._snapshot = snapshot
        self._observe(snapshot)

    def _observe(self, snapshot: Snapshot) -> None:
        self.version += 1
        start = floor_quarter(snapshot.time)
        quarter = self.quarters.get(start)
        if quarter is None:
            quarter = self.quarters[start] = QuarterHour()
            while self.quarters and next(iter(self.quarters)) < start - KEEP:
                self.quarters.popitem(last=False)
        for key, value in site_totals(self.state.site, snapshot).items():
            quarter.sums[key] = quarter.sums.get(key, 0.0) + value
            quarter.counts[key] = quarter.counts.get(key, 0) + 1
        plan = self.state.plan
        if plan is not None and pd.Timestamp(start) in plan.frame.index:
            row = plan.frame.loc[pd.Timestamp(start)]
            if isinstance(row, pd.Series):
                # The plan in force at the end of the quarter is the one it is judged against.
                quarter.planned = planned_totals(row)

    def seed(self, quarters: dict[datetime, QuarterHour]) -> int:
        """Take in quarter hours rebuilt from the recorder (oldest first), where none is kept
        yet; returns how many were taken."""
        self.version += 1
        new = {t: q for t, q in quarters.items() if t not in self.quarters}
        merged = sorted({**self.quarters, **new}.items())
        if merged:
            newest = merged[-1][0]
            merged = [(t, q) for t, q in merged if t >= newest - KEEP]
        self.quarters = OrderedDict(merged)
        return sum(t in self.quarters for t in new)

    def actual(self, start: datetime) -> dict[str, float] | None:
        """Mean measured totals of the quarter hour starting at ``start``, or None."""
        quarter = self.quarters.get(start)
        return quarter.means() if quarter is not None else None

    # -- counters -----------------------------------------------------------------------

    def _track_counters(self, now: datetime) -> None:
        state = self.state
        counts = {"recorder": state.recorder_errors_total}
        mismatches = dict(state.readback_mismatches_total)  # dispatch adds devices to it
        counts.update({f"readback:{d}": n for d, n in mismatches.items()})
        for key, count in counts.items():
            if count > self._counts.get(key, 0):
                self.rose_at[key] = now
            self._counts[key] = count

    def recently_rose(self, key: str, now: datetime) -> bool:
        """True if counter ``key`` rose within :data:`RECENT` before ``now``."""
        when = self.rose_at.get(key)
        return when is not None and now - when <= RECENT

    # -- the scheduler's plan job -------------------------------------------------------

    def _track_plan_job(self) -> None:
        with self._plan_lock:
            stats = self.state.jobs.get("plan")
            if stats is not None and stats.runs != self._plan_idle[0]:
                # A run ended since the last look: the start on record is that run's.
                self._plan_idle = (stats.runs, stats.last_start)

    def plan_job_running(self) -> bool:
        """True while a plan run has started and not ended (as far as the last samples tell).

        A run starts by stamping ``last_start`` and ends by counting ``runs``; sampling often
        (every second and before each check) keeps the chance of missing a start small.
        """
        self._track_plan_job()
        stats = self.state.jobs.get("plan")
        if stats is None or stats.last_start is None:
            return False
        with self._plan_lock:
            return stats.last_start != self._plan_idle[1]
