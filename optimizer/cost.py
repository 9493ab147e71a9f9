"""The cost of a plan, recomputed from the plan table's own flows.

These are the objective's terms written once more, from the columns a reader of ``plan.csv``
sees, so a plan can be audited without the model: the solver's objective must equal
:func:`objective_eur` of the plan it returned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from optimizer.aggregate import BatteryFleet
from optimizer.data import ModelData
from optimizer.flows import Flows

#: Per-step cost columns of the plan table, EUR.
COST_COLUMNS = (
    "cost_import_eur",
    "revenue_export_eur",
    "cost_gas_eur",
    "cost_co2_eur",
    "cost_wear_eur",
    "penalty_eur",
)


def _col(frame: pd.DataFrame, name: str) -> NDArray[np.float64]:
    return frame[name].to_numpy(float)


def _device_block(frame: pd.DataFrame, ids: tuple[str, ...], quantity: str) -> NDArray[np.float64]:
    if not ids:
        return np.zeros((len(frame), 0))
    return frame[[f"{i}.{quantity}" for i in ids]].to_numpy(float)


def soc_window_violation_wh(
    soc_wh: NDArray[np.float64], fleet: BatteryFleet
) -> NDArray[np.float64]:
    """Energy outside each battery's SoC window, summed over devices, per step, Wh.

    soc_wh : device energy per step, shape (steps, devices) [Wh]
    """
    below = np.maximum(fleet.soc_min_wh[None, :] - soc_wh, 0.0)
    above = np.maximum(soc_wh - fleet.soc_max_wh[None, :], 0.0)
    return np.asarray((below + above).sum(axis=1), dtype=float)


def cost_parts(
    frame: pd.DataFrame,
    data: ModelData,
    fleet: BatteryFleet,
    battery_w: NDArray[np.float64] | None = None,
) -> pd.DataFrame:
    """Per-step cost parts, EUR (columns :data:`COST_COLUMNS`).

    battery_w : the batteries' ``<id>.battery_w`` columns as one array, shape (steps,
        devices) [W], where the caller holds them (the planner, while it builds the table);
        None reads them from ``frame``

    - import: ``price_import * grid_import * dt / 1e6``; export revenue likewise
    - gas: ``gas_price * boiler_th / eta_boiler * dt / 1e6``
    - CO2: ``co2_price * (co2_intensity * import_kwh / 1e6 + gas_co2 * gas_mwh / 1e3)``
    - wear: ``sum_i wear_i * max(battery_w_i, 0) * dt / 1e6`` (per MWh discharged)
    - penalty: unserved, spilled and unmet heat energy at their penalties. (A battery outside
      its SoC window is not priced: the model forces it back at full power.)
    """
    dt = data.dt_h
    imp, exp = _col(frame, "grid_import_w"), _col(frame, "grid_export_w")
    gas_mwh = _col(frame, "boiler_th_w") * dt / data.boiler_efficiency / 1e6
    bat = _device_block(frame, fleet.ids, "battery_w") if battery_w is None else battery_w
    wear = (np.maximum(bat, 0.0) * fleet.wear_eur_per_mwh[None, :]).sum(axis=1) * dt / 1e6
    co2_t = (
        _col(frame, "co2_g_per_kwh") * imp * dt / 1e3 / 1e6
        + data.gas_co2_kg_per_mwh * gas_mwh / 1e3
    )
    penalty = (
        dt
        / 1e6
        * (
            data.unserved_el_penalty_eur_per_mwh * _col(frame, "unserved_el_w")
            + data.spilled_el_penalty_eur_per_mwh * _col(frame, "spilled_el_w")
            + data.unmet_heat_penalty_eur_per_mwh * _col(frame, "unmet_heat_th_w")
        )
    )
    return pd.DataFrame(
        {
            "cost_import_eur": _col(frame, "price_import_eur_per_mwh") * imp * dt / 1e6,
            "revenue_export_eur": _col(frame, "price_export_eur_per_mwh") * exp * dt / 1e6,
            "cost_gas_eur": data.gas_eur_per_mwh * gas_mwh,
            "cost_co2_eur": data.co2_price_eur_per_t * co2_t,
            "cost_wear_eur": wear,
            "penalty_eur": penalty,
        },
        index=frame.index,
    )


def terminal_value_eur(
    frame: pd.DataFrame,
    data: ModelData,
    fleet: BatteryFleet,
    soc_end_wh: NDArray[np.float64] | None = None,
) -> float:
    """Value of the energy left in batteries and store after the last step, EUR.

    soc_end_wh : each battery's energy after the last step [Wh] (its ``<id>.soc_wh`` in the
        last row; None reads it from ``frame``)
    """
    if soc_end_wh is not None:
        soc_end = soc_end_wh
    else:
        soc_end = _device_block(frame, fleet.ids, "soc_wh")[-1] if len(frame) else np.zeros(0)
    per_mwh = data.bat_terminal_price_eur_per_mwh * fleet.eta_charge * fleet.eta_discharge
    battery = float((per_mwh * soc_end).sum()) / 1e6
    store = data.store_terminal_eur_per_mwh * float(frame["store_wh"].iloc[-1]) / 1e6
    return battery + store


def plan_objective_eur(
    data: ModelData,
    fleet: BatteryFleet,
    flows: Flows,
    bat_w: NDArray[np.float64],
    bat_soc_wh: NDArray[np.float64],
) -> float:
    """``cost_summary(...)["objective_eur"]`` of the plan these flows make, from arrays.

    flows : the units' flows as the plan takes them (the grid absorbing what the devices
        could not follow, :func:`optimizer.planner.absorb_shortfall`), W and Wh
    bat_w, bat_soc_wh : the devices' net power [W] and energy [Wh], shape (devices, steps)

    The same terms as :func:`cost_parts` and :func:`terminal_value_eur`, without building the
    plan table: the split rounds compare the plan of each round with it.
    """
    dt = data.dt_h
    imp, exp = flows.grid_import_w, flows.grid_export_w
    gas_mwh = flows.boiler_th_w * dt / data.boiler_efficiency / 1e6
    co2_t = data.co2_g_per_kwh * imp * dt / 1e3 / 1e6 + data.gas_co2_kg_per_mwh * gas_mwh / 1e3
    wear = float((np.maximum(bat_w, 0.0) * fleet.wear_eur_per_mwh[:, None]).sum()) * dt / 1e6
    penalty = (
        dt
        / 1e6
        * (
            data.unserved_el_penalty_eur_per_mwh * flows.el_unserved_w.sum()
            + data.spilled_el_penalty_eur_per_mwh * flows.el_spilled_w.sum()
            + data.unmet_heat_penalty_eur_per_mwh * flows.heat_unmet_w.sum()
        )
    )
    net = (
        float((data.price_import_eur_per_mwh * imp).sum()) * dt / 1e6
        - float((data.price_export_eur_per_mwh * exp).sum()) * dt / 1e6
        + data.gas_eur_per_mwh * float(gas_mwh.sum())
        + data.co2_price_eur_per_t * float(co2_t.sum())
        + wear
    )
    terminal = 0.0
    if bat_soc_wh.shape[1]:
        per_mwh = data.bat_terminal_price_eur_per_mwh * fleet.eta_charge * fleet.eta_discharge
        terminal = float((per_mwh * bat_soc_wh[:, -1]).sum()) / 1e6
        terminal += data.store_terminal_eur_per_mwh * float(flows.store_wh[-1]) / 1e6
    return float(net + penalty - terminal)


def cost_summary(
    frame: pd.DataFrame,
    data: ModelData,
    fleet: BatteryFleet,
    battery_w: NDArray[np.float64] | None = None,
    soc_end_wh: NDArray[np.float64] | None = None,
) -> dict[str, float]:
    """Totals over the horizon, EUR: each part, the net cost and the objective.

    ``net_cost_eur`` is money and CO2 (import - export + gas + CO2 + wear);
    ``objective_eur`` adds penalties and subtracts the terminal value, as the model does.
    battery_w, soc_end_wh : the table's own device columns, where the caller holds them as
        arrays (see :func:`cost_parts`, :func:`terminal_value_eur`)
    """
    parts = cost_parts(frame, data, fleet, battery_w)
    totals = {name: float(parts[name].sum()) for name in COST_COLUMNS}
    net = (
        totals["cost_import_eur"]
        - totals["revenue_export_eur"]
        + totals["cost_gas_eur"]
        + totals["cost_co2_eur"]
        + totals["cost_wear_eur"]
    )
    terminal = terminal_value_eur(frame, data, fleet, soc_end_wh)
    totals.update(
        net_cost_eur=net,
        terminal_value_eur=terminal,
        objective_eur=net + totals["penalty_eur"] - terminal,
    )
    return totals
