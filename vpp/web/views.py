"""The read side of the operator API: plain JSON-ready dicts built from the controller's state.

Pure functions of the state, the :class:`~vpp.web.watch.Watch` and "now" (controller clock,
UTC). Powers in W, energies in Wh, ratios 0..1, prices in EUR/MWh, times as ISO-8601 UTC.
A value that is unknown is ``null``, never 0, as in the metrics.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from adapters.snapshot import BatteryReading, BreakerState, DeviceState
from vpp.control.health import Health, assess
from vpp.control.safety import grid_limits_w
from vpp.control.state import ControllerState, OperatorCap
from vpp.control.why import Why, explain
from vpp.core.clock import floor_quarter
from vpp.web.watch import Watch, planned_totals, site_totals

JsonDict = dict[str, Any]

#: Plan table columns sent per step (site totals), by their API name.
PLAN_STEP_COLUMNS = (
    "grid_import_w", "grid_export_w", "pv_w", "pv_available_w", "load_w", "battery_w",
    "battery_soc_wh", "heat_pump_el_w", "heat_pump_th_w", "boiler_th_w", "heat_demand_th_w",
    "waste_heat_th_w", "store_wh", "price_import_eur_per_mwh", "price_export_eur_per_mwh",
    "import_cap_w", "export_cap_w",
)  # fmt: skip
#: Grid exchange above this share of its limit is "near the limit", above the second past
#: it: the factors of ``VppGrid*NearLimit`` and ``VppGrid*OverLimit`` in
#: ``dashboards/alerts.yml`` (a test holds them equal). The page compares the latest reading,
#: the rules a 5-minute (near) or 1-minute (over) mean held for a while.
GRID_NEAR_RATIO = 0.99
GRID_OVER_RATIO = 1.01
#: Quarter hours of measured history sent before the plan's first step.
HISTORY_STEPS = 24


def iso(when: datetime | pd.Timestamp | None) -> str | None:
    """ISO-8601 in UTC with a ``Z``, or None."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def num(value: Any) -> float | None:
    """A finite float, or None for None, NaN and infinities (JSON has no NaN)."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _nums(values: Mapping[str, float]) -> dict[str, float | None]:
    return {k: num(v) for k, v in values.items()}


_why_for: tuple[Any, list[Why]] | None = None


def plan_reasons(state: ControllerState) -> list[Why]:
    """Why the plan in force does what it does, per step (worked out once per plan)."""
    global _why_for
    plan = state.plan
    if plan is None:
        return []
    cached = _why_for
    if cached is None or cached[0] is not plan.frame:
        cached = (plan.frame, explain(plan.frame, state.site))
        _why_for = cached
    return cached[1]


def reason_now(state: ControllerState, now: datetime) -> Why | None:
    """The plan's reasons for the quarter hour ``now`` falls in."""
    plan = state.plan
    if plan is None:
        return None
    step = pd.Timestamp(floor_quarter(now))
    if step not in plan.frame.index:
        return None
    reasons = plan_reasons(state)
    i = int(plan.frame.index.get_indexer(pd.DatetimeIndex([step]))[0])
    return reasons[i] if 0 <= i < len(reasons) else None


def cap_id(cap: OperatorCap) -> str:
    """A short, stable id of a cap (caps are immutable values without an id field)."""
    key = f"{cap.direction}|{cap.limit_w!r}|{iso(cap.start)}|{iso(cap.end)}|{cap.reason}|"
    key += str(iso(cap.created_at))
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def cap_view(cap: OperatorCap, now: datetime) -> JsonDict:
    """One operator cap with its id and whether it is in force ``now``."""
    return {
        "id": cap_id(cap),
        "direction": cap.direction,
        "limit_w": cap.limit_w,
        "start": iso(cap.start),
        "end": iso(cap.end),
        "reason": cap.reason,
        "created_at": iso(cap.created_at),
        "active": cap.active(now),
    }


def caps_view(state: ControllerState, now: datetime) -> list[JsonDict]:
    """Caps that are in force or still to come, soonest first (past ones are left out)."""
    caps = sorted((c for c in state.caps if c.end > now), key=lambda c: (c.start, c.end))
    return [cap_view(c, now) for c in caps]


# -- status -------------------------------------------------------------------------------


