"""The control cycle's decisions, as pure functions: the same for ``vpp run`` and replay.

Given the clock's time, the latest Snapshot, the plan in force, the operator's caps, the
grid-operator signals' bounds (:mod:`vpp.signals`) and the site's settings, these functions
decide

- what the optimiser is asked (:func:`plan_limits`: the forecast with the grid limits less
  the planning margin and the caps; :func:`plan_state`: where batteries and store start),
- whether and how a new plan is adopted (:func:`adopt`),
- the setpoints of a quarter hour (:func:`step_setpoints`) and those staged ahead of it
  (:func:`staged_setpoints`),
- the intra-quarter correction (:func:`correction`) and the keep-alive (:func:`keepalive`).

When each of them runs is the job table of :mod:`vpp.control.schedule`. Nothing here does
I/O or keeps state: :class:`vpp.control.controller.Controller` reads the plant, calls these
and writes what they return, under APScheduler in ``vpp run`` and stepped by a manual clock
in replay (:mod:`vpp.replay.drive`).

Every list of setpoints these functions return has been through the safety layer
(:func:`vpp.control.safety.check_setpoints` then :func:`vpp.control.safety.guard_grid`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from adapters.snapshot import BatteryReading, Snapshot
from optimizer.inputs import State
from optimizer.plan import Plan
from vpp.control.dispatch import (
    ExportAhead,
    corrections,
    heat_pump_setpoint,
    setpoints_from_row,
)
from vpp.control.envelope import Bounds
from vpp.control.safety import Setpoint, check_setpoints, grid_limits_w, guard_grid
from vpp.control.state import OperatorCap
from vpp.core.clock import floor_quarter
from vpp.core.site import BatteryDevice, DeviceKind, Site
from vpp.signals.model import Signal
from vpp.signals.plan import plan_caps

QUARTER = timedelta(minutes=15)


def margin_keep(site: Site) -> float:
    """Share of each grid limit the plans may use (1 - ``grid.limit_margin_pct``)."""
    return 1.0 - site.grid.limit_margin_pct / 100.0


def plan_margins(
    site: Site, import_w: pd.Series, export_w: pd.Series, bands: pd.DataFrame | None
) -> tuple[pd.Series, pd.Series]:
    """The margin [W] kept free below each step's import and export limit.

    Fixed (``grid.limit_margin_from = "fixed"``, or steps without learned quantiles):
    ``limit * limit_margin_pct / 100``. Spread: the net load ``n = load - PV`` is what the
    plan cannot steer; with its parts' quantiles (:func:`vpp.learned.site_bands`) taken as
    independent, its upward spread is ``sqrt((load_p90 - load_p50)^2 + (pv_p50 - pv_p10)^2)``
    (import) and its downward spread ``sqrt((load_p50 - load_p10)^2 + (pv_p90 - pv_p50)^2)``
    (export); each margin is that spread, within ``limit_margin_min_pct`` and
    ``limit_margin_max_pct`` of the limit. So ``0 <= margin <= limit * max_pct / 100`` and
    the plan's limit ``limit - margin`` is never above the limit nor below
    ``limit * (1 - max_pct / 100)``.
    """
    grid = site.grid
    fixed = grid.limit_margin_pct / 100.0
    margins = {"import": import_w * fixed, "export": export_w * fixed}
    if grid.limit_margin_from != "spread" or bands is None or bands.empty:
        return margins["import"], margins["export"]
    b = bands.reindex(import_w.index)
    need = [f"{col}_p{q}" for col in ("load_w", "pv_available_w") for q in (10, 50, 90)]
    if any(c not in b.columns for c in need):
        return margins["import"], margins["export"]
    load = [b[f"load_w_p{q}"].to_numpy(dtype=float) for q in (10, 50, 90)]
    pv = [b[f"pv_available_w_p{q}"].to_numpy(dtype=float) for q in (10, 50, 90)]
    spreads = {
        "import": np.hypot(np.maximum(load[2] - load[1], 0), np.maximum(pv[1] - pv[0], 0)),
        "export": np.hypot(np.maximum(load[1] - load[0], 0), np.maximum(pv[2] - pv[1], 0)),
    }
    lo, hi = grid.limit_margin_min_pct / 100.0, grid.limit_margin_max_pct / 100.0
    out = []
    for direction, limit in (("import", import_w), ("export", export_w)):
        lim = limit.to_numpy(dtype=float)
        spread = np.clip(spreads[direction], lo * lim, hi * lim)
        known = np.isfinite(spreads[direction])
        values = np.where(known, spread, margins[direction].to_numpy(dtype=float))
        out.append(pd.Series(values, index=limit.index))
    return out[0], out[1]


def plan_limits(
    site: Site,
    forecast: pd.DataFrame,
    caps: Iterable[OperatorCap],
    signals: Iterable[Signal] = (),
    bands: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The forecast with ``import_limit_w`` and ``export_limit_w`` per step: the site's
    limits tightened by the operator's caps and the grid-operator ``signals``' caps, less
    the planning margin (:func:`plan_margins`, from the learned ``bands`` if the site says
    so; also as ``import_margin_w`` and ``export_margin_w``); and the signals' per-device
    caps as ``<device_id>.cap_w`` columns (:func:`vpp.signals.plan.plan_caps`)."""
    limits = {
        "import": pd.Series(site.grid.import_limit_w, index=forecast.index, dtype=float),
        "export": pd.Series(site.grid.export_limit_w, index=forecast.index, dtype=float),
    }
    for cap in caps:
        window = (forecast.index >= cap.start) & (forecast.index < cap.end)
        target = limits[cap.direction]
        target[window] = target[window].clip(upper=cap.limit_w)
    signals = tuple(signals)
    from_signals = plan_caps(site, pd.DatetimeIndex(forecast.index), signals) if signals else None
    if from_signals is not None:
        limits["import"] = limits["import"].clip(upper=from_signals.import_cap_w.fillna(math.inf))
        limits["export"] = limits["export"].clip(upper=from_signals.export_cap_w.fillna(math.inf))
    import_margin, export_margin = plan_margins(site, limits["import"], limits["export"], bands)
    out = forecast.copy()
    out["import_limit_w"] = limits["import"] - import_margin
    out["export_limit_w"] = limits["export"] - export_margin
    out["import_margin_w"] = import_margin
    out["export_margin_w"] = export_margin
    if from_signals is not None and not from_signals.devices.empty:
        out = out.join(from_signals.devices)
    return out


