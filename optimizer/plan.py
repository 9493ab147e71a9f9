"""The result: a per-step table of site totals and device setpoints, and how it was found.

Column names follow ``<quantity>_<unit>`` for site totals and ``<id>.<quantity>_<unit>`` per
device; see ``optimizer/README.md`` for the full list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from optimizer.cost import COST_COLUMNS, cost_parts, cost_summary, soc_window_violation_wh
from optimizer.data import Problem
from optimizer.duals import Duals
from optimizer.flows import Flows
from optimizer.split import DeviceDispatch

#: Site-total columns of the plan table, in order (the index is ``timestamp``, UTC).
SITE_COLUMNS = (
    "pv_w",
    "load_w",
    "battery_w",
    "heat_pump_el_w",
    "dry_cooler_el_w",
    "grid_import_w",
    "grid_export_w",
    "heat_pump_th_w",
    "boiler_th_w",
    "heat_demand_th_w",
    "store_wh",
    "price_import_eur_per_mwh",
    "price_export_eur_per_mwh",
    "pv_available_w",
    "battery_soc_wh",
    "heat_pump_cop",
    "waste_heat_th_w",
    "dry_cooler_th_w",
    "store_th_w",
    "unmet_heat_th_w",
    "unserved_el_w",
    "spilled_el_w",
    "soc_window_wh",
    "co2_g_per_kwh",
    "import_cap_w",
    "export_cap_w",
    "pv_cap_cut_w",
    *COST_COLUMNS,
)
#: Shadow prices of the plan's LP (:mod:`optimizer.duals`), EUR/MWh, after the site columns;
#: left out of a plan without them (a fallback plan, or a failed extra solve).
DUAL_COLUMNS = (
    "value_el_eur_per_mwh",
    "value_stored_eur_per_mwh",
    "value_heat_eur_per_mwh",
    "value_store_eur_per_mwh",
    "import_cap_value_eur_per_mwh",
    "export_cap_value_eur_per_mwh",
)
#: Per-device columns: batteries, then PV inverters.
BATTERY_COLUMNS = ("battery_w", "soc_wh")
PV_COLUMNS = ("pv_w", "pv_limit_w")


@dataclass(frozen=True)
class SolveInfo:
    """How a plan was made. Times in s, energies in Wh, money in EUR."""

    #: "optimal" (solver optimum) or "fallback" (rule-based plan; see ``fallback_reason``).
    status: str
    mode: str
    #: The solver's objective value; None for a fallback plan.
    objective_eur: float | None
    #: Totals recomputed from the table (:func:`optimizer.cost.cost_summary`).
    cost_eur: dict[str, float]
    build_s: float
    solve_s: float
    split_s: float
    total_s: float
    n_variables: int
    n_constraints: int
    #: Virtual units planned: {"battery": ..., "pv": ...}.
    n_units: dict[str, int]
    reused_model: bool
    #: Slacks that were used and how much energy they carried, Wh (only non-zero ones).
    slacks: dict[str, float]
    fallback_reason: str | None = None
    #: Re-solves after a split found a unit its devices could not follow.
    split_rounds: int = 0
    #: The round whose plan was kept: the cheapest once the grid takes what the devices
    #: could not follow (0: the first solve's).
    split_round_kept: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: Seconds spent getting the duals (a second solve for a mixed-integer plan, none
    #: otherwise); None when the plan has none.
    duals_s: float | None = None


@dataclass(frozen=True)
class Plan:
    """A plan: ``frame`` has one row per step; ``units`` the virtual units' own plans."""

    frame: pd.DataFrame
    info: SolveInfo
    units: pd.DataFrame


def plan_frame(
    problem: Problem, flows: Flows, dispatch: DeviceDispatch, duals: Duals | None = None
) -> pd.DataFrame:
    """The plan table: site totals, the duals, then per-device setpoints (see
    :data:`SITE_COLUMNS`, :data:`DUAL_COLUMNS`)."""
    d = problem.data
    soc_dev = dispatch.bat_soc_wh.T
    site = {
        "pv_w": dispatch.pv_w.sum(axis=0),
        "load_w": d.load_w,
        "battery_w": dispatch.bat_w.sum(axis=0),
        "heat_pump_el_w": flows.hp_el_w,
        "dry_cooler_el_w": flows.dry_cooler_el_w,
        "grid_import_w": flows.grid_import_w,
        "grid_export_w": flows.grid_export_w,
        "heat_pump_th_w": flows.hp_th_w,
        "boiler_th_w": flows.boiler_th_w,
        "heat_demand_th_w": d.heat_demand_w,
        "store_wh": flows.store_wh,
        "price_import_eur_per_mwh": d.price_import_eur_per_mwh,
        "price_export_eur_per_mwh": d.price_export_eur_per_mwh,
        "pv_available_w": problem.pv_avail_w.sum(axis=0),
        "battery_soc_wh": soc_dev.sum(axis=1),
        "heat_pump_cop": d.cop,
        "waste_heat_th_w": d.waste_heat_w,
        "dry_cooler_th_w": flows.dry_cooler_th_w,
        "store_th_w": flows.store_discharge_w - flows.store_charge_w,
        "unmet_heat_th_w": flows.heat_unmet_w,
        "unserved_el_w": flows.el_unserved_w,
        "spilled_el_w": flows.el_spilled_w,
        "soc_window_wh": soc_window_violation_wh(soc_dev, problem.batteries),
        "co2_g_per_kwh": d.co2_g_per_kwh,
        "import_cap_w": d.import_cap_w,
        "export_cap_w": d.export_cap_w,
        "pv_cap_cut_w": (
            problem.pv_cap_cut_w if problem.pv_cap_cut_w is not None else np.zeros(d.steps)
        ),
    }
    index = pd.DatetimeIndex(d.index, name="timestamp")
    frame = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in site.items()}, index=index)
    costs = cost_parts(frame, d, problem.batteries, battery_w=dispatch.bat_w.T)
    site_values = frame.join(costs)[list(SITE_COLUMNS)].to_numpy()
    names: list[str] = list(SITE_COLUMNS)
    if duals is not None:
        dual = _dual_columns(duals, len(index))
        dual_values = np.column_stack([np.broadcast_to(v, len(index)) for v in dual.values()])
        site_values = np.concatenate([site_values, dual_values], axis=1)
        names += list(dual)
    # One block for all columns, written once: tens of thousands of device columns joined
    # as frames cost more than the rest of the table.
    columns = _device_columns(problem.batteries.ids, problem.pv.ids)
    values = np.empty((len(index), len(names) + len(columns)))
    values[:, : len(names)] = site_values
    _device_values(dispatch, values[:, len(names) :])
    return pd.DataFrame(values, index=index, columns=pd.Index(names).append(columns), copy=False)