def status_view(
    state: ControllerState, now: datetime, *, writes_enabled: bool, replan_running: bool
) -> JsonDict:
    """Site, time, control mode, grid against its limits, fleet totals and the plan."""
    site = state.site
    snap = state.snapshot
    totals = site_totals(site, snap) if snap is not None else {}
    imp_limit, exp_limit = grid_limits_w(site, state.caps, now)
    grid = totals.get("grid_w")
    return {
        "site": site.site.name,
        "timezone": site.site.timezone,
        "time": iso(now),
        "started_at": iso(state.started_at),
        "dry_run": state.dry_run,
        "health": health_view(assess(state, now)),
        "writes_enabled": writes_enabled,
        "replan_running": replan_running,
        "snapshot": {
            "time": iso(snap.time) if snap else None,
            "age_s": (now - snap.time).total_seconds() if snap else None,
        },
        "grid": {
            "net_w": num(grid),
            "import_w": None if grid is None else max(grid, 0.0),
            "export_w": None if grid is None else max(-grid, 0.0),
            "import_limit_w": imp_limit,
            "export_limit_w": exp_limit,
            "site_import_limit_w": site.grid.import_limit_w,
            "site_export_limit_w": site.grid.export_limit_w,
            "near_ratio": GRID_NEAR_RATIO,
            "over_ratio": GRID_OVER_RATIO,
        },
        "fleet": fleet_view(state, totals),
        "plan": plan_info_view(state, now),
        "caps": caps_view(state, now),
    }


def health_view(health: Health) -> JsonDict:
    """The top-line state (ok, degraded, not_controlling), why, and the counts behind it."""
    return {
        "state": health.state,
        "reasons": list(health.reasons),
        "plan_source": health.plan_source,
        "devices": health.devices,
        "online": health.online,
        "offline": health.offline,
        "offline_by_kind": health.offline_by_kind,
        "controllable_online": health.controllable_online,
        "refusing_setpoints": list(health.refusing),
    }


def fleet_view(state: ControllerState, totals: Mapping[str, float]) -> JsonDict:
    """Online-device totals: PV, batteries (power, energy, SoC), heat pump, waste heat."""
    snap = state.snapshot
    devices = list(snap.devices.values()) if snap is not None else []
    energy = capacity = 0.0
    for dev in devices:
        r = dev.reading
        if (
            dev.health.online
            and isinstance(r, BatteryReading)
            and r.soc_pct is not None
            and r.capacity_wh is not None
        ):
            energy += r.soc_pct / 100 * r.capacity_wh
            capacity += r.capacity_wh
    hp_el, hp_th = totals.get("heat_pump_el_w"), totals.get("heat_pump_th_w")
    return {
        "devices": len(state.site.devices),
        "online": sum(1 for d in devices if d.health.online),
        "offline": sum(1 for d in devices if not d.health.online),
        "pv_w": num(totals.get("pv_w")),
        "battery_w": num(totals.get("battery_w")),
        "battery_energy_wh": energy,
        "battery_capacity_wh": capacity,
        "battery_soc_ratio": energy / capacity if capacity > 0 else None,
        "heat_pump_el_w": num(hp_el),
        "heat_pump_th_w": num(hp_th),
        "heat_pump_cop": hp_th / hp_el if hp_el and hp_th is not None and hp_el >= 1 else None,
        "waste_heat_offered_w": num(totals.get("waste_heat_th_w")),
    }


def plan_info_view(state: ControllerState, now: datetime) -> JsonDict | None:
    """How the current plan was made and what it says for the current quarter hour."""
    plan = state.plan
    if plan is None:
        return None
    info, frame = plan.info, plan.frame
    step = pd.Timestamp(floor_quarter(now))
    row = frame.loc[step] if step in frame.index else None
    created = state.plan_created_at
    return {
        "status": getattr(info, "status", None),
        "created_at": iso(created),
        "age_s": (now - created).total_seconds() if created else None,
        "fallback_reason": getattr(info, "fallback_reason", None),
        "slacks_wh": _nums(getattr(info, "slacks", {}) or {}),
        "objective_eur": num(getattr(info, "objective_eur", None)),
        "solve_s": num(getattr(info, "solve_s", None)),
        "total_s": num(getattr(info, "total_s", None)),
        "time_limit_s": state.site.optimizer.time_limit_s,
        "start": iso(frame.index[0]) if len(frame) else None,
        "end": iso(frame.index[-1]) if len(frame) else None,
        "steps": len(frame),
        "now": _nums(planned_totals(row)) if isinstance(row, pd.Series) else None,
        "why": why.as_dict() if (why := reason_now(state, now)) is not None else None,
        "price_import_eur_per_mwh": num(row.get("price_import_eur_per_mwh"))
        if isinstance(row, pd.Series)
        else None,
    }


# -- plan ---------------------------------------------------------------------------------


def plan_view(state: ControllerState, watch: Watch, now: datetime) -> JsonDict:
    """The plan's steps with planned values and, for quarters already begun, measured means.

    ``history`` holds up to :data:`HISTORY_STEPS` earlier quarter hours with what was
    measured and what the plan in force then had for them.
    """
    plan = state.plan
    history = _history(
        watch,
        plan.frame.index[0]
        if plan is not None and len(plan.frame)
        else pd.Timestamp(floor_quarter(now)),
    )
    if plan is None:
        return {
            "created_at": None,
            "status": None,
            "now": iso(now),
            **_capacities(state),
            "step_min": state.site.optimizer.step_min,
            "steps": [],
            "history": history,
        }
    frame = plan.frame
    cols = [c for c in PLAN_STEP_COLUMNS if c in frame.columns]
    values = frame[cols].to_numpy(dtype=float)
    reasons = plan_reasons(state)
    steps = []
    for i, start in enumerate(frame.index):
        step: JsonDict = {"start": iso(start)}
        step.update({c: num(v) for c, v in zip(cols, values[i], strict=True)})
        step["why"] = reasons[i].text
        step["why_source"] = reasons[i].source
        step["grid_w"] = _net(step.get("grid_import_w"), step.get("grid_export_w"))
        actual = watch.actual(start.to_pydatetime())
        step["actual"] = _nums(actual) if actual else None
        steps.append(step)
    return {
        "created_at": iso(state.plan_created_at),
        "status": getattr(plan.info, "status", None),
        "now": iso(now),
        **_capacities(state),
        "step_min": state.site.optimizer.step_min,
        "steps": steps,
        "history": history,
    }