def plan_state(site: Site, snapshot: Snapshot | None, store_wh: float) -> State:
    """Where the plan starts: each online battery's energy from its reading, the store from
    the controller's estimate, and the devices that are offline."""
    if snapshot is None:
        return State.from_site(site)
    socs: dict[str, float] = {}
    offline: set[str] = set()
    for device in site.devices:
        state = snapshot.devices.get(device.id)
        if state is None or not state.health.online:
            offline.add(device.id)
            continue
        reading = state.reading
        if (
            isinstance(reading, BatteryReading)
            and isinstance(device, BatteryDevice)
            and reading.soc_pct is not None
        ):
            socs[device.id] = reading.soc_pct / 100 * device.capacity_wh
    return State(battery_soc_wh=socs, store_wh=store_wh, offline=frozenset(offline))


def adopt(
    site: Site,
    old: Plan | None,
    new: Plan,
    now: datetime,
    forecast: pd.DataFrame | None = None,
) -> Plan:
    """The plan to put in force: ``new``, showing the limits as the operator set them (the
    plan kept the margin free: ``import_margin_w`` and ``export_margin_w`` of the
    ``forecast`` it was made from, or the fixed share), and, when it was made ahead and
    starts at the next quarter hour, the old plan's row for the current quarter hour in
    front of it (dispatch, correction and metrics keep using it until then)."""
    plan = _true_limits(site, new, forecast)
    start = plan.frame.index[0]
    current = pd.Timestamp(floor_quarter(now))
    if old is None or start <= current:
        return plan
    keep = old.frame[(old.frame.index >= current) & (old.frame.index < start)]
    keep = keep.reindex(columns=plan.frame.columns)
    if keep.empty:
        return plan
    return replace(plan, frame=pd.concat([keep, plan.frame]))


