"""Active alert conditions for the operator page, computed from the controller's state.

The conditions of the Prometheus rules in ``dashboards/alerts.yml`` that the controller can see
itself (same names and severities), for a site without Prometheus; a controller that is down,
or paused for long (the page's header shows it), is left to Prometheus. They show at once:
Prometheus waits ``for:`` a while before it fires, so a condition may show here earlier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from vpp.control.safety import grid_limits_w
from vpp.control.state import ControllerState, Event
from vpp.web.views import GRID_NEAR_RATIO, GRID_OVER_RATIO, iso
from vpp.web.watch import Watch, site_totals

#: A plan older than this is stale (two missed quarter-hour plans), s.
PLAN_STALE_S = 1800.0
#: A poll snapshot older than this is stale, s.
SNAPSHOT_STALE_S = 120.0
#: Offline devices named in the grouped alert's summary; the rest are counted.
OFFLINE_NAMED = 5
#: A solve taking this share of the optimizer's time limit is near its budget.
SOLVE_NEAR_RATIO = 0.8
#: Recent events sent with the alerts.
RECENT_EVENTS = 30


@dataclass(frozen=True, slots=True)
class Alert:
    """One active condition; ``name`` matches the Prometheus alert of the same condition."""

    name: str
    severity: str  # "critical" or "warning"
    summary: str
    device: str | None = None


def active_alerts(state: ControllerState, watch: Watch, now: datetime) -> list[Alert]:
    """Every condition that holds ``now``, critical ones first."""
    found = [
        *_snapshot(state, now),
        *_devices(state),
        *_plan(state, now),
        *_grid(state, now),
        *_setpoints(state, watch, now),
        *_recorder(state, watch, now),
        *_sources(state),
    ]
    return sorted(found, key=lambda a: (a.severity != "critical", a.name, a.device or ""))


def _snapshot(state: ControllerState, now: datetime) -> Iterator[Alert]:
    snap = state.snapshot
    if snap is not None and (now - snap.time).total_seconds() > SNAPSHOT_STALE_S:
        age_s = (now - snap.time).total_seconds()
        yield Alert("VppSnapshotStale", "critical", f"no fresh poll for {age_s:.0f} s")


def _devices(state: ControllerState) -> Iterator[Alert]:
    """The grid meter on its own (critical); every other offline device in one alert with
    counts by kind (``VppDevicesOffline``), as the Prometheus rule groups them."""
    snap = state.snapshot
    if snap is None:
        return
    meter = state.site.grid.meter
    others = []
    for dev in snap.offline():
        if dev.id == meter:
            why = dev.health.last_error or "no answer"
            yield Alert(
                "VppGridMeterOffline", "critical", f"grid meter {dev.id} is offline: {why}", dev.id
            )
        else:
            others.append(dev)
    if not others:
        return
    kinds = Counter(str(d.kind) for d in others)
    ids = sorted(d.id for d in others)
    named = ", ".join(ids[:OFFLINE_NAMED]) + (
        f" and {len(ids) - OFFLINE_NAMED} more" if len(ids) > OFFLINE_NAMED else ""
    )
    by_kind = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    yield Alert(
        "VppDevicesOffline",
        "warning",
        f"{len(others)} of {len(snap.devices)} devices offline ({by_kind}): {named}",
    )


def _plan(state: ControllerState, now: datetime) -> Iterator[Alert]:
    plan, created = state.plan, state.plan_created_at
    if plan is None or created is None:
        yield Alert("VppNoPlan", "critical", "no plan: devices are not being dispatched")
        return
    age_s = (now - created).total_seconds()
    if age_s > PLAN_STALE_S:
        yield Alert("VppPlanStale", "critical", f"the plan is {age_s / 60:.0f} min old")
    info = plan.info
    if getattr(info, "status", "optimal") == "fallback":
        reason = getattr(info, "fallback_reason", None) or "unknown reason"
        yield Alert("VppPlanFallback", "warning", f"rule-based fallback plan in force: {reason}")
    solve_s = getattr(info, "solve_s", None)
    budget_s = state.site.optimizer.time_limit_s
    if isinstance(solve_s, int | float) and solve_s >= SOLVE_NEAR_RATIO * budget_s:
        yield Alert(
            "VppSolveTimeNearBudget",
            "warning",
            f"last solve took {solve_s:.1f} s of a {budget_s:.0f} s budget",
        )


def _grid(state: ControllerState, now: datetime) -> Iterator[Alert]:
    snap = state.snapshot
    grid_w = site_totals(state.site, snap).get("grid_w") if snap is not None else None
    if grid_w is None:
        return
    imp, exp = grid_limits_w(state.site, state.caps, now)
    for direction, value, limit in (("import", grid_w, imp), ("export", -grid_w, exp)):
        if value > GRID_OVER_RATIO * limit:
            yield Alert(
                f"VppGrid{direction.title()}OverLimit",
                "critical",
                f"grid {direction} {value / 1e3:.0f} kW is over its limit {limit / 1e3:.0f} kW",
            )
        elif value > GRID_NEAR_RATIO * limit:
            yield Alert(
                f"VppGrid{direction.title()}NearLimit",
                "warning",
                f"grid {direction} {value / 1e3:.0f} kW is near its limit {limit / 1e3:.0f} kW",
            )


def _setpoints(state: ControllerState, watch: Watch, now: datetime) -> Iterator[Alert]:
    for device in sorted(state.readback_mismatches_total):
        if watch.recently_rose(f"readback:{device}", now):
            yield Alert(
                "VppSetpointReadbackMismatch",
                "warning",
                f"{device} read back a different value than was written",
                device,
            )


def _recorder(state: ControllerState, watch: Watch, now: datetime) -> Iterator[Alert]:
    if watch.recently_rose("recorder", now):
        yield Alert(
            "VppRecorderErrors",
            "warning",
            f"the recorder failed to store records ({state.recorder_errors_total} since start)",
        )


def _sources(state: ControllerState) -> Iterator[Alert]:
    for source in sorted(state.sources.values(), key=lambda s: s.name):
        if source.stale:
            why = f": {source.last_error}" if source.last_error else ""
            yield Alert(
                "VppDataSourceStale", "warning", f"data source {source.name} is too old to use{why}"
            )


def event_view(event: Event) -> dict[str, Any]:
    """One event as JSON."""
    return {
        "time": iso(event.time),
        "level": event.level,
        "source": event.source,
        "kind": event.kind,
        "message": event.message,
        "device": event.device,
    }


def alerts_view(state: ControllerState, watch: Watch, now: datetime) -> dict[str, Any]:
    """Active conditions and the most recent events, newest first."""
    events = list(state.events)[-RECENT_EVENTS:]
    return {
        "time": iso(now),
        "active": [asdict(a) for a in active_alerts(state, watch, now)],
        "events": [event_view(e) for e in reversed(events)],
    }
