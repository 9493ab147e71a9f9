"""Setpoint validation: every value is checked against the device's live ratings, its state of
charge and the operator's limits before it is written, and clamped when outside.

Pure functions: a Snapshot, the Site and proposed setpoints in; checked setpoints out, each
saying whether and why it was clamped. Nothing here talks to devices.

Each device's allowed range is its :class:`~vpp.control.envelope.Envelope` (ratings, live
ratings, state-of-charge window, PV minimum, and any extra bounds such as grid-operator
signals); :func:`check_setpoints` clamps into it and attaches it to the setpoint, and
:func:`vpp.control.invariants.violations` checks the final output against the same envelope.

Grid guard: a setpoint must never be the reason the site exceeds its import or export limit.
With ``g`` the measured grid power (> 0 import) and ``d_i`` the change in grid power each new
setpoint causes relative to what its device does now, the predicted exchange is
``g + sum(d_i)``. If that exceeds a limit, the changes that push towards it are scaled down
until the prediction sits at the limit, or at ``g`` when the site is already beyond it (the
controller never makes a breach worse; batteries may still act to relieve it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from adapters.snapshot import BatteryReading, HeatPumpReading, PvReading, Snapshot
from vpp.control.envelope import (
    Bound,
    Bounds,
    Envelope,
    battery_bounds,
    envelope,
    intersect,
)
from vpp.control.state import OperatorCap
from vpp.core.site import BatteryDevice, DeviceKind, Site

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
    #: The envelope :func:`check_setpoints` clamped into (None before the check); the grid
    #: guard keeps the value inside it.
    envelope: Envelope | None = None

    @property
    def quantity(self) -> str:
        return QUANTITY[self.kind]

    def clamp(self, value: float, why: str) -> Setpoint:
        if math.isclose(value, self.value, rel_tol=1e-9, abs_tol=1e-6):
            # Too small a change to report, but the value lands exactly on the bound.
            return self if value == self.value else replace(self, value=value)
        reason = f"{self.reason}; {why}" if self.reason else why
        return replace(self, value=value, clamped=True, reason=reason)


def battery_window_w(
    device: BatteryDevice, reading: BatteryReading | None, horizon_s: float
) -> tuple[float, float]:
    """(lowest, highest) battery setpoint [W] allowed now: ratings, live limits and SoC.

    The SoC bound lets the battery move at most the energy between its SoC and the window's
    edge within ``horizon_s`` [s] (the time until the next setpoint):
    ``p_dis <= (soc - soc_min) * capacity * eta_d / h``, ``p_ch <= (soc_max - soc) * capacity
    / (eta_c * h)``. The same window as the battery's :class:`~vpp.control.envelope.Envelope`
    without extra bounds.
    """
    env = intersect(battery_bounds(device, reading, horizon_s))
    return env.lo, env.hi


def clamp_to(sp: Setpoint, env: Envelope) -> Setpoint:
    """``sp`` inside ``env``, saying why when it was outside; ``env`` attached."""
    if sp.value > env.hi:
        sp = sp.clamp(env.hi, _why(sp.kind, env.hi, env.hi_source, high=True))
    elif sp.value < env.lo:
        sp = sp.clamp(env.lo, _why(sp.kind, env.lo, env.lo_source, high=False))
    return replace(sp, envelope=env)


def _why(kind: DeviceKind, bound: float, source: str, high: bool) -> str:
    if kind == DeviceKind.BATTERY:
        if high:
            return f"discharge limited to {bound:.0f} W by {source}"
        return f"charge limited to {-bound:.0f} W by {source}"
    if kind == DeviceKind.PV:
        if high:
            return f"PV limit lowered to {bound:g} % ({source})"
        return f"PV limit raised to minimum {bound:g} % ({source})"
    if high:
        return f"heat pump limited to {bound:.0f} W by {source}"
    return f"heat pump raised to {bound:.0f} W by {source}"


def check_setpoints(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: list[Setpoint],
    horizon_s: float,
    bounds: Bounds | None = None,
) -> list[Setpoint]:
    """Each setpoint inside its device's envelope: ratings, live ratings, SoC window over
    ``horizon_s`` [s], PV minimum, and the ``bounds`` given for it (grid-operator signals).

    A value that is not a finite number becomes 0 (battery, heat pump) or 100 % (PV) first.
    Each setpoint comes back with its envelope attached, for the grid guard. A setpoint for a
    device that takes none (unknown, a meter) comes back as it is:
    :func:`vpp.control.invariants.enforce` refuses it.
    """
    out = []
    for sp in setpoints:
        extra: Sequence[Bound] = bounds.get(sp.device_id, ()) if bounds else ()
        env = envelope(site, snapshot, sp.device_id, horizon_s, extra)
        if env is None:  # no setpoint for this device: the invariants refuse it
            out.append(sp)
            continue
        if not math.isfinite(sp.value):
            sp = sp.clamp(0.0 if sp.kind != DeviceKind.PV else 100.0, "not a finite number")
        out.append(clamp_to(sp, env))
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
