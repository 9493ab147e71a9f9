"""Setpoint validation: every value is checked against the device's live ratings, its state of
charge and the operator's limits before it is written, and clamped when outside.

Pure functions: a Snapshot, the Site and proposed setpoints in; checked setpoints out, each
saying whether and why it was clamped. Nothing here talks to devices.

Grid guard: a setpoint must never be the reason the site exceeds its import or export limit.
With ``g`` the measured grid power (> 0 import) and ``d_i`` the change in grid power each new
setpoint causes relative to what its device does now, the predicted exchange is
``g + sum(d_i)``. If that exceeds a limit, the changes that push towards it are scaled down
until the prediction sits at the limit, or at ``g`` when the site is already beyond it (the
controller never makes a breach worse; batteries may still act to relieve it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from adapters.snapshot import BatteryReading, HeatPumpReading, PvReading, Snapshot
from vpp.control.state import OperatorCap
from vpp.core.site import BatteryDevice, DeviceKind, HeatPumpDevice, PvDevice, Site

#: Quantities a setpoint can carry, by device kind.
QUANTITY = {
    DeviceKind.BATTERY: "battery_w",
    DeviceKind.PV: "pv_limit_pct",
    DeviceKind.HEAT_PUMP: "heat_pump_el_w",
}


@dataclass(frozen=True, slots=True)
class Setpoint:
    """A value for one device: battery W (> 0 discharge), PV limit %, heat pump electric W."""

    device_id: str
    kind: DeviceKind
    value: float
    #: What the plan asked for, before any clamp.
    planned: float
    clamped: bool = False
    reason: str = ""

    @property
    def quantity(self) -> str:
        return QUANTITY[self.kind]

    def clamp(self, value: float, why: str) -> Setpoint:
        if math.isclose(value, self.value, rel_tol=1e-9, abs_tol=1e-6):
            return self
        reason = f"{self.reason}; {why}" if self.reason else why
        return replace(self, value=value, clamped=True, reason=reason)


def battery_window_w(
    device: BatteryDevice, reading: BatteryReading | None, horizon_s: float
) -> tuple[float, float]:
    """(lowest, highest) battery setpoint [W] allowed now: ratings, live limits and SoC.

    The SoC bound lets the battery move at most the energy between its SoC and the window's
    edge within ``horizon_s`` [s] (the time until the next setpoint):
    ``p_dis <= (soc - soc_min) * capacity * eta_d / h``, ``p_ch <= (soc_max - soc) * capacity
    / (eta_c * h)``.
    """
    max_dis = device.max_discharge_w
    max_ch = device.max_charge_w
    if reading is not None:
        if reading.max_discharge_w is not None and reading.max_discharge_w >= 0:
            max_dis = min(max_dis, reading.max_discharge_w)
        if reading.max_charge_w is not None and reading.max_charge_w >= 0:
            max_ch = min(max_ch, reading.max_charge_w)
        if reading.soc_pct is not None:
            hours = max(horizon_s, 1.0) / 3600.0
            above = (reading.soc_pct - device.soc_min_pct) / 100 * device.capacity_wh
            below = (device.soc_max_pct - reading.soc_pct) / 100 * device.capacity_wh
            max_dis = min(max_dis, max(0.0, above * device.discharge_efficiency / hours))
            max_ch = min(max_ch, max(0.0, below / device.charge_efficiency / hours))
    return -max_ch, max_dis


def check_battery(
    sp: Setpoint, device: BatteryDevice, reading: BatteryReading | None, horizon_s: float
) -> Setpoint:
    lo, hi = battery_window_w(device, reading, horizon_s)
    if sp.value > hi:
        return sp.clamp(hi, f"discharge limited to {hi:.0f} W by rating/SoC")
    if sp.value < lo:
        return sp.clamp(lo, f"charge limited to {-lo:.0f} W by rating/SoC")
    return sp


def check_pv(sp: Setpoint, device: PvDevice) -> Setpoint:
    if sp.value > 100.0:
        return sp.clamp(100.0, "PV limit above 100 %")
    if sp.value < device.min_limit_pct:
        # 0 % puts several inverters into standby: never go below the device's minimum.
        why = f"PV limit raised to minimum {device.min_limit_pct} %"
        return sp.clamp(device.min_limit_pct, why)
    return sp


def check_heat_pump(sp: Setpoint, device: HeatPumpDevice) -> Setpoint:
    if sp.value > device.max_el_w:
        return sp.clamp(device.max_el_w, f"heat pump limited to {device.max_el_w:.0f} W")
    if sp.value < 0:
        return sp.clamp(0.0, "heat pump power below 0")
    return sp


def check_setpoints(
    site: Site, snapshot: Snapshot | None, setpoints: list[Setpoint], horizon_s: float
) -> list[Setpoint]:
    """Each setpoint within its device's ratings, SoC window and minimum limits."""
    out = []
    for sp in setpoints:
        device = site.device(sp.device_id)
        state = snapshot.devices.get(sp.device_id) if snapshot else None
        reading = state.reading if state is not None else None
        if not math.isfinite(sp.value):
            sp = sp.clamp(0.0 if sp.kind != DeviceKind.PV else 100.0, "not a finite number")
        if isinstance(device, BatteryDevice):
            bat = reading if isinstance(reading, BatteryReading) else None
            out.append(check_battery(sp, device, bat, horizon_s))
        elif isinstance(device, PvDevice):
            out.append(check_pv(sp, device))
        elif isinstance(device, HeatPumpDevice):
            out.append(check_heat_pump(sp, device))
        else:
            out.append(sp)
    return out


