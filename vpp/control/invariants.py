"""Invariants on the final output of the setpoint pipeline, stated once, and the last check
before a write.

The pipeline is ``check_setpoints`` (clamps into each device's envelope) then ``guard_grid``
(holds back what would push the grid exchange past a limit); :func:`violations` says what in
its output may not be written, whatever produced it. For a batch of setpoints, a snapshot,
the :class:`Limits` in force and the step ``horizon_s`` [s]:

1. each setpoint is for a device of the site that takes a setpoint of its kind, is online in
   the snapshot (not offline, not quarantined by :func:`vpp.control.plausible.screen`), and
   has one setpoint in the batch;
2. its value is a finite number inside the device's envelope
   (:mod:`vpp.control.envelope`: the site file's and the reading's own ratings, the
   state-of-charge window over ``horizon_s`` as in ``battery_window_w``, PV cap from the
   inverter's minimum to its rating, heat pump 0..``max_el_w``, then ``limits.bounds``);
3. the grid, in the guard's sense: with the measured exchange ``g`` (> 0 import; only a
   plausible reading counts, see :func:`vpp.control.safety.measured_grid_w`) and ``d_i`` the
   change each setpoint causes, the predicted ``g + sum(d_i)`` is at most
   ``max(limits.import_w, g)`` and at least ``min(-limits.export_w, g)``: inside the limits,
   or no worse than now when already past one. Where it is not, every setpoint that pushes
   further than its *hold* value would (the point of its envelope nearest to what the device
   does now) is a violation: the guard could have held it back. A push its device is forced
   into by its own envelope is not.

The controller calls, before every write (same ``horizon_s`` and ``limits`` as the check)::

    enforce(site: Site, snapshot: Snapshot | None, setpoints: list[Setpoint],
            limits: Limits, horizon_s: float) -> Enforced
    # Enforced.passed: list[Setpoint]      the setpoints to write
    # Enforced.violations: list[Violation] one per problem: device_id, quantity, value,
    #                                      bound, reason, kind; str(v) reads as a message

or the whole pipeline at once::

    safe_setpoints(site, snapshot, setpoints, limits, horizon_s) -> Enforced
    # check_setpoints -> guard_grid -> enforce

with ``limits = Limits.at(site, caps, now)`` (the connection's limits tightened by the active
operator caps) or ``Limits(import_w, export_w, bounds)``. A setpoint with a violation is not
written: the controller records the violation as an event instead.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from adapters.snapshot import Snapshot
from vpp.control.envelope import Bounds, Envelope, envelope
from vpp.control.safety import (
    QUANTITY,
    Setpoint,
    check_setpoints,
    delta_at,
    grid_limits_w,
    guard_grid,
    hold_value,
    measured_grid_w,
)
from vpp.control.state import OperatorCap
from vpp.core.site import Site

#: Slack on envelope edges, in the setpoint's unit, for float rounding.
ENVELOPE_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class Limits:
    """What the operator allows now: grid import and export limits [W, both >= 0] and extra
    per-device bounds (grid-operator signals), see :mod:`vpp.control.envelope`."""

    import_w: float
    export_w: float
    bounds: Bounds = field(default_factory=dict)

    @classmethod
    def at(
        cls, site: Site, caps: list[OperatorCap], when: datetime, bounds: Bounds | None = None
    ) -> Limits:
        """The connection's limits tightened by the operator caps active at ``when``."""
        imp, exp = grid_limits_w(site, caps, when)
        return cls(imp, exp, bounds or {})


@dataclass(frozen=True, slots=True)
class Violation:
    """A setpoint that may not be written: its device, quantity and value, the bound it
    crosses (NaN where there is none), why, and a short machine-readable kind."""

    device_id: str
    quantity: str
    value: float
    bound: float
    reason: str
    #: unknown_device, not_controllable, offline, duplicate, not_finite, envelope,
    #: grid_import, grid_export
    kind: str

    def __str__(self) -> str:
        return f"{self.device_id}: {self.quantity} {self.value:g} not written: {self.reason}"


@dataclass(frozen=True, slots=True)
class Enforced:
    """The setpoints that may be written and the violations of those that may not."""

    passed: list[Setpoint]
    violations: list[Violation]


def violations(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: Sequence[Setpoint],
    limits: Limits,
    horizon_s: float,
) -> list[Violation]:
    """Every way ``setpoints`` break the invariants of the module doc ([] = may be written)."""
    found: list[Violation] = []
    counts = Counter(sp.device_id for sp in setpoints)
    envs: list[Envelope | None] = []
    for sp in setpoints:
        env, problems = _device_checks(site, snapshot, sp, limits, horizon_s, counts[sp.device_id])
        envs.append(env)
        found += problems
    if snapshot is not None:
        found += _grid_checks(site, snapshot, setpoints, envs, limits)
    return found


