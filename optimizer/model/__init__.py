"""The Pyomo model: one ``add_<family>_constraints(model, data)`` per constraint family.

:func:`build_model` assembles them in dependency order (the balances refer to the devices'
variables); :func:`optimizer.model.base.update_params` refreshes every mutable parameter from
new data so that a plan with the same structure reuses the model and the persistent solver.
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import KW, add_sets, param_items, seal_params, update_params
from optimizer.model.battery import add_battery_constraints
from optimizer.model.grid import add_grid_constraints
from optimizer.model.heat_demand import add_heat_demand_constraints
from optimizer.model.heat_pump import add_heat_pump_constraints
from optimizer.model.must_cool import add_must_cool_constraints
from optimizer.model.objective import add_objective
from optimizer.model.pv import add_pv_constraints
from optimizer.model.store import add_heat_risk_constraints, add_store_constraints

__all__ = ["KW", "build_model", "param_items", "update_params"]

FAMILIES = (
    add_pv_constraints,
    add_battery_constraints,
    add_heat_pump_constraints,
    add_must_cool_constraints,
    add_store_constraints,
    add_heat_demand_constraints,
    add_grid_constraints,
    add_heat_risk_constraints,
    add_objective,
)


def build_model(data: ModelData) -> pyo.ConcreteModel:
    """A new Pyomo model for ``data``: sets, then each constraint family, then the objective."""
    m = pyo.ConcreteModel(name="vpp_plan")
    add_sets(m, data)
    for add_family in FAMILIES:
        add_family(m, data)
    seal_params(m, data)
    return m
