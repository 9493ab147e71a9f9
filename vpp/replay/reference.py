"""Plain-Python reference of the plant simulator (:mod:`vpp.replay.plant`).

Written for reading, not speed: one device at a time, the batteries through the very
functions the simulated devices use (:mod:`adapters.sim.physics`). The tests hold the numba
kernels equal to it. Units and signs as in :mod:`vpp.replay.plant`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adapters.sim import physics
from vpp.replay import plant as k


@dataclass
class RefState:
    """Stored energy of each battery [Wh] and of the thermal store [Wh]."""

    soc_wh: list[float]
    store_wh: float


def _limits(row: list[float]) -> physics.BatteryLimits:
    cap = row[k.B_CAP]
    return physics.BatteryLimits(
        capacity_wh=cap,
        max_charge_w=row[k.B_MAX_CH],
        max_discharge_w=row[k.B_MAX_DIS],
        soc_min_pct=100.0 * row[k.B_SOC_MIN] / cap,
        soc_max_pct=100.0 * row[k.B_SOC_MAX] / cap,
        charge_efficiency=row[k.B_ETA_C],
        discharge_efficiency=row[k.B_ETA_D],
    )


def ref_heat(
    heat: list[float], inp: list[float], hp_set_w: float, state: RefState, out: dict[str, float]
) -> None:
    """Heat pump, store, boiler and dry coolers for one step (see the plant's docstring)."""
    dt = heat[k.H_DT]
    cop, waste, demand = inp[k.I_COP], inp[k.I_WASTE], inp[k.I_DEMAND]
    el = hp_set_w
    if 0 < el < heat[k.H_HP_MIN]:
        el = heat[k.H_HP_MIN]  # the unit cannot run below its minimum part load
    el = min(max(el, 0.0), heat[k.H_HP_MAX])
    el = 0.0 if cop <= 1.0 else min(el, waste / (cop - 1.0))
    after_losses = state.store_wh * heat[k.H_KEEP]
    room_w = min(heat[k.H_STORE_CH], max(0.0, (heat[k.H_STORE_CAP] - after_losses) / dt))
    if cop * el > demand + room_w:  # nowhere to put the heat: throttle
        el = (demand + room_w) / cop
    th = cop * el
    if th >= demand:
        charge, discharge, boiler = th - demand, 0.0, 0.0
    else:
        discharge = min(demand - th, heat[k.H_STORE_DIS], after_losses / dt)
        boiler = min(demand - th - discharge, heat[k.H_BOILER])
        charge = 0.0
    source = (cop - 1.0) * el if el > 0 else 0.0
    new_store = after_losses + (charge - discharge) * dt
    out.update(
        heat_pump_el_w=el,
        heat_pump_th_w=th,
        waste_heat_used_th_w=source,
        dry_cooler_th_w=max(0.0, waste - source),
        dry_cooler_el_w=heat[k.H_DRY_K] * max(0.0, waste - source),
        store_charge_th_w=charge,
        store_discharge_th_w=discharge,
        store_wh=min(max(new_store, 0.0), heat[k.H_STORE_CAP]),
        store_loss_th_w=(state.store_wh - after_losses) / dt,
        boiler_th_w=boiler,
        unmet_heat_th_w=max(0.0, demand - th) - discharge - boiler,
        heat_demand_th_w=demand,
        waste_heat_th_w=waste,
    )
    state.store_wh = out["store_wh"]


def ref_electric(
    bat: list[list[float]],
    pv_rated: list[float],
    heat: list[float],
    pv_avail: list[float],
    inp: list[float],
    bat_set: list[float],
    pv_limit: list[float],
    state: RefState,
    out: dict[str, float],
) -> tuple[list[float], list[float]]:
    """Batteries, PV and grid for one step; returns battery and PV powers [W]."""
    dt_s = heat[k.H_DT] * 3600.0
    bat_w = []
    for i, row in enumerate(bat):
        lim = _limits(row)
        p = physics.battery_power_w(bat_set[i], state.soc_wh[i], dt_s, lim)
        state.soc_wh[i] = physics.battery_stored_wh(state.soc_wh[i], p, dt_s, lim)
        bat_w.append(p)
    pv_w = [max(0.0, min(a, lim_w)) for a, lim_w in zip(pv_avail, pv_limit, strict=True)]
    battery = sum(bat_w)
    out.update(
        pv_w=sum(pv_w),
        pv_available_w=sum(pv_avail),
        load_w=inp[k.I_LOAD],
        battery_w=battery,
        battery_charge_w=sum(-p for p in bat_w if p < 0),
        battery_discharge_w=sum(p for p in bat_w if p > 0),
        battery_soc_wh=sum(state.soc_wh),
        grid_w=physics.grid_power_w(
            inp[k.I_LOAD], out["heat_pump_el_w"], out["dry_cooler_el_w"], sum(pv_w), battery
        ),
    )
    return bat_w, pv_w


def ref_rule_setpoints(
    rule: int,
    bat: list[list[float]],
    pv_rated: list[float],
    heat: list[float],
    pv_avail: list[float],
    inp: list[float],
    state: RefState,
    out: dict[str, float],
) -> list[float]:
    """Battery setpoints of a baseline rule, once the heat side of the step is known."""
    if rule != k.RULE_SELF_CONSUMPTION:
        return [0.0] * len(bat)
    pv = sum(min(a, r) for a, r in zip(pv_avail, pv_rated, strict=True))
    net = inp[k.I_LOAD] + out["heat_pump_el_w"] + out["dry_cooler_el_w"] - pv
    dt_s = heat[k.H_DT] * 3600.0
    able = []
    for i, row in enumerate(bat):
        lim = _limits(row)
        probe = lim.max_discharge_w if net > 0 else -lim.max_charge_w
        able.append(abs(physics.battery_power_w(probe, state.soc_wh[i], dt_s, lim)))
    total = sum(able)
    share = min(1.0, abs(net) / total) if total > 0 else 0.0
    return [(1.0 if net > 0 else -1.0) * a * share for a in able]


def ref_heat_led_w(heat: list[float], inp: list[float]) -> float:
    cop = inp[k.I_COP]
    return 0.0 if cop <= 1.0 else min(inp[k.I_DEMAND] / cop, heat[k.H_HP_MAX])


def ref_run_rule(
    rule: int,
    bat: list[list[float]],
    pv_rated: list[float],
    heat: list[float],
    pv_avail: list[list[float]],
    inp: list[list[float]],
    soc0: list[float],
    store0: float,
    pv_cap: list[list[float]] | None = None,
    charge_cap: list[list[float]] | None = None,
    export_cap: list[float] | None = None,
) -> list[dict[str, float]]:
    """A baseline day, one dict of :data:`OUTPUT_COLUMNS` per step; the caps as in
    :func:`vpp.replay.plant.run_rule` (None: none)."""
    state = RefState(list(soc0), store0)
    rows = []
    inf = float("inf")
    for t, step in enumerate(inp):
        out: dict[str, float] = {}
        ref_heat(heat, step, ref_heat_led_w(heat, step), state, out)
        caps = pv_cap[t] if pv_cap is not None else [inf] * len(pv_rated)
        limit = [min(r, c) for r, c in zip(pv_rated, caps, strict=True)]
        bat_set = ref_rule_setpoints(rule, bat, limit, heat, pv_avail[t], step, state, out)
        if charge_cap is not None and rule == k.RULE_SELF_CONSUMPTION:
            bat_set = [max(b, -c) for b, c in zip(bat_set, charge_cap[t], strict=True)]
        if export_cap is not None and math.isfinite(export_cap[t]):
            limit = _export_curtailed(bat, heat, pv_avail[t], step, bat_set, limit, state, out,
                                      export_cap[t])  # fmt: skip
        ref_electric(bat, pv_rated, heat, pv_avail[t], step, bat_set, limit, state, out)
        rows.append(out)
    return rows


def _export_curtailed(
    bat: list[list[float]],
    heat: list[float],
    pv_avail: list[float],
    inp: list[float],
    bat_set: list[float],
    limit: list[float],
    state: RefState,
    out: dict[str, float],
    export_cap_w: float,
) -> list[float]:
    """PV limits lowered, each by the same share, until the export keeps ``export_cap_w``."""
    dt_s = heat[k.H_DT] * 3600.0
    limit = [max(0.0, min(a, lim)) for a, lim in zip(pv_avail, limit, strict=True)]
    battery = sum(
        physics.battery_power_w(bat_set[i], state.soc_wh[i], dt_s, _limits(row))
        for i, row in enumerate(bat)
    )
    pv = sum(limit)
    grid = inp[k.I_LOAD] + out["heat_pump_el_w"] + out["dry_cooler_el_w"] - pv - battery
    excess = -grid - export_cap_w
    if excess <= 0.0 or pv <= 0.0:
        return limit
    keep = max(0.0, 1.0 - excess / pv)
    return [lim * keep for lim in limit]
