"""Devices as arrays, and clusters of similar devices planned as one virtual unit.

A swarm of thousands of interchangeable batteries makes the device-level LP large and
degenerate. The planner therefore models a few virtual units: batteries grouped by feeder,
band of hours at full discharge (capacity / max discharge power), efficiencies and wear cost;
PV inverters grouped by feeder. A unit's ratings are the sums of its members', so its plan can
be split back over the devices (:mod:`optimizer.split`). In ``device`` mode every device is
its own unit: the same code then plans the fleet device by device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.inputs import State
from optimizer.params import OptimizerParams
from vpp.core.site import Site

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class BatteryFleet:
    """Online batteries, one entry per device. Powers in W, energies in Wh."""

    ids: tuple[str, ...]
    feeders: tuple[str, ...]
    capacity_wh: F64
    max_charge_w: F64
    max_discharge_w: F64
    eta_charge: F64
    eta_discharge: F64
    soc_min_wh: F64
    soc_max_wh: F64
    wear_eur_per_mwh: F64
    soc0_wh: F64

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PvFleet:
    """Online PV inverters, one entry per device. Powers in W."""

    ids: tuple[str, ...]
    feeders: tuple[str, ...]
    rated_w: F64
    peak_wp: F64
    min_limit_w: F64

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Clusters:
    """Which unit each device belongs to.

    ``order`` lists device indices grouped by unit; unit ``u`` owns
    ``order[start[u]:start[u + 1]]``. ``unit_of[i]`` is device ``i``'s unit.
    """

    names: tuple[str, ...]
    unit_of: I64
    order: I64
    start: I64

    def __len__(self) -> int:
        return len(self.names)

    def sum(self, per_device: F64) -> F64:
        """Sum a per-device array (first axis = devices) per unit."""
        if len(self.names) == 0:
            return np.zeros((0, *per_device.shape[1:]))
        return np.add.reduceat(per_device[self.order], self.start[:-1], axis=0)


def battery_fleet(site: Site, state: State) -> tuple[BatteryFleet, list[str]]:
    """The online batteries as arrays; SoCs outside ``[0, capacity]`` are clamped (warned)."""
    devs = [b for b in site.batteries if b.id not in state.offline]
    warnings: list[str] = []
    cap = np.array([b.capacity_wh for b in devs], dtype=float)
    soc0 = np.array(
        [state.battery_soc_wh.get(b.id, b.capacity_wh * b.soc_initial_pct / 100) for b in devs],
        dtype=float,
    )
    missing = [b.id for b in devs if b.id not in state.battery_soc_wh]
    if missing and state.battery_soc_wh:
        warnings.append(
            f"no SoC for {len(missing)} batter(y/ies) (e.g. {missing[0]}): "
            "site's soc_initial_pct used"
        )
    bad = ~np.isfinite(soc0) | (soc0 < 0) | (soc0 > cap)
    if bad.any():
        warnings.append(
            f"SoC outside 0..capacity for {int(bad.sum())} batter(y/ies) "
            f"(e.g. {devs[int(np.argmax(bad))].id}): clamped"
        )
        soc0 = np.clip(np.nan_to_num(soc0, nan=0.0), 0.0, cap)
    fleet = BatteryFleet(
        ids=tuple(b.id for b in devs),
        feeders=tuple(b.feeder for b in devs),
        capacity_wh=cap,
        max_charge_w=np.array([b.max_charge_w for b in devs], dtype=float),
        max_discharge_w=np.array([b.max_discharge_w for b in devs], dtype=float),
        eta_charge=np.array([b.charge_efficiency for b in devs], dtype=float),
        eta_discharge=np.array([b.discharge_efficiency for b in devs], dtype=float),
        soc_min_wh=cap * np.array([b.soc_min_pct for b in devs], dtype=float) / 100,
        soc_max_wh=cap * np.array([b.soc_max_pct for b in devs], dtype=float) / 100,
        wear_eur_per_mwh=np.array([b.wear_cost_eur_per_mwh for b in devs], dtype=float),
        soc0_wh=soc0,
    )
    return fleet, warnings


def pv_fleet(site: Site, state: State) -> PvFleet:
    """The online PV inverters as arrays."""
    devs = [p for p in site.pv if p.id not in state.offline]
    rated = np.array([p.rated_w for p in devs], dtype=float)
    return PvFleet(
        ids=tuple(p.id for p in devs),
        feeders=tuple(p.feeder for p in devs),
        rated_w=rated,
        peak_wp=np.array([p.dc_peak_w for p in devs], dtype=float),
        min_limit_w=rated * np.array([p.min_limit_pct for p in devs], dtype=float) / 100,
    )


def clusters_from_keys(keys: list[str]) -> Clusters:
    """Group devices with equal keys; units are named by their key, in sorted order."""
    names = tuple(sorted(set(keys)))
    lookup = {name: u for u, name in enumerate(names)}
    unit_of = np.array([lookup[k] for k in keys], dtype=np.int64)
    order = np.argsort(unit_of, kind="stable").astype(np.int64)
    counts = np.bincount(unit_of, minlength=len(names))
    start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return Clusters(names=names, unit_of=unit_of, order=order, start=start)


def cluster_batteries(fleet: BatteryFleet, mode: str, params: OptimizerParams) -> Clusters:
    """Battery units: by feeder, hours-at-full-power band, efficiency band and wear band,
    then cut by fill level (:func:`_fill_groups`). A unit is named
    ``bat|<feeder>|h<band>|e<eta_c>-<eta_d>|w<wear>|s<group>``; units are in name order."""
    if mode == "device" or len(fleet) == 0:
        return clusters_from_keys(list(fleet.ids))
    hours = fleet.capacity_wh / fleet.max_discharge_w
    band = np.floor(np.log(np.maximum(hours, 1e-6)) / np.log(params.battery_ratio_band_factor))
    eta_c = np.round(fleet.eta_charge / params.efficiency_band).astype(int)
    eta_d = np.round(fleet.eta_discharge / params.efficiency_band).astype(int)
    wear = np.round(fleet.wear_eur_per_mwh / params.wear_band_eur_per_mwh).astype(int)
    feeders, feeder = np.unique(np.asarray(fleet.feeders, dtype=str), return_inverse=True)
    # The names are made once per distinct cluster, not once per device.
    codes = np.stack([feeder, band.astype(np.int64), eta_c, eta_d, wear], axis=1)
    first, cluster = _distinct_rows(codes)
    keys = [f"bat|{feeders[f]}|h{b}|e{c}-{d}|w{w}" for f, b, c, d, w in codes[first].tolist()]
    groups = _fill_groups(cluster, fleet, params)
    first, unit = _distinct_rows(np.stack([cluster, groups], axis=1))
    names = [f"{keys[c]}|s{g}" for c, g in zip(cluster[first], groups[first], strict=True)]
    return _clusters_from_codes(unit, names)


def _distinct_rows(codes: I64) -> tuple[I64, I64]:
    """Distinct rows of an integer table: the index of each one's first row, and each row's
    number among them (0..k-1)."""
    number = np.zeros(len(codes), dtype=np.int64)
    for column in codes.T:  # pair the rows so far with the next column, renumbered each time
        values, code = np.unique(column, return_inverse=True)
        key = number * len(values) + code.ravel()
        _, first, number = np.unique(key, return_index=True, return_inverse=True)
        number = number.ravel()
    return first.astype(np.int64), number.astype(np.int64)


def _clusters_from_codes(code: I64, names: list[str]) -> Clusters:
    """:func:`clusters_from_keys` of the keys ``names[code[i]]`` (``names`` distinct)."""
    rank = np.argsort(np.asarray(names, dtype=object), kind="stable")
    position = np.empty(len(names), dtype=np.int64)
    position[rank] = np.arange(len(names))
    unit_of = position[code].astype(np.int64)
    order = np.argsort(unit_of, kind="stable").astype(np.int64)
    counts = np.bincount(unit_of, minlength=len(names))
    start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return Clusters(names=tuple(names[i] for i in rank), unit_of=unit_of, order=order, start=start)


def _fill_groups(cluster: I64, fleet: BatteryFleet, params: OptimizerParams) -> I64:
    """Rank devices of each cluster by fill level and cut them into equal groups.

    A cluster of ``n`` members gets ``ceil(n / soc_group_members)`` groups, at least
    ``soc_groups_min`` and at most ``soc_groups`` (never more than ``n``): small clusters keep
    units of a few members, large ones get groups whose members start close together.

    Members of a unit that start at different fill levels run full or empty at different
    times, which the unit (one battery) cannot see; grouping by fill keeps members in step.
    The number of groups per cluster does not depend on the SoCs, so the model's structure
    stays the same from one plan to the next while devices move between groups.

    cluster : each device's cluster, numbered 0..k-1
    """
    span = np.maximum(fleet.soc_max_wh - fleet.soc_min_wh, 1e-9)
    fill = (fleet.soc0_wh - fleet.soc_min_wh) / span
    ranked = np.lexsort((fill, cluster))  # by cluster, then fill; ties in device order
    size = np.bincount(cluster)
    first = np.concatenate(([0], np.cumsum(size)[:-1]))
    wanted = np.maximum(params.soc_groups_min, -(-size // params.soc_group_members))
    groups = np.minimum(np.minimum(params.soc_groups, wanted), size)
    c = cluster[ranked]
    out = np.zeros(len(cluster), dtype=np.int64)
    out[ranked] = (np.arange(len(cluster)) - first[c]) * groups[c] // size[c]
    return out


def cluster_pv(fleet: PvFleet, mode: str) -> Clusters:
    """PV units: one per feeder (a sum of curtailable inverters splits back exactly)."""
    if mode == "device":
        return clusters_from_keys(list(fleet.ids))
    return clusters_from_keys([f"pv|{f}" for f in fleet.feeders])


@dataclass(frozen=True)
class BatteryUnits:
    """Virtual batteries: sums of their members' ratings. Powers W, energies Wh."""

    names: tuple[str, ...]
    capacity_wh: F64
    max_charge_w: F64
    max_discharge_w: F64
    soc_min_wh: F64
    soc_max_wh: F64
    soc0_wh: F64
    #: Capacity-weighted mean efficiencies and discharge-power-weighted mean wear cost.
    eta_charge: F64
    eta_discharge: F64
    wear_eur_per_mwh: F64


