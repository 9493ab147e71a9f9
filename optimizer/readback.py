"""Read the solved model back into unit-level :class:`~optimizer.flows.Flows` (W, Wh)."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.flows import Flows
from optimizer.model import KW
from optimizer.solve import PersistentHighs


def read_flows(m: pyo.ConcreteModel, solver: PersistentHighs, data: ModelData) -> Flows:
    """Values of the solved model, converted from kW/kWh to W/Wh.

    Tiny negative values (solver tolerances) are clipped to 0 so that the plan never shows a
    negative flow; the balances still hold to within those tolerances.
    """
    T, U, V = data.steps, data.n_bat, data.n_pv
    K = data.store_tier_wh.size

    def get(var: object, shape: tuple[int, ...]) -> np.ndarray:
        return np.maximum(solver.values(var, shape), 0.0) / KW

    hp_el = get(m.hp_el, (T,))
    dry_th = get(m.dry_th, (T,))
    return Flows(
        bat_charge_w=get(m.bat_ch, (U, T)),
        bat_discharge_w=get(m.bat_dis, (U, T)),
        bat_soc_wh=get(m.bat_soc, (U, T)),
        pv_w=get(m.pv, (V, T)),
        grid_import_w=get(m.grid_import, (T,)),
        grid_export_w=get(m.grid_export, (T,)),
        el_unserved_w=get(m.el_unserved, (T,)),
        el_spilled_w=get(m.el_spilled, (T,)),
        hp_el_w=hp_el,
        hp_th_w=data.cop * hp_el,
        dry_cooler_th_w=dry_th,
        dry_cooler_el_w=data.dry_cooler_el_per_th * dry_th,
        boiler_th_w=get(m.boiler_th, (T,)),
        store_charge_w=get(m.store_ch, (T,)),
        store_discharge_w=get(m.store_dis, (T,)),
        store_wh=get(m.store_e, (T,)) + get(m.store_kept, (K, T)).sum(axis=0),
        heat_unmet_w=get(m.heat_unmet, (T,)),
    )


def simultaneous_steps(flows: Flows, tolerance_w: float) -> int:
    """Unit-steps in which a battery unit both charges and discharges (energy burnt)."""
    both = np.minimum(flows.bat_charge_w, flows.bat_discharge_w) > tolerance_w
    return int(both.sum())
