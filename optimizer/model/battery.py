"""Battery units: recursive state of charge, power limits, SoC window, power taper."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import KW, add_param


def add_battery_constraints(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Batteries ``b`` over steps ``t`` (kW, kWh)::

        soc[b,t] = soc[b,t-1] + eta_c[b]*p_ch[b,t]*dt - p_dis[b,t]*dt/eta_d[b]   (soc[b,-1] = soc0)
        0 <= p_ch[b,t] <= P_ch[b,t]        0 <= p_dis[b,t] <= P_dis[b,t]
        E_lo[b,t] <= soc[b,t] <= E_hi[b,t]

    ``E_lo``/``E_hi`` are the SoC window, widened for a battery that starts outside it along
    its fastest way back (:func:`optimizer.data.soc_bounds`): the slack for an initial SoC
    outside the window. It is what any penalty above all prices would choose, without a
    slack variable and two constraints per unit and step; the energy outside the window is
    reported as the ``soc_window_wh`` slack. Charging and discharging at once is not excluded
    in the LP: each round trip loses ``1 - eta_c*eta_d`` and pays wear, so it only pays when
    energy must be burnt at negative prices; read-back detects and reports it. With
    ``data.milp`` a binary ``mode`` excludes it::

        p_ch[b,t] <= P_ch[b,t]*mode[b,t]      p_dis[b,t] <= P_dis[b,t]*(1 - mode[b,t])
    """
    B, T = m.B, m.T
    add_param(m, "bat_ch_max", (B, T), lambda d: d.bat_charge_max_w * KW, data)
    add_param(m, "bat_dis_max", (B, T), lambda d: d.bat_discharge_max_w * KW, data)
    add_param(m, "bat_soc_lo", (B, T), lambda d: d.bat_soc_lo_wh * KW, data)
    add_param(m, "bat_soc_hi", (B, T), lambda d: d.bat_soc_hi_wh * KW, data)
    add_param(m, "bat_soc0", (B,), lambda d: d.bat.soc0_wh * KW, data)
    add_param(m, "bat_eta_c", (B,), lambda d: d.bat.eta_charge, data)
    add_param(m, "bat_inv_eta_d", (B,), lambda d: 1.0 / d.bat.eta_discharge, data)

    m.bat_ch = pyo.Var(B, T, bounds=lambda m, b, t: (0.0, m.bat_ch_max[b, t]))
    m.bat_dis = pyo.Var(B, T, bounds=lambda m, b, t: (0.0, m.bat_dis_max[b, t]))
    m.bat_soc = pyo.Var(B, T, bounds=lambda m, b, t: (m.bat_soc_lo[b, t], m.bat_soc_hi[b, t]))
    dt = m.dt

    def balance(m: pyo.ConcreteModel, b: int, t: int) -> object:
        prev = m.bat_soc0[b] if t == 0 else m.bat_soc[b, t - 1]
        return m.bat_soc[b, t] == (
            prev + m.bat_eta_c[b] * dt * m.bat_ch[b, t] - m.bat_inv_eta_d[b] * dt * m.bat_dis[b, t]
        )

    m.bat_balance = pyo.Constraint(B, T, rule=balance)
    if data.bat_charge_taper is not None:
        _add_taper(m, data)
    if data.milp:
        _add_exclusion(m)


def _add_taper(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Unit power falls as its members run full or empty (virtual units only), k = 1, 2::

        p_ch[b,t]  <= a_ch[b,k]  + g_ch[b,k]  * (E_hi[b,t] - soc[b,t])
        p_dis[b,t] <= a_dis[b,k] + g_dis[b,k] * (soc[b,t] - E_lo[b,t])

    (:func:`optimizer.aggregate.taper_lines`). Headroom is taken at the step's end, so a
    member that fills up within the step is already counted out; since ``a >= 0`` and the SoC
    stays within ``E_lo..E_hi``, the right-hand sides are never negative.
    """
    K = pyo.Set(initialize=range(2), ordered=True)
    m.taper_k = K
    add_param(m, "ch_a", (m.B, K), lambda d: _taper(d, "ch")[0] * KW, data)
    add_param(m, "ch_g", (m.B, K), lambda d: _taper(d, "ch")[1], data)
    add_param(m, "dis_a", (m.B, K), lambda d: _taper(d, "dis")[0] * KW, data)
    add_param(m, "dis_g", (m.B, K), lambda d: _taper(d, "dis")[1], data)

    def charge(m: pyo.ConcreteModel, b: int, t: int, k: int) -> object:
        return (
            m.bat_ch[b, t] + m.ch_g[b, k] * m.bat_soc[b, t]
            <= m.ch_a[b, k] + m.ch_g[b, k] * m.bat_soc_hi[b, t]
        )

    def discharge(m: pyo.ConcreteModel, b: int, t: int, k: int) -> object:
        return (
            m.bat_dis[b, t] - m.dis_g[b, k] * m.bat_soc[b, t]
            <= m.dis_a[b, k] - m.dis_g[b, k] * m.bat_soc_lo[b, t]
        )

    m.bat_ch_taper = pyo.Constraint(m.B, m.T, K, rule=charge)
    m.bat_dis_taper = pyo.Constraint(m.B, m.T, K, rule=discharge)


def _taper(data: ModelData, direction: str) -> tuple[np.ndarray, np.ndarray]:
    lines = data.bat_charge_taper if direction == "ch" else data.bat_discharge_taper
    if lines is None:  # a model is only re-used for data of the same structure
        raise ValueError("taper lines missing for a model built with them")
    return lines


def _add_exclusion(m: pyo.ConcreteModel) -> None:
    m.bat_mode = pyo.Var(m.B, m.T, within=pyo.Binary)
    m.bat_ch_mode = pyo.Constraint(
        m.B, m.T, rule=lambda m, b, t: m.bat_ch[b, t] <= m.bat_ch_max[b, t] * m.bat_mode[b, t]
    )
    m.bat_dis_mode = pyo.Constraint(
        m.B,
        m.T,
        rule=lambda m, b, t: m.bat_dis[b, t] <= m.bat_dis_max[b, t] * (1 - m.bat_mode[b, t]),
    )