def battery_units(fleet: BatteryFleet, clusters: Clusters) -> BatteryUnits:
    """Sum the members' ratings per unit."""
    cap = clusters.sum(fleet.capacity_wh)
    pdis = clusters.sum(fleet.max_discharge_w)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta_c = clusters.sum(fleet.eta_charge * fleet.capacity_wh) / cap
        eta_d = clusters.sum(fleet.eta_discharge * fleet.capacity_wh) / cap
        wear = clusters.sum(fleet.wear_eur_per_mwh * fleet.max_discharge_w) / pdis
    return BatteryUnits(
        names=clusters.names,
        capacity_wh=cap,
        max_charge_w=clusters.sum(fleet.max_charge_w),
        max_discharge_w=pdis,
        soc_min_wh=clusters.sum(fleet.soc_min_wh),
        soc_max_wh=clusters.sum(fleet.soc_max_wh),
        soc0_wh=clusters.sum(fleet.soc0_wh),
        eta_charge=eta_c,
        eta_discharge=eta_d,
        wear_eur_per_mwh=wear,
    )


def pv_available(fleet: PvFleet, profile_w_per_kwp: F64, overrides: dict[int, F64]) -> F64:
    """Available AC power per inverter and step, W: profile x kWp, clipped at the AC rating.

    profile_w_per_kwp : site-wide PV profile per step [W/kWp]
    overrides : device index -> its own forecast per step [W], replacing the profile.
    """
    avail = np.outer(fleet.peak_wp / 1000.0, profile_w_per_kwp)
    for i, series in overrides.items():
        avail[i] = series
    return np.clip(avail, 0.0, fleet.rated_w[:, None])


