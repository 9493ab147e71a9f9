"""Thermal store of the heating network."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData, heat_risk_rhs_w
from optimizer.model.base import KW, add_param


def add_store_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Thermal store over steps ``t`` (kW, kWh thermal)::

        e[t] + sum_k r[k,t] = keep * e[t-1] + (q_ch[t] - q_dis[t]) * dt        (e[-1] = e0)
        keep = (1 - loss_per_h) ** dt                            (standing losses)
        0 <= e[t] <= E     0 <= q_ch[t] <= Q_ch     0 <= q_dis[t] <= Q_dis
        0 <= r[k,t] <= R[k,t]     e[T-1] <= E - sum_k R[k,T-1]

    ``r[k]`` is the end content held as the reserve's tier ``k`` of width ``R[k]``
    (:func:`optimizer.data.set_store_floor`: at the last step, 0 before it), which the
    objective values above the rest; the end content is ``e[T-1] + sum_k r[k,T-1]``. Each
    ``r[k]`` is a family over every step so that the LP keeps its step-minor layout
    (:mod:`optimizer.basis`); before the last step it is fixed at 0.

    The initial energy is clamped to ``0..E`` when the state is read, so the recursion is
    always feasible (discharge and losses never have to exceed what is stored).
    """
    T = m.T
    add_param(m, "store_cap", (), lambda d: d.store_capacity_wh * KW, data)
    add_param(m, "store_ch_max", (), lambda d: d.store_max_charge_w * KW, data)
    add_param(m, "store_dis_max", (), lambda d: d.store_max_discharge_w * KW, data)
    add_param(m, "store_keep", (), lambda d: d.store_keep, data)
    add_param(m, "store0", (), lambda d: d.store0_wh * KW, data)
    m.TIER = pyo.Set(initialize=range(data.store_tier_wh.size), ordered=True)
    add_param(m, "store_tier", (m.TIER,), lambda d: d.store_tier_wh * KW, data)
    last = data.steps - 1
    m.store_ch = pyo.Var(T, bounds=lambda m, t: (0.0, m.store_ch_max))
    m.store_dis = pyo.Var(T, bounds=lambda m, t: (0.0, m.store_dis_max))

    def tier(m: pyo.ConcreteModel, k: int, t: int) -> object:
        return m.store_tier[k] if t == last else 0.0

    def room(m: pyo.ConcreteModel, t: int) -> object:
        return m.store_cap - sum(m.store_tier[k] for k in m.TIER) if t == last else m.store_cap

    m.store_e = pyo.Var(T, bounds=lambda m, t: (0.0, room(m, t)))
    m.store_kept = pyo.Var(m.TIER, T, bounds=lambda m, k, t: (0.0, tier(m, k, t)))
    dt = m.dt

    def balance(m: pyo.ConcreteModel, t: int) -> object:
        prev = m.store0 if t == 0 else m.store_e[t - 1]
        now = m.store_e[t] + sum(m.store_kept[k, t] for k in m.TIER)
        return now == m.store_keep * prev + dt * (m.store_ch[t] - m.store_dis[t])

    m.store_balance = pyo.Constraint(T, rule=balance)


def add_heat_risk_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """The store's heat-risk reserve (:func:`optimizer.data.set_heat_risk`; kW, kWh)::

        d[t] - keep * d[t-1] - dt * (COP[t] * p_hp[t] + q_boiler[t]) >= (e[t] - R[t]) * dt
        m[t] - m[t-1] >= 0     m[t] + e_store[t] + sum_k r[k,t] - d[t] >= 0     d[t], m[t] >= 0

    (``d[-1] = m[-1] = 0``); the objective prices ``m[T-1]``. Only with
    ``data.heat_risk``: without it the model has none of these.
    """
    if not data.heat_risk:
        return
    T = m.T
    add_param(m, "heat_risk_rhs", (T,), lambda d: heat_risk_rhs_w(d) * KW * d.dt_h, data)
    m.heat_risk = pyo.Var(T, within=pyo.NonNegativeReals)
    m.heat_short = pyo.Var(T, within=pyo.NonNegativeReals)
    dt = m.dt

    def deficit(m: pyo.ConcreteModel, t: int) -> object:
        prev = 0.0 if t == 0 else m.store_keep * m.heat_risk[t - 1]
        made = m.cop[t] * m.hp_el[t] + m.boiler_th[t]
        return m.heat_risk[t] - prev - dt * made >= m.heat_risk_rhs[t]

    def running(m: pyo.ConcreteModel, t: int) -> object:
        return m.heat_short[t] - (0.0 if t == 0 else m.heat_short[t - 1]) >= 0.0

    def cover(m: pyo.ConcreteModel, t: int) -> object:
        content = m.store_e[t] + sum(m.store_kept[k, t] for k in m.TIER)
        return m.heat_short[t] + content - m.heat_risk[t] >= 0.0

    m.heat_risk_rows = pyo.Constraint(T, rule=deficit)
    m.heat_short_run = pyo.Constraint(T, rule=running)
    m.heat_short_rows = pyo.Constraint(T, rule=cover)
