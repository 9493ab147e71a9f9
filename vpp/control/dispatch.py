"""From the current step of a Plan to one setpoint per device, and the intra-quarter correction.

Pure functions. The plan's per-device columns are ``<id>.battery_w`` (W, > 0 discharge) and
``<id>.pv_limit_w`` (W cap); the heat pump follows the site column ``heat_pump_el_w``.

Correction: between quarter hours the batteries move the measured grid exchange to a target.
With ``e`` the measured minus the target grid power (> 0: importing more than wanted), each
battery's active setpoint moves by ``e * h_i / sum(h)``, where ``h_i`` is its headroom in the
needed direction. The target is the planned exchange (``run.correction = "schedule"``: the
fleet absorbs the forecast error of PV and load) or, by default (``"limits"``), the nearest
connection limit when the exchange is past it (no correction inside the limits). Errors inside
a deadband are left alone so that meter noise does not make the batteries chatter.

Without a usable grid reading (:func:`vpp.control.safety.measured_grid_w`: no meter, offline,
quarantined by :func:`vpp.control.plausible.screen`, not finite or physically implausible)
there is no correction at all: the devices hold the plan's setpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from adapters.snapshot import BatteryReading, Snapshot
from vpp.control.safety import Setpoint, battery_window_w, measured_grid_w
from vpp.core.clock import floor_quarter
from vpp.core.kinds import KINDS
from vpp.core.site import DeviceKind, Site


def plan_row(frame: pd.DataFrame, when: datetime) -> pd.Series | None:
    """The plan's row for the quarter hour containing ``when`` (None if outside the plan)."""
    step = pd.Timestamp(floor_quarter(when))
    if step not in frame.index:
        return None
    row = frame.loc[step]
    return row if isinstance(row, pd.Series) else row.iloc[0]


def pv_cap_w(limit_w: float, rated_w: float) -> float:
    """A planned PV cap [W]; no cap (NaN, or at least the rating) is the rating."""
    if not math.isfinite(limit_w) or limit_w >= rated_w * 0.999:
        return float(rated_w)
    return max(0.0, float(limit_w))


def setpoints_from_row(site: Site, row: pd.Series, online: set[str]) -> list[Setpoint]:
    """One setpoint per online controllable device for this plan step (none where the plan
    has no value for it, e.g. a device that was offline when the step was planned)."""
    out: list[Setpoint] = []
    for device in site.devices:
        spec = KINDS[device.kind]
        col = spec.column(device.id)
        if col is None or device.id not in online or not device.enabled or col not in row.index:
            continue
        value = float(row[col])
        if spec.caps_output:  # no cap planned (NaN) is no cap at all
            value = pv_cap_w(value, float(getattr(device, "rated_w", math.inf)))
        elif not math.isfinite(value):
            continue
        out.append(Setpoint(device.id, device.kind, value, value))
    return out


def planned_grid_w(row: pd.Series) -> float:
    """Planned grid power of a step [W, > 0 import]."""
    return float(row["grid_import_w"]) - float(row["grid_export_w"])


def correct_batteries(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    horizon_s: float,
    deadband_w: float,
) -> list[Setpoint]:
    """New battery setpoints that cancel the grid's departure from the plan.

    active : the battery setpoints in force now [W], by device id
    horizon_s : seconds until the next correction (for the SoC headroom)
    deadband_w : departures smaller than this are ignored [W]
    """
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    error = grid - planned_grid_w(row)
    if abs(error) < deadband_w:
        return []
    return shift_batteries(
        site, snapshot, row, active, error, horizon_s, f"correction: grid {error:+.0f} W off plan"
    )


def hold_limits(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    import_limit_w: float,
    export_limit_w: float,
    horizon_s: float,
    deadband_w: float,
) -> list[Setpoint]:
    """New battery setpoints that bring a measured exchange past a grid limit back to it;
    none while the exchange is inside the limits (or past them by less than the deadband)."""
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    error = max(0.0, grid - import_limit_w) - max(0.0, -grid - export_limit_w)
    if abs(error) < max(deadband_w, 1e-9):
        return []
    why = f"correction: grid {grid:+.0f} W past its limit"
    return shift_batteries(site, snapshot, row, active, error, horizon_s, why)