def taper_lines(head_wh: F64, power_w: F64, eta: F64, clusters: Clusters) -> tuple[F64, F64]:
    """Lines ``P <= a + b * R`` bounding each unit's power by its remaining headroom ``R``.

    head_wh : per device, energy that can still go in (charging: room below the SoC maximum)
        or come out (discharging: energy above the SoC minimum) [Wh of stored energy]
    power_w : per device, power limit in that direction [W]
    eta : per device, stored energy per unit of power in that direction: ``eta_c`` when
        charging, ``1 / eta_d`` when discharging [-]
    Returns ``a`` [W] and ``b`` [1/h], each of shape (units, 2).

    If the unit runs at full power from now, member ``i`` reaches its limit after
    ``tau_i = head_i / (eta_i * p_i)`` hours and drops out; power as a function of the unit's
    remaining headroom is then a step curve falling from the full power to 0. The two lines run
    through the curve's corners at 0, where about half the power is left, and where the first
    member drops out, so the unit stops promising full power when some members are nearly
    full (or empty). Between the corners the lines can still promise a little more than the
    members give; the planner's split rounds catch that. Members already in step (all
    ``tau_i`` equal) get no taper: for them the plain power limit is exact.
    """
    units = len(clusters)
    a = np.tile(clusters.sum(power_w)[:, None], (1, 2)) if units else np.zeros((0, 2))
    b = np.zeros((units, 2))
    for u in range(units):
        idx = clusters.order[clusters.start[u] : clusters.start[u + 1]]
        line = _taper_for(head_wh[idx], power_w[idx], eta[idx])
        if line is not None:
            a[u], b[u] = line
    return a, b