def _device_checks(
    site: Site,
    snapshot: Snapshot | None,
    sp: Setpoint,
    limits: Limits,
    horizon_s: float,
    in_batch: int,
) -> tuple[Envelope | None, list[Violation]]:
    """Invariants 1 and 2 for one setpoint: its envelope (None for a device that takes no
    setpoint) and what it breaks."""
    quantity = QUANTITY.get(sp.kind, str(sp.kind))
    found: list[Violation] = []

    def add(bound: float, reason: str, kind: str) -> None:
        found.append(Violation(sp.device_id, quantity, sp.power_w, bound, reason, kind))

    try:
        device = site.device(sp.device_id)
    except KeyError:
        add(math.nan, "no such device in the site", "unknown_device")
        return None, found
    env = envelope(site, snapshot, sp.device_id, horizon_s, limits.bounds.get(sp.device_id, ()))
    if env is None or device.kind != sp.kind or not device.enabled:
        why = "disabled" if not device.enabled else f"a {device.kind} takes no {quantity}"
        add(math.nan, why, "not_controllable")
        return None, found
    state = snapshot.devices.get(sp.device_id) if snapshot is not None else None
    if state is None or not state.health.online:
        error = state.health.last_error if state is not None else None
        add(math.nan, f"device not online ({error or 'no reading'})", "offline")
    if in_batch > 1:
        add(math.nan, f"{in_batch} setpoints for one device in a batch", "duplicate")
    if not math.isfinite(sp.power_w):
        add(math.nan, "not a finite number", "not_finite")
    elif sp.power_w > env.hi + _tol(env.hi):
        add(env.hi, f"above {env.hi:g} set by {env.hi_source}", "envelope")
    elif sp.power_w < env.lo - _tol(env.lo):
        add(env.lo, f"below {env.lo:g} set by {env.lo_source}", "envelope")
    return env, found


def _tol(bound: float) -> float:
    return ENVELOPE_TOL + 1e-9 * abs(bound)


def _grid_checks(
    site: Site,
    snapshot: Snapshot,
    setpoints: Sequence[Setpoint],
    envs: Sequence[Envelope | None],
    limits: Limits,
) -> list[Violation]:
    """Invariant 3: no avoidable push while the predicted exchange is past its target."""
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    asked, held = [], []
    for sp, env in zip(setpoints, envs, strict=True):
        finite = math.isfinite(sp.power_w)
        d = delta_at(sp.device_id, sp.power_w, site, snapshot) if finite else 0.0
        asked.append(d)
        if env is None or not finite:
            held.append(d)
        else:
            held.append(delta_at(sp.device_id, hold_value(site, snapshot, sp, env), site, snapshot))
    predicted = grid + sum(asked)
    tol = 1e-3 + 1e-9 * (abs(grid) + sum(abs(d) for d in asked))
    import_target = max(limits.import_w, grid)
    export_target = min(-limits.export_w, grid)
    if predicted > import_target + tol:
        sign, which, target = 1, "import", import_target
    elif predicted < export_target - tol:
        sign, which, target = -1, "export", export_target
    else:
        return []
    out = []
    for sp, a, h in zip(setpoints, asked, held, strict=True):
        if sign * (a - h) > ENVELOPE_TOL:
            why = (
                f"pushes the grid {which} {abs(a - h):.0f} W further than holding would, "
                f"with the exchange predicted at {predicted:.0f} W past {target:.0f} W"
            )
            quantity = QUANTITY.get(sp.kind, str(sp.kind))
            out.append(Violation(sp.device_id, quantity, sp.power_w, target, why, f"grid_{which}"))
    return out


def enforce(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: list[Setpoint],
    limits: Limits,
    horizon_s: float,
) -> Enforced:
    """The setpoints that may be written, and the violations of the others (module doc).

    A device with a violation is left out; the rest is checked again, since leaving one out
    changes the grid prediction, until what remains passes.
    """
    passed = list(setpoints)
    found: list[Violation] = []
    while new := violations(site, snapshot, passed, limits, horizon_s):
        found += new
        bad = {v.device_id for v in new}
        passed = [sp for sp in passed if sp.device_id not in bad]
    return Enforced(passed, found)


def safe_setpoints(
    site: Site,
    snapshot: Snapshot | None,
    setpoints: list[Setpoint],
    limits: Limits,
    horizon_s: float,
) -> Enforced:
    """The whole pipeline: ``check_setpoints``, ``guard_grid``, then :func:`enforce`."""
    checked = check_setpoints(site, snapshot, setpoints, horizon_s, limits.bounds)
    guarded = guard_grid(site, snapshot, checked, limits.import_w, limits.export_w)
    return enforce(site, snapshot, guarded, limits, horizon_s)
