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
``g + sum(d_i)``. The target is the limit, or ``g`` when the site is already beyond it (the
controller never makes a breach worse; batteries may still act to relieve it). If the
prediction is past the target, the setpoints that push towards it are moved back towards
their *hold* value, the point of their envelope nearest to what the device does now, by one
common factor ``keep`` in [0, 1]: ``value = hold + (checked - hold) * keep``, until the
prediction sits at the target (or every one of them is at its hold). So the guard never
changes a setpoint by more than was asked, never leaves the envelope, and leaves alone the
setpoints that relieve the exchange. A device that does now what its envelope forbids (a
battery discharging more than its state of charge allows) goes to the envelope's edge even if
that raises the exchange: device safety comes first.

Without a plausible grid meter reading (none configured, offline, quarantined, not finite or
beyond the physical bound of :func:`vpp.control.plausible.meter_plausible`) the guard does
nothing, and neither do the corrections of :mod:`vpp.control.dispatch`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from adapters.snapshot import BatteryReading, PvReading, Snapshot
from vpp.control.envelope import (
    DEFAULT_HORIZON_S,
    Bound,
    Bounds,
    Envelope,
    battery_bounds,
    envelope,
    intersect,
)
from vpp.control.plausible import meter_plausible
from vpp.control.state import OperatorCap
from vpp.core.kinds import KINDS, KindSpec
from vpp.core.records import quick_init
from vpp.core.site import BatteryDevice, DeviceKind, Site

_KIND_NAMES = frozenset(k.value for k in DeviceKind)
#: Quantities a setpoint can carry, by device kind (from the kind registry).
QUANTITY = {kind: spec.setpoint for kind, spec in KINDS.items() if spec.setpoint is not None}
#: Why a setpoint was clamped at the envelope's upper and lower edge, by device kind.
_WHY = {
    DeviceKind.BATTERY: (
        "discharge limited to {w:.0f} W by {src}",
        "charge limited to {neg:.0f} W by {src}",
    ),
    DeviceKind.PV: (
        "PV cap lowered to {w:.0f} W ({src})",
        "PV cap raised to the minimum {w:.0f} W ({src})",
    ),
    DeviceKind.HEAT_PUMP: (
        "heat pump limited to {w:.0f} W by {src}",
        "heat pump raised to {w:.0f} W by {src}",
    ),
}


@quick_init  # made twice per device and dispatch: see vpp.core.records
@dataclass(frozen=True, slots=True)
class Setpoint:
    """A power for one device [W]: battery (> 0 discharge), PV cap on AC output, heat pump
    electric power. The Modbus layer turns a PV cap into the SunSpec percentage of the rating
    at the very edge."""

    device_id: str
    kind: DeviceKind
    power_w: float
    #: What the plan asked for, before any clamp [W].
    planned_w: float
    clamped: bool = False
    reason: str = ""
    #: The envelope :func:`check_setpoints` clamped into (None before the check); the grid
    #: guard keeps the value inside it.
    envelope: Envelope | None = None

    @property
    def quantity(self) -> str:
        return QUANTITY[self.kind]

    def clamp(self, power_w: float, why: str) -> Setpoint:
        if math.isclose(power_w, self.power_w, rel_tol=1e-9, abs_tol=1e-6):
            # Too small a change to report, but the value lands exactly on the bound.
            return self if power_w == self.power_w else replace(self, power_w=power_w)
        reason = f"{self.reason}; {why}" if self.reason else why
        return replace(self, power_w=power_w, clamped=True, reason=reason)


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
    if sp.power_w > env.hi:
        sp = sp.clamp(env.hi, _why(sp.kind, env.hi, env.hi_source, high=True))
    elif sp.power_w < env.lo:
        sp = sp.clamp(env.lo, _why(sp.kind, env.lo, env.lo_source, high=False))
    # Built directly: dataclasses.replace costs more than the rest of the check.
    return Setpoint(sp.device_id, sp.kind, sp.power_w, sp.planned_w, sp.clamped, sp.reason, env)


def _why(kind: DeviceKind, bound: float, source: str, high: bool) -> str:
    above, below = _WHY.get(kind, ("limited to {w:.0f} W by {src}", "raised to {w:.0f} W by {src}"))
    return (above if high else below).format(w=bound, neg=-bound, src=source)


def check_setpoints(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: list[Setpoint],
    horizon_s: float,
    bounds: Bounds | None = None,
) -> list[Setpoint]:
    """Each setpoint inside its device's envelope: ratings, live ratings, SoC window over
    ``horizon_s`` [s], PV minimum, and the ``bounds`` given for it (grid-operator signals).

    A value that is not a finite number becomes 0 (battery, heat pump) or no cap (PV) first.
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
        if not math.isfinite(sp.power_w):
            sp = sp.clamp(0.0 if sp.kind != DeviceKind.PV else env.hi, "not a finite number")
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


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _reading(snapshot: Snapshot, device_id: str) -> object:
    state = snapshot.devices.get(device_id)
    return state.reading if state is not None else None


def grid_delta_w(sp: Setpoint, site: Site, snapshot: Snapshot) -> float:
    """Change of grid power [W, > 0 more import] if ``sp`` replaces what the device does now
    (0 where that is unknown)."""
    return delta_at(sp.device_id, sp.power_w, site, snapshot)


def _power_now(snapshot: Snapshot, device_id: str) -> tuple[KindSpec, object, float] | None:
    """The device's kind, reading and present power [W] (None where unknown)."""
    state = snapshot.devices.get(device_id)
    if state is None or state.reading is None:
        return None
    spec = KINDS.get(DeviceKind(state.kind)) if state.kind in _KIND_NAMES else None
    if spec is None or spec.power_reading is None:
        return None
    now = _finite(getattr(state.reading, spec.power_reading, None))
    return None if now is None else (spec, state.reading, now)


