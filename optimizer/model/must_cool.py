"""Must-cool: the data centre's waste heat goes to the heat pump or to the dry coolers."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import KW, add_param


def add_must_cool_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Waste heat over steps ``t`` (kW thermal)::

        q_dry[t] + (COP[t] - 1) * p_hp[t] = Q_waste[t]        q_dry[t] >= 0
        p_dry[t] = k_dry * q_dry[t]                            (electric, adds to site load)

    The data centre must be cooled whatever the prices: heat the heat pump does not take from
    its evaporator is rejected by dry coolers, which draw ``k_dry`` W per W of heat.
    """
    T = m.T
    add_param(m, "waste_heat", (T,), lambda d: d.waste_heat_w * KW, data)
    m.k_dry = data.dry_cooler_el_per_th
    m.dry_th = pyo.Var(T, within=pyo.NonNegativeReals)
    m.must_cool = pyo.Constraint(
        T, rule=lambda m, t: m.dry_th[t] + (m.cop[t] - 1) * m.hp_el[t] == m.waste_heat[t]
    )


def dry_cooler_power(m: pyo.ConcreteModel, t: int) -> object:
    """Electric power of the dry coolers in step ``t``, kW."""
    return m.k_dry * m.dry_th[t]