def _taper_for(head: F64, power: F64, eta: F64) -> tuple[F64, F64] | None:
    rate = np.maximum(eta * power, 1e-12)  # stored energy per hour at full power
    tau = np.maximum(head, 0.0) / rate
    order = np.argsort(tau, kind="stable")
    tau, rate, power = tau[order], rate[order], power[order]
    full = power.sum()
    # After the k-th member stops: power left, and headroom left in the others.
    left_power = full - np.cumsum(power)
    tail_rate = rate.sum() - np.cumsum(rate)
    tail_rate_tau = (rate * tau).sum() - np.cumsum(rate * tau)
    left_head = np.maximum(tail_rate_tau - tau * tail_rate, 0.0)
    r1, p1 = left_head[0], left_power[0]
    if len(head) < 2 or r1 <= 1e-9 * max(head.sum(), 1.0):
        return None
    mid = int(np.argmax(left_power <= full / 2))
    rm, pm = left_head[mid], left_power[mid]
    if rm <= 1e-9 * r1 or r1 - rm <= 1e-9 * r1:
        return np.array([0.0, 0.0]), np.array([p1 / r1, p1 / r1])
    b = np.array([pm / rm, (p1 - pm) / (r1 - rm)])
    a = np.array([0.0, max(pm - b[1] * rm, 0.0)])
    return a, b


def share_lines(
    head_wh: F64, power_w: F64, eta: F64, dt_h: float, clusters: Clusters
) -> tuple[F64, F64]:
    """Lines ``P <= a + b * R_end`` on each unit's power, from how the split shares it.

    head_wh, power_w, eta : per device, as for :func:`taper_lines`
    dt_h : step length [h]
    Returns ``a`` [W] and ``b`` [1/h], each of shape (units, 2); ``R_end`` is the unit's
    headroom at the step's end [Wh stored], as the model's taper constraints take it.

    The split (:mod:`optimizer.split`) shares a unit's power in proportion to each member's
    headroom, so members keep their shares ``w_i = head_i / sum head`` of the unit's headroom
    ``R`` and fill up (or empty) together. In one step member ``i`` can then take at most
    ``min(p_i, w_i * R / c_i)`` with ``c_i = eta_i * dt``, and the unit at most
    ``f(R) = sum_i min(p_i, w_i * R / c_i)``: concave and piecewise linear in the headroom at
    the step's start, with a kink where each member reaches its power limit. A member that
    starts with no headroom takes nothing at all. Two of ``f``'s pieces (those in force at a
    third and at two thirds of the unit's power) are kept, so the lines never promise less
    than the members give under that sharing (the split rounds settle the rest). Each piece
    ``P <= a0 + s * R_start`` is rewritten on the headroom at the step's end,
    ``R_start = R_end + c * P`` (``c``: the unit's stored energy per W and step), as
    ``P <= (a0 + s * R_end) / (1 - s * c)``; the first piece (no member at its limit) has
    ``s * c = 1``, which the SoC bounds already enforce.

    Unlike :func:`taper_lines`, which assumes the unit runs at full power from the start and
    so holds back power near full and empty over the whole horizon, these lines only bind in
    the last step or so before a unit runs full or empty.
    """
    units = len(clusters)
    full = clusters.sum(power_w) if units else np.zeros(0)
    a = np.tile(full[:, None], (1, 2)) if units else np.zeros((0, 2))
    b = np.zeros((units, 2))
    for u in range(units):
        idx = clusters.order[clusters.start[u] : clusters.start[u + 1]]
        line = _share_for(head_wh[idx], power_w[idx], eta[idx] * dt_h)
        if line is not None:
            a[u], b[u] = line
    return a, b


def _share_for(head: F64, power: F64, c: F64) -> tuple[F64, F64] | None:
    head = np.maximum(head, 0.0)
    total = head.sum()
    if len(head) < 2 or total <= 0.0:
        return None
    w = head / total
    # Unit stored energy per W and step: the members' c weighted by their power limits.
    c_unit = float((c * power).sum() / max(power.sum(), 1e-12))
    taking = w > 0.0
    kink = np.full(len(head), np.inf)
    kink[taking] = power[taking] * c[taking] / w[taking]  # headroom where i reaches p_i
    order = np.argsort(kink, kind="stable")
    rate = np.where(taking, w / np.maximum(c, 1e-12), 0.0)[order]
    limit = np.where(taking, power, 0.0)[order]
    # Piece k: members order[:k] at their limits, the others still in proportion.
    a0 = np.concatenate(([0.0], np.cumsum(limit)))
    slope = np.concatenate(([rate.sum()], rate.sum() - np.cumsum(rate)))
    reach = limit.sum()
    lines = []
    for share in (1 / 3, 2 / 3):
        k = int(np.searchsorted(a0, share * reach, side="right"))
        k = min(max(k, 1), len(a0) - 1)
        s = max(slope[k], 0.0)
        denom = 1.0 - s * c_unit
        if denom <= 1e-9:
            return None
        lines.append((a0[k] / denom, s / denom))
    if all(s == 0.0 and a >= power.sum() for a, s in lines):
        return None
    return np.array([lines[0][0], lines[1][0]]), np.array([lines[0][1], lines[1][1]])
