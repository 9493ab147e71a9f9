"""Heat demand of the network, met by heat pump, store and boiler."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import KW, add_param
from optimizer.model.heat_pump import heat_pump_heat


def add_heat_demand_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Heat balance over steps ``t`` (kW thermal)::

        COP[t]*p_hp[t] + q_boiler[t] + q_dis[t] - q_ch[t] + q_unmet[t] = Q_demand[t]
        0 <= q_boiler[t] <= Q_boiler           q_unmet[t] >= 0

    ``q_unmet`` is the slack for demand that no source can cover (penalised at the site's
    ``unmet_heat_penalty_eur_per_mwh``, reported when used).
    """
    T = m.T
    add_param(m, "heat_demand", (T,), lambda d: d.heat_demand_w * KW, data)
    add_param(m, "boiler_max", (), lambda d: d.boiler_max_w * KW, data)
    m.boiler_th = pyo.Var(T, bounds=lambda m, t: (0.0, m.boiler_max))
    m.heat_unmet = pyo.Var(T, within=pyo.NonNegativeReals)
    m.heat_balance = pyo.Constraint(
        T,
        rule=lambda m, t: (
            heat_pump_heat(m, t) + m.boiler_th[t] + m.store_dis[t] - m.store_ch[t] + m.heat_unmet[t]
            == m.heat_demand[t]
        ),
    )
