"""Envelopes: the lowest and highest setpoint each device may be given now.

One definition, used twice: :func:`vpp.control.safety.check_setpoints` clamps every setpoint
into its device's envelope, and :func:`vpp.control.invariants.violations` checks the final
output of the setpoint pipeline against the same envelope. Later stages (the grid guard) only
move a setpoint between its checked value and the point of the envelope nearest to what the
device does now, so they cannot leave it.

An envelope is the intersection of bounds, each ``(lo, hi, source)`` in the unit of the
device's setpoint, W (battery, > 0 discharge; PV cap on AC output; heat pump electric):

==========  ===============================================================================
battery     the site file's ratings; the live ratings the battery reports (its own maximum
            charge and discharge power); the state-of-charge window over the step, with
            ``h = max(horizon_s, 1 s)``: ``p_dis <= (soc - soc_min) * capacity * eta_d / h``,
            ``p_ch <= (soc_max - soc) * capacity / (eta_c * h)`` (no charge above the window,
            no discharge below it; an unreadable SoC allows neither)
pv          ``min_limit_pct`` of ``rated_w`` .. ``rated_w`` (several inverters go to standby
            at 0 %)
heat pump   0 .. ``max_el_w``
==========  ===============================================================================

Extra per-device bounds, e.g. grid-operator signals (a §14a EnWG consumption floor that caps
battery charging and the heat pump at 4.2 kW, a §9 EEG feed-in percentage that caps the PV
output), come as :data:`Bounds`: device id -> sequence of :class:`Bound`. They are intersected
after the device's own bounds, in order. A bound narrows the envelope but never moves it
outside what the device itself allows: one that does not overlap pins the envelope to the
nearest edge (device safety first).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.snapshot import BatteryReading, Snapshot
from vpp.core.records import quick_init
from vpp.core.site import BatteryDevice, DeviceKind, Site

#: Seconds a setpoint is assumed to stay in force when no horizon is given: a quarter hour,
#: the longest a dispatched setpoint holds (the tightest state-of-charge window).
DEFAULT_HORIZON_S = 900.0
#: Device kinds that take a setpoint.
CONTROLLABLE = frozenset({DeviceKind.BATTERY, DeviceKind.PV, DeviceKind.HEAT_PUMP})


@quick_init  # made per battery and check: see vpp.core.records
@dataclass(frozen=True, slots=True)
class Bound:
    """One constraint on a device's setpoint: ``lo <= value <= hi`` (either side may be
    infinite), in the setpoint's unit; ``source`` says where it comes from."""

    lo: float
    hi: float
    source: str

    def __post_init__(self) -> None:
        if not self.lo <= self.hi:  # also refuses NaN
            raise ValueError(f"bound {self.source!r}: lo {self.lo} must be <= hi {self.hi}")


#: Extra bounds by device id, intersected after the device's own.
Bounds = Mapping[str, Sequence[Bound]]


@quick_init  # made per device and check
@dataclass(frozen=True, slots=True)
class Envelope:
    """The setpoints a device may be given now: ``lo <= value <= hi``, in the setpoint's unit.
    ``lo_source``/``hi_source`` name the bound that sets each edge."""

    lo: float
    hi: float
    lo_source: str
    hi_source: str

    def clip(self, value: float) -> float:
        """The point of the envelope nearest to ``value``."""
        return min(max(value, self.lo), self.hi)

    def contains(self, value: float, tol: float = 0.0) -> bool:
        return self.lo - tol <= value <= self.hi + tol

    def narrow(self, bound: Bound) -> Envelope:
        """This envelope intersected with ``bound``, kept inside this envelope."""
        lo, hi = self.clip(bound.lo), self.clip(bound.hi)
        return Envelope(
            lo,
            hi,
            bound.source if lo > self.lo else self.lo_source,
            bound.source if hi < self.hi else self.hi_source,
        )


def intersect(bounds: Iterable[Bound]) -> Envelope:
    """The intersection of ``bounds``, the first taking precedence (see the module doc)."""
    # Envelope.narrow, one bound after the other, on plain floats (one Envelope at the end).
    lo, hi, lo_source, hi_source = -math.inf, math.inf, "", ""
    for bound in bounds:
        new_lo = min(max(bound.lo, lo), hi)
        new_hi = min(max(bound.hi, lo), hi)
        if new_lo > lo:
            lo_source = bound.source
        if new_hi < hi:
            hi_source = bound.source
        lo, hi = new_lo, new_hi
    return Envelope(lo, hi, lo_source, hi_source)


@functools.lru_cache(maxsize=4096)
def fixed_bound(lo: float, hi: float, source: str) -> Bound:
    """``Bound(lo, hi, source)``, made once: the bounds that come from a device's config
    alone (ratings, the PV minimum) are the same at every check of every dispatch."""
    return Bound(lo, hi, source)


