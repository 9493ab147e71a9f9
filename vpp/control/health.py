"""One top-line state of the controller for the operator: ok, degraded or not controlling.

A pure function of :class:`~vpp.control.state.ControllerState` and "now" (controller clock),
read by the operator page, the JSON API (``/api/status``), the metrics
(``vpp_health_state``) and the controller's log. It looks at three things:

- comms: which devices answer; with no controllable device (battery, PV inverter, heat
  pump) answering, nothing the plan says reaches the plant;
- data freshness: the latest poll snapshot, the input sources;
- the plan's source: the optimiser, the rule-based fallback, or one restored from before a
  restart; none at all, or one too old, means nothing is dispatched;
- writes: a device that answers but refuses setpoints (or reads back something else)
  :data:`REFUSED_WRITES` times in a row is not following the plan.

``not_controlling`` wins over ``degraded``, which wins over ``ok``; every reason that holds
is listed, the worst first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from vpp.control.state import ControllerState
from vpp.core.site import DeviceKind

HealthState = Literal["ok", "degraded", "not_controlling"]
#: Every state, best first (the metric exports one series for each).
STATES: tuple[HealthState, ...] = ("ok", "degraded", "not_controlling")
#: Where the plan in force came from.
PlanSource = Literal["optimizer", "fallback", "restored", "none"]
#: A plan older than this is not in force any more (two missed quarter-hour plans), s.
PLAN_STALE_S = 1800.0
#: A device that refused this many writes in a row (or read each back otherwise) takes no
#: setpoint: health is degraded and names it.
REFUSED_WRITES = 3
#: Kinds whose setpoints the plan writes.
CONTROLLABLE = frozenset(
    {DeviceKind.BATTERY.value, DeviceKind.PV.value, DeviceKind.HEAT_PUMP.value}
)


@dataclass(frozen=True, slots=True)
class Health:
    """The top-line state and why; counts of devices as last polled."""

    state: HealthState
    #: Why the state is not ``ok``, the worst first (empty when ok).
    reasons: tuple[str, ...]
    plan_source: PlanSource
    devices: int
    online: int
    #: Offline (or quarantined) devices by kind.
    offline_by_kind: dict[str, int] = field(default_factory=dict)
    controllable_online: int = 0
    snapshot_age_s: float | None = None
    #: Online devices that accept no setpoint (:data:`REFUSED_WRITES` failed writes in a row).
    refusing: tuple[str, ...] = ()

    @property
    def offline(self) -> int:
        return sum(self.offline_by_kind.values())


def plan_source(state: ControllerState) -> PlanSource:
    plan = state.plan
    if plan is None:
        return "none"
    if getattr(plan, "restored", False):
        return "restored"
    return "optimizer" if getattr(plan.info, "status", None) == "optimal" else "fallback"


def assess(state: ControllerState, now: datetime) -> Health:
    """The controller's health ``now`` from comms, data freshness and the plan's source."""
    site = state.site
    stop: list[str] = []  # not controlling
    weak: list[str] = []  # degraded
    enabled = {d.id: str(d.kind) for d in site.devices if d.enabled}
    snap = state.snapshot
    offline: Counter[str] = Counter()
    online = controllable = 0
    age_s: float | None = None
    if snap is None:
        stop.append("no poll yet")
        offline.update(enabled.values())
    else:
        age_s = (now - snap.time).total_seconds()
        stale_s = state.stale_after_s()
        if age_s > stale_s:
            stop.append(f"no fresh poll for {age_s:.0f} s")
        for dev_id, kind in enabled.items():
            dev = snap.devices.get(dev_id)
            up = dev is not None and dev.health.online and dev_id not in state.quarantined
            if up:
                online += 1
                controllable += kind in CONTROLLABLE
            else:
                offline[kind] += 1
    n_controllable = sum(1 for k in enabled.values() if k in CONTROLLABLE)
    if snap is not None and n_controllable and controllable == 0:
        stop.append(f"no controllable device answers (0 of {n_controllable})")
    if state.dry_run:
        stop.append("paused: setpoints are computed but not written (dry-run)")
    source = plan_source(state)
    created = state.plan_created_at
    if source == "none":
        stop.append("no plan")
    elif created is not None and (now - created).total_seconds() > PLAN_STALE_S:
        stop.append(f"the plan is {(now - created).total_seconds() / 60:.0f} min old")
    elif source == "fallback":
        why = getattr(state.plan.info, "fallback_reason", None) if state.plan else None
        weak.append(f"rule-based fallback plan: {why or 'unknown reason'}")
    elif source == "restored":
        weak.append("plan restored from before the restart; a new one is being made")
    if snap is not None and offline:
        meter = site.grid.meter
        if meter is not None and meter in enabled and offline.get(enabled[meter], 0):
            dev = snap.devices.get(meter)
            if dev is None or not dev.health.online or meter in state.quarantined:
                weak.append("grid meter offline: the exchange is not guarded")
        weak.append(
            f"{sum(offline.values())} of {len(enabled)} devices offline ({_kinds(offline)})"
        )
    refusing = tuple(
        sorted(
            dev_id
            for dev_id, n in state.write_failures.items()
            if n >= REFUSED_WRITES and dev_id in enabled and _online(state, dev_id)
        )
    )
    if refusing:
        weak.append(
            f"{len(refusing)} device(s) accept no setpoint ({_few(refusing)}): "
            f"{REFUSED_WRITES} or more writes in a row refused or read back otherwise"
        )
    for src in sorted(state.sources.values(), key=lambda s: s.name):
        if src.stale:
            weak.append(f"data source {src.name} is stale")
    if state.recorder_pending:
        weak.append(f"recorder behind: {state.recorder_pending} records waiting")
    level: HealthState = "not_controlling" if stop else "degraded" if weak else "ok"
    return Health(
        level,
        tuple(stop + weak),
        source,
        len(enabled),
        online,
        dict(sorted(offline.items())),
        controllable,
        age_s,
        refusing,
    )


def _online(state: ControllerState, dev_id: str) -> bool:
    snap = state.snapshot
    dev = snap.devices.get(dev_id) if snap is not None else None
    return dev is not None and dev.health.online and dev_id not in state.quarantined


def _few(ids: tuple[str, ...], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))


def summary(health: Health) -> str:
    """One line: the state and its first reason."""
    label = {"ok": "ok", "degraded": "degraded", "not_controlling": "NOT CONTROLLING"}
    first = f": {health.reasons[0]}" if health.reasons else ""
    more = f" (+{len(health.reasons) - 1} more)" if len(health.reasons) > 1 else ""
    return f"{label[health.state]}{first}{more}"