def shift_batteries(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    error_w: float,
    horizon_s: float,
    reason: str,
) -> list[Setpoint]:
    """Move the active battery setpoints by ``error_w`` in all [W, > 0 more discharge],
    shared by each battery's headroom in that direction over ``horizon_s`` [s]."""
    if not active or error_w == 0.0:
        return []
    rooms: dict[str, float] = {}
    for bat in site.batteries:
        if bat.id not in active:
            continue
        state = snapshot.devices.get(bat.id)
        reading = state.reading if state is not None and state.health.online else None
        if not isinstance(reading, BatteryReading):
            continue
        lo, hi = battery_window_w(bat, reading, horizon_s)
        rooms[bat.id] = max(0.0, hi - active[bat.id] if error_w > 0 else active[bat.id] - lo)
    total = sum(rooms.values())
    if total <= 0:
        return []
    share = min(1.0, abs(error_w) / total)
    sign = 1.0 if error_w > 0 else -1.0
    out = []
    for device_id, room in rooms.items():
        value = active[device_id] + sign * room * share
        planned = float(row.get(f"{device_id}.battery_w", active[device_id]))
        out.append(Setpoint(device_id, DeviceKind.BATTERY, value, planned, reason=reason))
    return out


def corrections(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    import_limit_w: float,
    export_limit_w: float,
    horizon_s: float,
) -> list[Setpoint]:
    """One intra-quarter correction: the batteries move the exchange to the plan
    (:func:`correct_batteries`, ``run.correction = "schedule"``) or back inside the grid
    limits (:func:`hold_limits`, ``"limits"``), with the site's deadband; then PV is
    curtailed where the export still exceeds ``export_limit_w`` (:func:`curtail_export`).

    ``vpp run`` calls this every ``run.correction_interval_s``; replay once per quarter
    hour, after the first interval.
    """
    run = site.run
    if run.correction == "schedule":
        setpoints = correct_batteries(
            site, snapshot, row, active, horizon_s, run.correction_deadband_w
        )
    else:
        setpoints = hold_limits(
            site,
            snapshot,
            row,
            active,
            import_limit_w,
            export_limit_w,
            horizon_s,
            run.correction_deadband_w,
        )
    absorbed = sum(sp.power_w - active[sp.device_id] for sp in setpoints)
    return setpoints + curtail_export(site, snapshot, export_limit_w, charge_added_w=-absorbed)


def curtail_export(
    site: Site, snapshot: Snapshot, export_limit_w: float, charge_added_w: float = 0.0
) -> list[Setpoint]:
    """PV limits that bring a measured export above ``export_limit_w`` back under it.

    When the batteries cannot take the surplus (full, or already charging at their limit),
    forecast error can push the export past the connection's limit. The excess, less the
    extra charging ``charge_added_w`` [W] the batteries were just given, is cut from the
    inverters in proportion to their output, never below their minimum limits.
    """
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    excess = -grid - export_limit_w - max(0.0, charge_added_w)
    if excess <= 0:
        return []
    producing: list[tuple[str, float, float]] = []
    for pv in site.pv:
        state = snapshot.devices.get(pv.id)
        reading = state.reading if state is not None and state.health.online else None
        out = getattr(reading, "ac_power_w", None)
        if out:
            producing.append((pv.id, float(out), pv.rated_w))
    total = sum(out for _, out, _ in producing)
    if total <= 0:
        return []
    cut = min(1.0, excess / total)
    setpoints = []
    for device_id, out, rated in producing:
        floor_w = site.device(device_id).min_limit_pct / 100.0 * rated
        cap = max(floor_w, out * (1.0 - cut))
        why = f"correction: export {-grid:.0f} W over its limit {export_limit_w:.0f} W"
        setpoints.append(Setpoint(device_id, DeviceKind.PV, cap, rated, reason=why))
    return setpoints