def grid_limits_w(site: Site, caps: list[OperatorCap], when: datetime) -> tuple[float, float]:
    """(import, export) limits [W] now: the connection's, tightened by active operator caps."""
    imp, exp = site.grid.import_limit_w, site.grid.export_limit_w
    for cap in caps:
        if cap.active(when):
            if cap.direction == "import":
                imp = min(imp, cap.limit_w)
            else:
                exp = min(exp, cap.limit_w)
    return imp, exp


def grid_delta_w(sp: Setpoint, site: Site, snapshot: Snapshot) -> float:
    """Change of grid power [W, > 0 more import] if ``sp`` replaces what the device does now."""
    state = snapshot.devices.get(sp.device_id)
    reading = state.reading if state is not None else None
    if isinstance(reading, BatteryReading) and reading.power_w is not None:
        return reading.power_w - sp.value  # less discharge = more import
    if isinstance(reading, HeatPumpReading) and reading.el_power_w is not None:
        return sp.value - reading.el_power_w
    if isinstance(reading, PvReading) and reading.ac_power_w is not None:
        return _pv_delta_w(sp.value, reading, _rated_w(site, sp.device_id, reading))
    return 0.0


def _pv_delta_w(new_pct: float, reading: PvReading, rated_w: float) -> float:
    """Grid change [W] of a new PV limit: a tighter cap cuts output below it; a looser one
    can only raise output where the inverter is held at its present cap now (its available
    power is then unknown, so the guard assumes the worst); an inverter producing below its
    cap already gives all it has."""
    output = reading.ac_power_w or 0.0
    new_cap = new_pct / 100.0 * rated_w
    if new_cap < output:
        return output - new_cap
    old_cap = (reading.limit_pct if reading.limit_pct is not None else 100.0) / 100.0 * rated_w
    held = old_cap < rated_w and output >= 0.98 * old_cap
    return -(new_cap - output) if held else 0.0


def _rated_w(site: Site, device_id: str, reading: PvReading) -> float:
    return reading.rated_w or float(site.device(device_id).rated_w)


def measured_grid_w(site: Site, snapshot: Snapshot) -> float | None:
    if site.grid.meter is None:
        return None
    state = snapshot.devices.get(site.grid.meter)
    if state is None or state.reading is None or not state.health.online:
        return None
    return getattr(state.reading, "power_w", None)


def guard_grid(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: list[Setpoint],
    import_limit_w: float,
    export_limit_w: float,
) -> list[Setpoint]:
    """Scale back the setpoint changes that would push the grid exchange past a limit."""
    if snapshot is None:
        return setpoints
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return setpoints
    deltas = [grid_delta_w(sp, site, snapshot) for sp in setpoints]
    predicted = grid + sum(deltas)
    if predicted > import_limit_w:
        target = max(import_limit_w, grid)
        return _scale_back(site, snapshot, setpoints, deltas, predicted - target, +1, "import")
    if predicted < -export_limit_w:
        target = min(-export_limit_w, grid)
        return _scale_back(site, snapshot, setpoints, deltas, target - predicted, -1, "export")
    return setpoints


def _scale_back(
    site: Site,
    snapshot: Snapshot,
    setpoints: list[Setpoint],
    deltas: list[float],
    excess_w: float,
    sign: int,
    which: str,
) -> list[Setpoint]:
    pushing = sum(d for d in deltas if d * sign > 0) * sign
    if pushing <= 0:
        return setpoints
    keep = max(0.0, 1.0 - excess_w / pushing)
    out = []
    for sp, d in zip(setpoints, deltas, strict=True):
        now = _current(site, sp.device_id, snapshot.devices[sp.device_id].reading)
        if d * sign <= 0 or now is None:
            out.append(sp)
            continue
        new = now + (sp.value - now) * keep
        if sp.kind == DeviceKind.PV:
            new = max(new, site.device(sp.device_id).min_limit_pct)
        out.append(sp.clamp(new, f"held back to keep grid {which} within its limit"))
    return out


def _current(site: Site, device_id: str, reading: object) -> float | None:
    """What the device does now, in its setpoint's unit (W, or % of rating for PV)."""
    if isinstance(reading, BatteryReading):
        return reading.power_w
    if isinstance(reading, HeatPumpReading):
        return reading.el_power_w
    if isinstance(reading, PvReading) and reading.ac_power_w is not None:
        return min(100.0, 100.0 * reading.ac_power_w / _rated_w(site, device_id, reading))
    return None