def _true_limits(site: Site, plan: Plan, forecast: pd.DataFrame | None = None) -> Plan:
    if forecast is not None and "import_margin_w" in forecast.columns:
        frame = plan.frame.copy(deep=False)
        for col, margin in (
            ("import_cap_w", "import_margin_w"),
            ("export_cap_w", "export_margin_w"),
        ):
            if col in frame:
                frame[col] = frame[col] + forecast[margin].reindex(frame.index).fillna(0.0)
        return replace(plan, frame=frame)
    keep = margin_keep(site)
    if keep >= 1.0:
        return plan
    frame = plan.frame.copy(deep=False)  # copy on write: the two columns are replaced
    for col in ("import_cap_w", "export_cap_w"):
        if col in frame:
            frame[col] = frame[col] / keep
    return replace(plan, frame=frame)


#: A fallback plan is retried this long after it was made, without waiting for the next
#: quarter hour's plan.
FALLBACK_RETRY = timedelta(minutes=1)


def replan_due(plan: Plan | None, made_at: datetime | None, now: datetime) -> bool:
    """Whether to plan again now, out of turn: the plan in force is a rule-based fallback
    (the solver failed or ran out of time) made at least :data:`FALLBACK_RETRY` ago."""
    if plan is None or made_at is None or plan.info.status == "optimal":
        return False
    return now - made_at >= FALLBACK_RETRY


def seconds_left(now: datetime) -> float:
    """Seconds until the next quarter hour (how long a setpoint written now holds)."""
    return (floor_quarter(now) + QUARTER - now).total_seconds()


def safe(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: list[Setpoint],
    caps: Iterable[OperatorCap],
    now: datetime,
    horizon_s: float | None = None,
    bounds: Bounds | None = None,
) -> list[Setpoint]:
    """Setpoints through the safety layer: device ratings and SoC window over ``horizon_s``
    (default: until the next quarter hour) and the extra ``bounds`` (grid-operator
    signals), then the grid guard against the limits now."""
    horizon = seconds_left(now) if horizon_s is None else horizon_s
    checked = check_setpoints(site, snapshot, setpoints, horizon, bounds)
    imp, exp = grid_limits_w(site, list(caps), now)
    return guard_grid(site, snapshot, checked, imp, exp)


def online_ids(snapshot: Snapshot | None) -> set[str]:
    return {d.id for d in snapshot.online()} if snapshot is not None else set()


def step_setpoints(
    site: Site,
    row: pd.Series | None,
    snapshot: Snapshot | None,
    caps: Iterable[OperatorCap],
    now: datetime,
    bounds: Bounds | None = None,
    store_wh: float | None = None,
    correction_s: float | None = None,
    spare_wh: float | None = None,
) -> list[Setpoint] | None:
    """The safe setpoints of ``row``, the plan's row for the quarter hour containing ``now``
    (:func:`~vpp.control.dispatch.plan_row`), one per online controllable device; None when
    no plan covers the quarter hour. With ``run.heat_correction`` the heat pump starts the
    quarter hour at the heat correction's setpoint for the demand measured now
    (:func:`~vpp.control.dispatch.heat_pump_setpoint`; ``store_wh``: the store's estimate),
    not at the plan's until the first correction, ``correction_s`` seconds on (None: the
    site's ``run.correction_interval_s``); ``spare_wh``: what the store holds above the plan's
    need (:func:`~vpp.control.dispatch.store_spare_wh`; None: the rule ``"plan"``)."""
    if row is None:
        return None
    proposed = setpoints_from_row(site, row, online_ids(snapshot))
    hp = site.heat_pump
    if site.run.heat_correction and snapshot is not None and hp is not None:
        horizon = correction_s or site.run.correction_interval_s
        found = heat_pump_setpoint(site, snapshot, row, store_wh, horizon, spare_wh)
        if found is not None:
            proposed = [
                replace(sp, power_w=found[0]) if sp.device_id == hp.id else sp for sp in proposed
            ]
    return safe(site, snapshot, proposed, caps, now, bounds=bounds)