def _capacities(state: ControllerState) -> JsonDict:
    """What the page needs to show stored energy as a share: the batteries' and the store's
    capacity, Wh. The batteries' are those the plan has (offline ones are left out of it)."""
    site = state.site
    planned = set(state.plan.frame.columns) if state.plan is not None else set()
    batteries = sum(
        d.capacity_wh
        for d in site.batteries
        if d.enabled and (not planned or f"{d.id}.soc_wh" in planned)
    )
    return {
        "battery_capacity_wh": batteries,
        "store_capacity_wh": site.heat.store_capacity_wh,
    }


def _net(imp: float | None, exp: float | None) -> float | None:
    return None if imp is None or exp is None else imp - exp


def _history(watch: Watch, before: pd.Timestamp) -> list[JsonDict]:
    past = [t for t in watch.quarters if pd.Timestamp(t) < before][-HISTORY_STEPS:]
    return [
        {
            "start": iso(t),
            "actual": _nums(watch.quarters[t].means()),
            "planned": _nums(watch.quarters[t].planned),
        }
        for t in past
    ]


# -- devices ------------------------------------------------------------------------------


def device_row(
    dev_id: str, kind: str, name: str | None, state: DeviceState | None, now: datetime
) -> JsonDict:
    """One row of the device table; ``state`` None for a device never polled."""
    h = state.health if state is not None else None
    r = state.reading if state is not None else None
    power = None
    for attr in ("ac_power_w", "power_w", "el_power_w", "it_power_w"):
        if power is None and r is not None:
            power = getattr(r, attr, None)
    soc = r.soc_pct if isinstance(r, BatteryReading) else None
    return {
        "id": dev_id,
        "kind": kind,
        "name": name,
        "online": bool(h and h.online),
        "polled": state is not None,
        "power_w": num(power),
        "soc_pct": num(soc),
        "breaker": h.breaker.value if h else None,
        "last_success_age_s": (now - h.last_success).total_seconds()
        if h and h.last_success
        else None,
        "consecutive_failures": h.consecutive_failures if h else 0,
        "error_count": h.error_count if h else 0,
        "latency_s": num(h.latency_s) if h else None,
        "last_error": h.last_error if h else None,
    }


def _device_why(kind: str, why: Why | None) -> str | None:
    """The plan's reason for this quarter hour that concerns a device of ``kind``."""
    if why is None:
        return None
    part = {"battery": why.battery, "pv": why.pv, "heat_pump": why.heat, "meter": why.grid}
    return part.get(kind)


def _badness(row: JsonDict) -> tuple[Any, ...]:
    """Sort key, worst first: offline, open breaker, failures, staleness, then id."""
    age = row["last_success_age_s"]
    return (
        row["online"],
        row["breaker"] != BreakerState.OPEN.value,
        -row["consecutive_failures"],
        -(age if age is not None else np.inf),
        -row["error_count"],
        row["id"],
    )


def devices_view(state: ControllerState, now: datetime, limit: int | None = None) -> JsonDict:
    """Every configured device, worst first, with its last setpoint; ``limit`` rows at most."""
    snap = state.snapshot
    why = reason_now(state, now)
    rows = []
    for dev in state.site.devices:
        if not dev.enabled:
            continue
        found = snap.devices.get(dev.id) if snap is not None else None
        row = device_row(dev.id, str(dev.kind), dev.name, found, now)
        row["why"] = _device_why(str(dev.kind), why)
        # writes in a row it refused or read back otherwise (health names it from 3)
        row["failed_writes"] = state.write_failures.get(dev.id, 0)
        sp = state.setpoints.get(dev.id)
        row["setpoint"] = (
            None
            if sp is None
            else {
                "quantity": sp.quantity,
                "requested_w": num(sp.requested_w),
                "written_w": num(sp.written_w),
                "read_back_w": num(sp.read_back_w),
                "ok": sp.ok,
                "dry_run": sp.dry_run,
                "message": sp.message or None,
            }
        )
        rows.append(row)
    rows.sort(key=_badness)
    total = len(rows)
    return {
        "time": iso(now),
        "total": total,
        "offline": sum(1 for r in rows if not r["online"]),
        "devices": rows[:limit] if limit is not None else rows,
    }
