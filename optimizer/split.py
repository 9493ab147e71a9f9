"""Split each virtual unit's plan over its devices.

PV: a unit's output lies between the sum of its inverters' lowest reachable outputs and the sum
of their available powers; every inverter gets the same fraction of its own curtailable range,
which adds up exactly and keeps each inverter inside its range.

Batteries: step by step, the unit's net power is shared by water-filling over the devices'
headroom. Charging power goes in proportion to each device's room below its SoC maximum,
discharging power in proportion to its energy above its SoC minimum, each capped by the
device's power limit and by what fits into the rest of the step. Sharing by room keeps the
members' fill levels converging, so the unit keeps behaving like one battery. When the unit
asks for more than its devices can give in a step (its members have drifted apart), the
shortfall is returned per unit and step; the planner tightens that unit's bound and re-solves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from optimizer.aggregate import BatteryFleet, Clusters

F64 = NDArray[np.float64]


@dataclass
class DeviceDispatch:
    """Per-device setpoints. Powers W, energies Wh; shapes (devices, steps)."""

    #: Net battery power, > 0 discharging.
    bat_w: F64
    #: Battery energy at the end of each step.
    bat_soc_wh: F64
    #: PV output after curtailment.
    pv_w: F64
    #: PV limit to write: the output where curtailed, else the rated power (no limit).
    pv_limit_w: F64
    #: Unit power the devices could not deliver, per battery unit and step, W (>= 0).
    bat_shortfall_w: F64


def split_pv(
    unit_w: F64,
    clusters: Clusters,
    avail_w: F64,
    min_w: F64,
    rated_w: F64,
    tolerance_w: float,
    unit_sums: tuple[F64, F64] | None = None,
) -> tuple[F64, F64]:
    """Share each PV unit's output over its inverters; returns (output, limit), W.

    ``out[i,t] = lo[i,t] + f[u,t] * (avail[i,t] - lo[i,t])`` with the unit's fraction
    ``f = (P[u,t] - sum lo) / (sum avail - sum lo)``, so ``sum_i out[i,t] = P[u,t]``.

    unit_sums : ``clusters.sum(min_w)`` and ``clusters.sum(avail_w)`` where the caller holds
        them (the units' bounds in the model)
    """
    if len(clusters) == 0:
        empty = np.zeros_like(avail_w)
        return empty, empty
    lo_sum, avail_sum = unit_sums or (clusters.sum(min_w), clusters.sum(avail_w))
    span = avail_sum - lo_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span > 0, (unit_w - lo_sum) / np.where(span > 0, span, 1.0), 0.0)
    frac = np.ascontiguousarray(np.clip(frac, 0.0, 1.0))
    out, limit = np.empty_like(avail_w), np.empty_like(avail_w)
    _pv_kernel(
        frac,
        clusters.unit_of,
        np.ascontiguousarray(avail_w, dtype=np.float64),
        np.ascontiguousarray(min_w, dtype=np.float64),
        np.ascontiguousarray(rated_w, dtype=np.float64),
        float(tolerance_w),
        out,
        limit,
    )
    return out, limit


@njit(cache=True)
def _pv_kernel(
    frac: F64,
    unit_of: NDArray[np.int64],
    avail: F64,
    lo: F64,
    rated: F64,
    tolerance: float,
    out: F64,
    limit: F64,
) -> None:
    """``out = lo + frac[unit] * (avail - lo)``; ``limit`` the output where it is curtailed,
    else the rating (one pass instead of a temporary array per operation)."""
    for i in range(avail.shape[0]):
        u = unit_of[i]
        for t in range(avail.shape[1]):
            o = lo[i, t] + frac[u, t] * (avail[i, t] - lo[i, t])
            out[i, t] = o
            limit[i, t] = o if o < avail[i, t] - tolerance else rated[i]


def split_batteries(
    unit_net_w: F64,
    clusters: Clusters,
    fleet: BatteryFleet,
    dt_h: float,
    previous: tuple[F64, F64, F64, F64] | None = None,
    charge_max_w: F64 | None = None,
) -> tuple[F64, F64, F64]:
    """Share each battery unit's net power over its devices.

    charge_max_w : each device's charging limit per step [W], shape (devices, steps); its
        rating where None. A device is never planned to charge above it.

    Returns (device net power W, device energy Wh at step ends, unit shortfall W).

    previous : (unit net power, device power, device energy, shortfall) of an earlier split
        of the same units and fleet. A unit's split depends on its own row of net power
        only, so only the units whose row changed are split again; the result is the same,
        to the bit, as splitting all of them (between split rounds most units are unchanged).
    """
    n, steps = len(fleet), unit_net_w.shape[1] if unit_net_w.ndim == 2 else 0
    if n == 0:
        return np.zeros((0, steps)), np.zeros((0, steps)), np.zeros((0, steps))
    net = np.ascontiguousarray(unit_net_w, dtype=np.float64)
    if charge_max_w is None:
        pch = np.repeat(fleet.max_charge_w[:, None], steps, axis=1)
    else:
        pch = np.minimum(fleet.max_charge_w[:, None], np.maximum(charge_max_w, 0.0))
    if previous is None:
        units = np.arange(net.shape[0], dtype=np.int64)
        power, soc, short = np.zeros((n, steps)), np.zeros((n, steps)), np.zeros(net.shape)
    else:
        before, power, soc, short = previous
        units = np.flatnonzero((net != before).any(axis=1)).astype(np.int64)
        power, soc, short = power.copy(), soc.copy(), short.copy()
    _split_kernel(
        net,
        units,
        clusters.order,
        clusters.start,
        fleet.soc0_wh,
        fleet.soc_min_wh,
        fleet.soc_max_wh,
        np.ascontiguousarray(pch, dtype=np.float64),
        fleet.max_discharge_w,
        fleet.eta_charge,
        fleet.eta_discharge,
        float(dt_h),
        power,
        soc,
        short,
    )
    return power, soc, short


@njit(cache=True)
def _waterfill(amount: float, head: F64, weight: F64) -> F64:
    """Share ``amount`` in proportion to ``weight``, capped at ``head``; exact if it fits."""
    k = head.shape[0]
    x = np.zeros(k)
    if amount <= 0.0:
        return x
    if amount >= head.sum():
        return head.copy()
    free = head > 0.0
    w = np.where(free & (weight > 0.0), weight, 0.0)
    if w.sum() <= 0.0:
        w = np.where(free, head, 0.0)
    remaining = amount
    for _ in range(k + 1):
        total = w[free].sum()
        if total <= 0.0 or remaining <= 0.0:
            break
        lam = remaining / total
        saturated = free & (lam * w >= head)
        if not saturated.any():
            for i in range(k):
                if free[i]:
                    x[i] = lam * w[i]
            break
        for i in range(k):
            if saturated[i]:
                x[i] = head[i]
                remaining -= head[i]
                free[i] = False
    # Rounding: put the last fraction of a watt where there is room.
    rest = amount - x.sum()
    j = np.argmax(head - x)
    x[j] = min(head[j], max(0.0, x[j] + rest))
    return x


@njit(cache=True)
def _split_kernel(
    net: F64,
    units: NDArray[np.int64],
    order: NDArray[np.int64],
    start: NDArray[np.int64],
    soc0: F64,
    lo: F64,
    hi: F64,
    pch: F64,
    pdis: F64,
    eta_c: F64,
    eta_d: F64,
    dt: float,
    power: F64,
    soc: F64,
    short: F64,
) -> None:
    """Split the units listed in ``units``, writing their devices' rows of ``power`` and
    ``soc`` and their own rows of ``short``."""
    steps = net.shape[1]
    for u in units:
        idx = order[start[u] : start[u + 1]]
        s = soc0[idx].copy()
        for t in range(steps):
            target = net[u, t]
            if target < 0.0:
                room = np.maximum(hi[idx] - s, 0.0)
                head = np.minimum(pch[idx, t], room / (eta_c[idx] * dt))
                x = _waterfill(-target, head, room)
                s = s + eta_c[idx] * x * dt
                power[idx, t] = -x
            else:
                avail = np.maximum(s - lo[idx], 0.0)
                head = np.minimum(pdis[idx], avail * eta_d[idx] / dt)
                x = _waterfill(target, head, avail)
                s = s - x * dt / eta_d[idx]
                power[idx, t] = x
            soc[idx, t] = s
            gap = abs(target) - x.sum()
            # Differences at the level of float rounding are not a shortfall.
            short[u, t] = gap if gap > 1e-9 * max(1.0, abs(target)) else 0.0
