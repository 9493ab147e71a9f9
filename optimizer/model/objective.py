"""The objective: money, CO2, wear, penalties, minus the value of energy left at the end."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.data import ModelData
from optimizer.model.base import add_param

#: EUR per (kW * h * EUR/MWh): kW*h is kWh, and a price per MWh applies per 1,000 kWh.
_PER_MWH = 1e-3


def add_objective(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Minimise, in EUR (powers kW, energies kWh, prices EUR/MWh, ``dt`` h)::

        sum_t dt/1000 * ( c_imp[t]*g_imp[t] - c_exp[t]*g_exp[t] + c_boil*q_boiler[t]
                          + sum_b w[b]*p_dis[b,t]
                          + pen_u*u[t] + pen_s*s[t] + pen_h*q_unmet[t] )
        - sum_b v_bat[b]*soc[b,T-1]/1000 - v_store*e[T-1]/1000 - sum_k,t v_res[k]*r[k,t]/1000

    ``c_imp = price_import + co2_price*co2_intensity`` (CO2 counted on imports only; exports
    earn their price and no CO2 credit), ``c_boil = (gas + co2_price*gas_co2)/eta_boiler``,
    ``w`` the wear cost per MWh discharged, ``v_bat`` and ``v_store`` the terminal values of
    :func:`optimizer.data.set_terminal_values`, ``v_res[k]`` the value of the store's content
    held as the reserve's tier ``k`` (``r[k]``, :func:`optimizer.data.set_store_floor`); with the
    heat-risk reserve ``+ c_short * m[T-1] / 1000`` (:func:`optimizer.data.set_heat_risk`).
    """
    T, B = m.T, m.B
    add_param(m, "c_imp", (T,), lambda d: d.import_eur_per_mwh(), data)
    add_param(m, "c_exp", (T,), lambda d: d.price_export_eur_per_mwh, data)
    add_param(m, "c_boil", (), lambda d: d.boiler_eur_per_mwh_th(), data)
    add_param(m, "wear", (B,), lambda d: d.bat.wear_eur_per_mwh, data)
    add_param(m, "v_bat", (B,), lambda d: d.bat_terminal_eur_per_mwh, data)
    add_param(m, "v_store", (), lambda d: d.store_terminal_eur_per_mwh, data)
    add_param(m, "v_res", (m.TIER,), lambda d: d.store_tier_eur_per_mwh, data)
    add_param(m, "pen_u", (), lambda d: d.unserved_el_penalty_eur_per_mwh, data)
    add_param(m, "pen_s", (), lambda d: d.spilled_el_penalty_eur_per_mwh, data)
    add_param(m, "pen_h", (), lambda d: d.unmet_heat_penalty_eur_per_mwh, data)
    k = m.dt * _PER_MWH
    last = data.steps - 1
    per_step = sum(
        k
        * (
            m.c_imp[t] * m.grid_import[t]
            - m.c_exp[t] * m.grid_export[t]
            + m.c_boil * m.boiler_th[t]
            + m.pen_u * m.el_unserved[t]
            + m.pen_s * m.el_spilled[t]
            + m.pen_h * m.heat_unmet[t]
        )
        for t in T
    )
    wear = sum(k * m.wear[b] * m.bat_dis[b, t] for b in B for t in T)
    terminal = (
        sum(_PER_MWH * m.v_bat[b] * m.bat_soc[b, last] for b in B)
        + _PER_MWH * m.v_store * m.store_e[last]
        + sum(_PER_MWH * m.v_res[k] * m.store_kept[k, t] for k in m.TIER for t in T)
    )
    risk = 0.0
    if data.heat_risk:
        add_param(m, "c_short", (), lambda d: d.heat_short_eur_per_mwh, data)
        risk = _PER_MWH * m.c_short * m.heat_short[last]
    m.objective = pyo.Objective(expr=per_step + wear - terminal + risk, sense=pyo.minimize)
