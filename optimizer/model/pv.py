"""PV units: output between the lowest reachable limit and the available power."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import KW, add_param


def add_pv_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """PV units ``v`` over steps ``t`` (kW)::

        min(avail[i,t], L_min[i]) summed over the unit  <=  pv[v,t]  <=  sum of avail[i,t]

    The inverter limit is a cap: it can be written down to ``L_min = min_limit_pct * rated``
    and no lower (some inverters stand by at 0 %). An inverter whose available power is below
    its minimum limit is not curtailable at all and simply produces what it has, hence the
    ``min(avail, L_min)``. The sum of such intervals over a unit splits back exactly, so the
    unit bound is the devices' bounds added up, not an approximation.
    """
    V, T = m.V, m.T
    add_param(m, "pv_avail", (V, T), lambda d: d.pv_avail_w * KW, data)
    add_param(m, "pv_min", (V, T), lambda d: d.pv_min_w * KW, data)
    m.pv = pyo.Var(V, T, bounds=lambda m, v, t: (m.pv_min[v, t], m.pv_avail[v, t]))
