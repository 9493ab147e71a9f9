"""Heat pump lifting the data centre's waste heat into the heating network."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import KW, add_param


def add_heat_pump_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Heat pump over steps ``t`` (kW)::

        q_hp[t] = COP[t] * p_hp[t]                    (thermal output, used in the heat balance)
        0 <= p_hp[t] <= P_hp[t]                        (P_hp = 0 where the COP is too low)
        (COP[t] - 1) * p_hp[t] <= Q_waste[t]           (source heat at most what the DC gives)

    The source limit is enforced by the must-cool balance (:mod:`optimizer.model.must_cool`),
    whose dry-cooler heat cannot go negative. With ``data.milp`` and a minimum part load
    ``m_pl`` a binary ``on`` gives ``m_pl*P_hp[t]*on[t] <= p_hp[t] <= P_hp[t]*on[t]``; the LP
    relaxes it to the plain bounds.
    """
    T = m.T
    add_param(m, "hp_max", (T,), lambda d: d.hp_max_el_w * KW, data)
    add_param(m, "cop", (T,), lambda d: d.cop, data)
    m.hp_el = pyo.Var(T, bounds=lambda m, t: (0.0, m.hp_max[t]))
    if data.milp and data.hp_min_part > 0:
        add_param(m, "hp_min_part", (), lambda d: d.hp_min_part, data)
        m.hp_on = pyo.Var(T, within=pyo.Binary)
        m.hp_upper = pyo.Constraint(T, rule=lambda m, t: m.hp_el[t] <= m.hp_max[t] * m.hp_on[t])
        m.hp_lower = pyo.Constraint(
            T, rule=lambda m, t: m.hp_el[t] >= m.hp_min_part * m.hp_max[t] * m.hp_on[t]
        )


def heat_pump_heat(m: pyo.ConcreteModel, t: int) -> object:
    """Thermal output of the heat pump in step ``t``, kW: ``COP[t] * p_hp[t]``."""
    return m.cop[t] * m.hp_el[t]
