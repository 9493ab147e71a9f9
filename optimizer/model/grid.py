"""Grid connection: the site's electric balance, import and export limits."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import KW, add_param
from optimizer.model.must_cool import dry_cooler_power


def add_grid_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Electric balance over steps ``t`` (kW)::

        g_imp[t] - g_exp[t] + sum_v pv[v,t] + sum_b (p_dis[b,t] - p_ch[b,t]) + u[t] - s[t]
            = load[t] + p_hp[t] + k_dry*q_dry[t]
        0 <= g_imp[t] <= min(import limit, operator cap[t])
        0 <= g_exp[t] <= min(export limit, operator cap[t])
        u[t] >= 0   (unserved demand)     s[t] >= 0   (spilled surplus)

    ``u`` keeps the model feasible when an operator cap is below what must run (base load,
    dry coolers); ``s`` when it is below what cannot be curtailed (PV minimum limits). Both
    are penalised above any price and reported when used. Simultaneous import and export
    cannot pay because export prices are kept at or below import prices.
    """
    T = m.T
    add_param(m, "el_load", (T,), lambda d: d.load_w * KW, data)
    add_param(m, "import_cap", (T,), lambda d: d.import_cap_w * KW, data)
    add_param(m, "export_cap", (T,), lambda d: d.export_cap_w * KW, data)
    m.grid_import = pyo.Var(T, bounds=lambda m, t: (0.0, m.import_cap[t]))
    m.grid_export = pyo.Var(T, bounds=lambda m, t: (0.0, m.export_cap[t]))
    m.el_unserved = pyo.Var(T, within=pyo.NonNegativeReals)
    m.el_spilled = pyo.Var(T, within=pyo.NonNegativeReals)

    def balance(m: pyo.ConcreteModel, t: int) -> object:
        supply = (
            m.grid_import[t]
            - m.grid_export[t]
            + m.el_unserved[t]
            - m.el_spilled[t]
            + sum(m.pv[v, t] for v in m.V)
            + sum(m.bat_dis[b, t] - m.bat_ch[b, t] for b in m.B)
        )
        return supply == m.el_load[t] + m.hp_el[t] + dry_cooler_power(m, t)

    m.grid_balance = pyo.Constraint(T, rule=balance)