def battery_bounds(
    device: BatteryDevice, reading: BatteryReading | None, horizon_s: float
) -> list[Bound]:
    """The battery's own bounds [W, > 0 discharge]: ratings, live ratings, SoC window."""
    bounds = [fixed_bound(-device.max_charge_w, device.max_discharge_w, "rating")]
    if reading is None:
        return bounds
    live_ch, live_dis = reading.max_charge_w, reading.max_discharge_w
    if (live_ch is not None and live_ch >= 0) or (live_dis is not None and live_dis >= 0):
        lo = -live_ch if live_ch is not None and live_ch >= 0 else -math.inf
        hi = live_dis if live_dis is not None and live_dis >= 0 else math.inf
        bounds.append(Bound(lo, hi, "live rating"))
    soc = reading.soc_pct
    if soc is not None:
        if not math.isfinite(soc):
            bounds.append(Bound(0.0, 0.0, "state of charge (unreadable)"))
            return bounds
        hours = effective_horizon_s(horizon_s) / 3600.0
        above, below = soc_room_wh(device, soc)
        dis = max(0.0, above * device.discharge_efficiency / hours)
        ch = max(0.0, below / device.charge_efficiency / hours)
        bounds.append(Bound(-ch, dis, "state of charge"))
    return bounds


def soc_room_wh(device: BatteryDevice, soc_pct: float) -> tuple[float, float]:
    """The energy [Wh] the battery holds above its SoC minimum and lacks below its SoC
    maximum at ``soc_pct`` (negative outside the window)."""
    above = (soc_pct - device.soc_min_pct) / 100 * device.capacity_wh
    below = (device.soc_max_pct - soc_pct) / 100 * device.capacity_wh
    return above, below


def effective_horizon_s(horizon_s: float) -> float:
    """The time [s] a power must be held for: ``horizon_s``, at least one second
    (:data:`DEFAULT_HORIZON_S` for NaN)."""
    if math.isnan(horizon_s):
        return DEFAULT_HORIZON_S
    return max(horizon_s, 1.0)


def _battery(device: Any, reading: object, horizon_s: float) -> list[Bound]:
    bat = reading if isinstance(reading, BatteryReading) else None
    return battery_bounds(device, bat, horizon_s)


def _pv(device: Any, reading: object, horizon_s: float) -> list[Bound]:
    rated = float(device.rated_w)
    return [
        fixed_bound(device.min_limit_pct / 100.0 * rated, math.inf, "the inverter's minimum limit"),
        fixed_bound(-math.inf, rated, "rating"),
    ]


def _heat_pump(device: Any, reading: object, horizon_s: float) -> list[Bound]:
    return [fixed_bound(0.0, device.max_el_w, "rating")]


#: The device's own bounds, by kind: (device config, its reading, horizon [s]) -> bounds.
OWN_BOUNDS: dict[DeviceKind, Callable[[Any, object, float], list[Bound]]] = {
    DeviceKind.BATTERY: _battery,
    DeviceKind.PV: _pv,
    DeviceKind.HEAT_PUMP: _heat_pump,
}


def device_bounds(
    site: Site, snapshot: Snapshot | None, device_id: str, horizon_s: float
) -> list[Bound] | None:
    """The device's own bounds, or None for a device that takes no setpoint (or is unknown)."""
    try:
        device = site.device(device_id)
    except KeyError:
        return None
    own = OWN_BOUNDS.get(device.kind)
    if own is None:
        return None
    state = snapshot.devices.get(device_id) if snapshot is not None else None
    return own(device, state.reading if state is not None else None, horizon_s)


def envelope(
    site: Site,
    snapshot: Snapshot | None,
    device_id: str,
    horizon_s: float,
    extra: Sequence[Bound] = (),
) -> Envelope | None:
    """The envelope of one device now (None for a device that takes no setpoint).

    horizon_s : seconds until the next setpoint (the state-of-charge window's step)
    extra : more bounds for this device, after its own (see the module doc)
    """
    own = device_bounds(site, snapshot, device_id, horizon_s)
    if own is None:
        return None
    return intersect([*own, *extra])


def envelopes(
    site: Site, snapshot: Snapshot | None, horizon_s: float, bounds: Bounds | None = None
) -> dict[str, Envelope]:
    """The envelope of every controllable, enabled device of the site."""
    out: dict[str, Envelope] = {}
    extra = bounds or {}
    for device in site.devices:
        if device.enabled and device.kind in CONTROLLABLE:
            env = envelope(site, snapshot, device.id, horizon_s, extra.get(device.id, ()))
            if env is not None:
                out[device.id] = env
    return out