def delta_at(device_id: str, value: float, site: Site, snapshot: Snapshot) -> float:
    """Change of grid power [W, > 0 more import] if ``device_id`` is set to ``value``: the
    kind's grid effect times the change of its power (a battery discharging less imports
    more); for a cap on output (PV) see :func:`_pv_delta_w`."""
    found = _power_now(snapshot, device_id)
    if found is None or not found[0].controllable:
        return 0.0
    spec, reading, now = found
    if spec.caps_output and isinstance(reading, PvReading):
        return _pv_delta_w(value, reading, _rated_w(site, device_id, reading))
    return spec.grid_effect * (value - now)


def _pv_delta_w(new_cap: float, reading: PvReading, rated_w: float) -> float:
    """Grid change [W] of a new PV limit: a tighter cap cuts output below it; a looser one
    can only raise output where the inverter is held at its present cap now (its available
    power is then unknown, so the guard assumes the worst); an inverter producing below its
    cap already gives all it has."""
    output = reading.ac_power_w or 0.0
    if new_cap < output:
        return output - new_cap
    limit = _finite(reading.limit_pct)
    old_cap = (limit if limit is not None else 100.0) / 100.0 * rated_w
    held = old_cap < rated_w and output >= 0.98 * old_cap
    return -(new_cap - output) if held else 0.0


def _rated_w(site: Site, device_id: str, reading: PvReading) -> float:
    rated = reading.rated_w
    if rated is not None and math.isfinite(rated) and rated > 0:
        return rated
    return float(site.device(device_id).rated_w)


def measured_grid_w(site: Site, snapshot: Snapshot) -> float | None:
    """The grid meter's power [W, > 0 import], or None without a usable reading: no meter,
    offline or quarantined, not a finite number, or physically implausible."""
    if site.grid.meter is None:
        return None
    state = snapshot.devices.get(site.grid.meter)
    if state is None or state.reading is None or not state.health.online:
        return None
    value = getattr(state.reading, "power_w", None)
    if not isinstance(value, int | float) or not meter_plausible(site, value):
        return None
    return float(value)


def current_value(site: Site, snapshot: Snapshot, device_id: str) -> float | None:
    """What the device does now as a setpoint [W] (for a cap on output: the output, at most
    the rating)."""
    found = _power_now(snapshot, device_id)
    if found is None or not found[0].controllable:
        return None
    spec, _, now = found
    return min(now, float(site.device(device_id).rated_w)) if spec.caps_output else now


def hold_value(site: Site, snapshot: Snapshot, sp: Setpoint, env: Envelope) -> float:
    """Where the grid guard may take ``sp`` back to: the point of ``env`` nearest to what the
    device does now (``sp.power_w`` itself when that is unknown)."""
    now = current_value(site, snapshot, sp.device_id)
    return sp.power_w if now is None else env.clip(now)


def setpoint_envelope(
    site: Site, snapshot: Snapshot | None, sp: Setpoint, horizon_s: float = DEFAULT_HORIZON_S
) -> Envelope | None:
    """The envelope attached by :func:`check_setpoints`, else the device's own over
    ``horizon_s`` (None for a device that takes no setpoint)."""
    if sp.envelope is not None:
        return sp.envelope
    return envelope(site, snapshot, sp.device_id, horizon_s)


def guard_grid(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: list[Setpoint],
    import_limit_w: float,
    export_limit_w: float,
) -> list[Setpoint]:
    """Move back the setpoint changes that would push the grid exchange past a limit (or a
    breach further), towards what each device does now and never outside its envelope (see
    the module doc). Setpoints that did not pass :func:`check_setpoints` are kept inside
    their device's own envelope over :data:`~vpp.control.envelope.DEFAULT_HORIZON_S`."""
    if snapshot is None or not setpoints:
        return setpoints
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return setpoints
    envs = [setpoint_envelope(site, snapshot, sp) for sp in setpoints]
    holds = [
        sp.power_w if env is None else hold_value(site, snapshot, sp, env)
        for sp, env in zip(setpoints, envs, strict=True)
    ]
    asked = [grid_delta_w(sp, site, snapshot) for sp in setpoints]
    held = [
        delta_at(sp.device_id, hold, site, snapshot)
        for sp, hold in zip(setpoints, holds, strict=True)
    ]
    predicted = grid + sum(asked)
    import_target = max(import_limit_w, grid)
    export_target = min(-export_limit_w, grid)
    if predicted > import_target:
        sign, excess, which = 1, predicted - import_target, "import"
    elif predicted < export_target:
        sign, excess, which = -1, export_target - predicted, "export"
    else:
        return setpoints
    movable = [max(0.0, sign * (a - h)) for a, h in zip(asked, held, strict=True)]
    total = sum(movable)
    if not total > 0:
        return setpoints
    keep = min(1.0, max(0.0, 1.0 - excess / total))
    out = []
    for sp, env, hold, room in zip(setpoints, envs, holds, movable, strict=True):
        if room <= 0 or env is None:
            out.append(sp)
            continue
        new = env.clip(hold + (sp.power_w - hold) * keep)
        out.append(sp.clamp(new, f"held back to keep grid {which} within its limit"))
    return out