def staged_setpoints(
    site: Site,
    row: pd.Series | None,
    snapshot: Snapshot | None,
    caps: Iterable[OperatorCap],
    now: datetime,
    start: datetime,
    bounds: Bounds | None = None,
    only: Iterable[str] | None = None,
) -> list[Setpoint]:
    """The batteries' setpoints of ``row``, the plan's row for the quarter hour at ``start``
    (after ``now``), as known now: what a plant may stage ahead where a device holds them
    inactive (:class:`vpp.control.plant.Stages`); ``only``: those of these devices. Safe as
    a dispatch's are, with the SoC window checked until that quarter hour's end. The
    dispatch at ``start`` makes its own setpoints again from what is known then; a staged
    value only saves requests where it is still the same."""
    if row is None or start <= now:
        return []
    ids = online_ids(snapshot) if only is None else online_ids(snapshot) & set(only)
    proposed = [sp for sp in setpoints_from_row(site, row, ids) if sp.kind is DeviceKind.BATTERY]
    if not proposed:
        return []
    horizon = (start - now).total_seconds() + QUARTER.total_seconds()
    return safe(site, snapshot, proposed, caps, now, horizon_s=horizon, bounds=bounds)


#: How long into a quarter hour the readings must reach before a correction compares them
#: with the plan's row for it (meters report minute means; the replay plant's readings are
#: the last whole minute): until then they show the previous quarter hour.
SETTLE = timedelta(minutes=1)


def correction(
    site: Site,
    row: pd.Series | None,
    snapshot: Snapshot | None,
    active_battery_w: Mapping[str, float],
    caps: Iterable[OperatorCap],
    now: datetime,
    bounds: Bounds | None = None,
    store_wh: float | None = None,
    correction_s: float | None = None,
    spare_wh: float | None = None,
    ahead: ExportAhead | None = None,
) -> list[Setpoint]:
    """The intra-quarter correction (see :func:`vpp.control.dispatch.corrections`) against
    the plan's ``row`` for now, safe; empty when nothing needs correcting. ``store_wh``:
    the controller's estimate of the thermal store's energy (for the heat correction);
    ``correction_s``: seconds until the next correction, the horizon its setpoints hold for
    (None: the site's ``run.correction_interval_s``; a fast demo stretches it); ``spare_wh``:
    what the store holds above the plan's need (as for :func:`step_setpoints`);
    ``ahead``: what the plan does with its surplus over the next hours
    (:func:`vpp.control.dispatch.export_ahead`). Until the snapshot reaches
    :data:`SETTLE` into the quarter hour only the limits are held."""
    if row is None or snapshot is None:
        return []
    caps = list(caps)
    imp, exp = grid_limits_w(site, caps, now)
    horizon = correction_s or site.run.correction_interval_s
    settled = snapshot.time >= floor_quarter(now) + SETTLE
    proposed = corrections(
        site,
        snapshot,
        row,
        active_battery_w,
        imp,
        exp,
        horizon,
        store_wh,
        spare_wh,
        settled,
        ahead,
    )
    if not proposed:
        return []
    return safe(site, snapshot, proposed, caps, now, bounds=bounds)


def keepalive(
    site: Site,
    active: Iterable[Setpoint],
    snapshot: Snapshot | None,
    caps: Iterable[OperatorCap],
    now: datetime,
    bounds: Bounds | None = None,
) -> list[Setpoint]:
    """The active setpoints of the online devices again, re-checked against what the
    devices and limits allow now (a battery's SoC moves on while its setpoint holds)."""
    online = online_ids(snapshot)
    again = [sp for sp in active if sp.device_id in online]
    return safe(site, snapshot, again, caps, now, bounds=bounds) if again else []
