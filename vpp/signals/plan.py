"""Signals as constraints of the next plan: per-step grid caps and per-device caps.

The plan sees what the safety layer will enforce: over the plan's steps, the signals active
at each step are resolved exactly as the safety layer resolves them now
(:func:`vpp.signals.resolve.active_bounds`, the stricter signal winning), and become

- ``import_cap_w`` and ``export_cap_w`` per step (NaN: no signal caps the exchange), which
  :func:`vpp.control.cycle.plan_limits` folds into the plan's grid limits, and
- one ``<device_id>.cap_w`` column per capped device (:data:`optimizer.inputs.DEVICE_CAP_SUFFIX`):
  a PV inverter's output, a battery's charging or a heat pump's electric power [W].

A signal without an end holds over the whole horizon (it lasts until it is revoked). The
steps are resolved once per stretch in which the set of active signals does not change.
Where the caps leave the plan no way to balance (an export cap below what cannot be
curtailed), the optimizer's slacks carry the rest and the plan reports them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from optimizer.inputs import DEVICE_CAP_SUFFIX
from vpp.control.envelope import Bound
from vpp.core.site import DeviceKind, Site
from vpp.signals.model import Signal
from vpp.signals.resolve import Resolved, active_bounds


@dataclass(frozen=True, slots=True)
class PlanCaps:
    """Per-step caps from the signals, on the plan's index."""

    import_cap_w: pd.Series
    export_cap_w: pd.Series
    #: ``<device_id>.cap_w`` columns [W]; NaN where no signal caps the device.
    devices: pd.DataFrame


def device_cap_w(kind: DeviceKind, bounds: Iterable[Bound]) -> float:
    """The cap [W] a device's signal bounds put on its power in the capped direction: a
    battery's charging (the bound's low side, as a positive number), a PV inverter's or heat
    pump's power (the high side)."""
    if kind == DeviceKind.BATTERY:
        return min((-b.lo for b in bounds), default=math.inf)
    return min((b.hi for b in bounds), default=math.inf)


def plan_caps(site: Site, index: pd.DatetimeIndex, signals: Iterable[Signal]) -> PlanCaps:
    """The signals' caps for each step of ``index`` (step starts, UTC)."""
    signals = tuple(signals)
    steps = len(index)
    imp = np.full(steps, np.nan)
    exp = np.full(steps, np.nan)
    caps: dict[str, np.ndarray] = {}
    if signals and steps:
        for lo, hi, resolved in _stretches(site, index, signals):
            if resolved.import_cap_w is not None:
                imp[lo:hi] = resolved.import_cap_w
            if resolved.export_cap_w is not None:
                exp[lo:hi] = resolved.export_cap_w
            for device_id, bounds in resolved.bounds.items():
                cap = device_cap_w(site.device(device_id).kind, bounds)
                if math.isfinite(cap):
                    col = caps.setdefault(device_id, np.full(steps, np.nan))
                    col[lo:hi] = cap
    devices = pd.DataFrame(
        {f"{d}{DEVICE_CAP_SUFFIX}": v for d, v in caps.items()}, index=index, dtype=float
    )
    return PlanCaps(pd.Series(imp, index=index), pd.Series(exp, index=index), devices)


def _stretches(
    site: Site, index: pd.DatetimeIndex, signals: tuple[Signal, ...]
) -> list[tuple[int, int, Resolved]]:
    """(first step, end step, resolved) for each stretch of steps with the same signals. A
    signal counts for every step it overlaps, even in part (the stricter reading)."""
    step = pd.Timedelta(index[1] - index[0]) if len(index) > 1 else pd.Timedelta(minutes=15)
    starts = [t.to_pydatetime() for t in index]
    keys = [_overlapping(signals, t, t + step.to_pytimedelta()) for t in starts]
    out: list[tuple[int, int, Resolved]] = []
    lo = 0
    for i in range(1, len(starts) + 1):
        if i == len(starts) or keys[i] != keys[lo]:
            at = starts[lo]
            held = [replace(signals[k], start=at, end=None) for k in keys[lo]]
            out.append((lo, i, active_bounds(site, held, at)))
            lo = i
    return out


def _overlapping(signals: tuple[Signal, ...], start: datetime, end: datetime) -> tuple[int, ...]:
    return tuple(
        i for i, s in enumerate(signals) if s.start < end and (s.end is None or s.end > start)
    )