def _dual_columns(duals: Duals, steps: int) -> dict[str, np.ndarray]:
    stored = duals.stored.mean(axis=0) if duals.stored.size else np.zeros(steps)
    values = (
        duals.electricity,
        stored,
        duals.heat,
        duals.heat_store,
        duals.import_cap,
        duals.export_cap,
    )
    return {name: np.asarray(v, dtype=float) for name, v in zip(DUAL_COLUMNS, values, strict=True)}


@lru_cache(maxsize=8)
def _device_columns(battery_ids: tuple[str, ...], pv_ids: tuple[str, ...]) -> pd.Index:
    """Names of the per-device columns (the same from one plan to the next)."""
    names = [f"{i}.{q}" for i in battery_ids for q in BATTERY_COLUMNS]
    names += [f"{i}.{q}" for i in pv_ids for q in PV_COLUMNS]
    return pd.Index(names)


def _device_values(dispatch: DeviceDispatch, out: np.ndarray) -> None:
    """Write the per-device columns into ``out`` (steps, columns), in the order of
    :func:`_device_columns`: each battery's power and energy, then each inverter's output
    and limit."""
    n_bat, n_pv = len(dispatch.bat_w), len(dispatch.pv_w)
    out[:, 0 : 2 * n_bat : 2] = dispatch.bat_w.T
    out[:, 1 : 2 * n_bat : 2] = dispatch.bat_soc_wh.T
    out[:, 2 * n_bat : 2 * (n_bat + n_pv) : 2] = dispatch.pv_w.T
    out[:, 2 * n_bat + 1 : 2 * (n_bat + n_pv) : 2] = dispatch.pv_limit_w.T


def unit_frame(problem: Problem, flows: Flows, shortfall_w: np.ndarray) -> pd.DataFrame:
    """The virtual units' own plans: battery net power, energy and split shortfall; PV output."""
    d = problem.data
    cols: dict[str, np.ndarray] = {}
    for u, name in enumerate(d.bat.names):
        cols[f"{name}.battery_w"] = flows.bat_net_w[u]
        cols[f"{name}.soc_wh"] = flows.bat_soc_wh[u]
        cols[f"{name}.shortfall_w"] = shortfall_w[u]
    for v, name in enumerate(d.pv_names):
        cols[f"{name}.pv_w"] = flows.pv_w[v]
    return pd.DataFrame(cols, index=pd.DatetimeIndex(d.index, name="timestamp"))


def used_slacks(frame: pd.DataFrame, dt_h: float, tolerance_w: float) -> dict[str, float]:
    """Energy carried by each slack over the horizon, Wh; only slacks that were used."""
    energy = {
        "unserved_el_wh": frame["unserved_el_w"].to_numpy() * dt_h,
        "spilled_el_wh": frame["spilled_el_w"].to_numpy() * dt_h,
        "unmet_heat_wh": frame["unmet_heat_th_w"].to_numpy() * dt_h,
        "soc_window_wh": frame["soc_window_wh"].to_numpy(),
    }
    return {k: float(v.sum()) for k, v in energy.items() if v.max(initial=0.0) > tolerance_w * dt_h}


def summarise(
    frame: pd.DataFrame, problem: Problem, dispatch: DeviceDispatch | None = None
) -> dict[str, float]:
    """Cost totals of the table (see :func:`optimizer.cost.cost_summary`); ``dispatch``,
    the split the table was made from, spares reading its device columns back."""
    if dispatch is None:
        return cost_summary(frame, problem.data, problem.batteries)
    soc_end = dispatch.bat_soc_wh[:, -1] if dispatch.bat_soc_wh.shape[1] else None
    return cost_summary(frame, problem.data, problem.batteries, dispatch.bat_w.T, soc_end)
