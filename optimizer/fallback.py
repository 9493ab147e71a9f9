"""A safe plan by fixed rules, for when the solver fails or runs out of time.

Self-consumption, step by step, without any look-ahead:

- heat: the heat pump follows heat demand up to its power and the waste heat available;
  the boiler covers the rest; the store holds (only losses) and discharges only for heat the
  boiler cannot give; whatever is still missing is reported as unmet heat;
- electricity: PV is uncurtailed; batteries charge from PV surplus and discharge into load,
  within their power limits and SoC windows; the grid takes the rest within its caps; PV is
  curtailed (not below the inverters' minimum limits) only when the export cap requires it.

The result has the same shape as the optimiser's, so it is split over the devices and
checked by the same code.
"""

from __future__ import annotations

import numpy as np

from optimizer.data import ModelData
from optimizer.flows import F64, Flows


def fallback_flows(data: ModelData) -> Flows:
    """Unit-level flows by the rules above; balances and limits hold in every step."""
    heat = _heat_rules(data)
    el_demand = data.load_w + heat["hp_el_w"] + data.dry_cooler_el_per_th * heat["dry_th_w"]
    el = _electric_rules(data, el_demand)
    return Flows(
        hp_el_w=heat["hp_el_w"],
        hp_th_w=heat["hp_th_w"],
        dry_cooler_th_w=heat["dry_th_w"],
        dry_cooler_el_w=data.dry_cooler_el_per_th * heat["dry_th_w"],
        boiler_th_w=heat["boiler_w"],
        store_charge_w=np.zeros(data.steps),
        store_discharge_w=heat["store_dis_w"],
        store_wh=heat["store_wh"],
        heat_unmet_w=heat["unmet_w"],
        **el,
    )


def _heat_rules(data: ModelData) -> dict[str, F64]:
    cop = data.cop
    runs = cop > 1.0
    source_limit = np.where(runs, data.waste_heat_w / np.where(runs, cop - 1.0, 1.0), 0.0)
    hp_el_max = np.minimum(data.hp_max_el_w, source_limit)
    hp_th = np.minimum(data.heat_demand_w, hp_el_max * cop)
    hp_el = np.where(runs, hp_th / np.where(runs, cop, 1.0), 0.0)
    boiler = np.minimum(data.heat_demand_w - hp_th, data.boiler_max_w)
    missing = np.maximum(data.heat_demand_w - hp_th - boiler, 0.0)
    store = np.zeros(data.steps)
    store_dis = np.zeros(data.steps)
    level = data.store0_wh
    for t in range(data.steps):
        kept = data.store_keep * level
        store_dis[t] = min(missing[t], data.store_max_discharge_w, kept / data.dt_h)
        level = kept - store_dis[t] * data.dt_h
        store[t] = level
    return {
        "hp_el_w": hp_el,
        "hp_th_w": hp_th,
        "boiler_w": boiler,
        "store_dis_w": store_dis,
        "store_wh": store,
        "unmet_w": missing - store_dis,
        "dry_th_w": np.maximum(data.waste_heat_w - (cop - 1.0) * hp_el, 0.0),
    }


def _share(amount: float, head: F64) -> F64:
    """``amount`` shared in proportion to ``head`` (never more than ``head``)."""
    total = float(head.sum())
    if total <= 0.0 or amount <= 0.0:
        return np.zeros_like(head)
    return np.asarray(head * min(1.0, amount / total), dtype=float)


def _electric_rules(data: ModelData, demand: F64) -> dict[str, F64]:
    steps, units, dt = data.steps, data.n_bat, data.dt_h
    ch, dis, soc = (np.zeros((units, steps)) for _ in range(3))
    pv = data.pv_avail_w.copy()
    grid = {k: np.zeros(steps) for k in ("imp", "exp", "unserved", "spilled")}
    level = data.bat.soc0_wh.copy()
    bat = data.bat
    for t in range(steps):
        net = demand[t] - pv[:, t].sum()
        if net < 0:
            head = np.minimum(
                data.bat_charge_max_w[:, t],
                np.maximum(bat.soc_max_wh - level, 0.0) / (bat.eta_charge * dt),
            )
            ch[:, t] = _share(-net, head)
        else:
            head = np.minimum(
                data.bat_discharge_max_w[:, t],
                np.maximum(level - bat.soc_min_wh, 0.0) * bat.eta_discharge / dt,
            )
            dis[:, t] = _share(net, head)
        level = level + bat.eta_charge * ch[:, t] * dt - dis[:, t] * dt / bat.eta_discharge
        soc[:, t] = level
        rest = net + ch[:, t].sum() - dis[:, t].sum()
        _grid_step(data, t, rest, pv, grid)
    return {
        "bat_charge_w": ch,
        "bat_discharge_w": dis,
        "bat_soc_wh": soc,
        "pv_w": pv,
        "grid_import_w": grid["imp"],
        "grid_export_w": grid["exp"],
        "el_unserved_w": grid["unserved"],
        "el_spilled_w": grid["spilled"],
    }


def _grid_step(data: ModelData, t: int, rest: float, pv: F64, grid: dict[str, F64]) -> None:
    """Import a deficit, export a surplus; curtail PV, then spill, beyond the export cap."""
    if rest >= 0:
        grid["imp"][t] = min(rest, data.import_cap_w[t])
        grid["unserved"][t] = rest - grid["imp"][t]
        return
    grid["exp"][t] = min(-rest, data.export_cap_w[t])
    excess = -rest - grid["exp"][t]
    cut = _share(excess, pv[:, t] - data.pv_min_w[:, t])
    pv[:, t] -= cut
    grid["spilled"][t] = max(excess - cut.sum(), 0.0)
