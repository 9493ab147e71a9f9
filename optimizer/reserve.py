"""Heat the store should carry past the plan's horizon: the forecast demand after it that the
heat pump cannot meet.

A plan of 36 h sees a cold spell two days ahead too late: by the time it enters the horizon
the heat pump, held to the data centre's waste heat, can no longer fill the store, and the
boiler makes the difference (docs/replay-world.md, "Cold spells in the shoulder months").
:func:`store_reserve_wh` looks at the forecast after the horizon (heat demand from a
temperature forecast, the data centre's waste heat and the COP) and returns the least
energy the store must hold at the horizon's end so that, with the heat pump running at what
the waste heat allows from then on and filling the store where it has heat to spare, no
boiler heat is needed::

    N[k] = max(0, (N[k+1] + clip(D[k] - R[k], -Q_ch, Q_dis) * dt) / keep)      N[K] = 0

``D`` the forecast demand, ``R`` the heat pump's reach (:func:`optimizer.data.
heat_pump_reach_th_w`), ``keep`` the store's share kept per step; the reserve is ``N[0]``
capped at the store's capacity. The planner values the end content up to it at the boiler's
heat it saves (:func:`optimizer.data.set_store_floor`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.carnot import cop_series
from optimizer.data import heat_pump_reach_th_w
from optimizer.params import OptimizerParams
from vpp.core.site import Site


def store_reserve_wh(
    site: Site, after: pd.DataFrame, params: OptimizerParams | None = None
) -> float:
    """The reserve [Wh thermal] for the forecast rows ``after`` the horizon (forecast
    schema of :mod:`optimizer.inputs`: ``heat_demand_th_w``, ``it_power_w``,
    ``waste_heat_temp_c``; missing IT power or waste-heat temperature take the data
    centre's nominal values). 0 without a heat pump or a data centre, or without rows."""
    hp, dc = site.heat_pump, site.datacentre
    if hp is None or dc is None or len(after) == 0:
        return 0.0
    params = params or OptimizerParams()
    heat = site.heat
    index = pd.DatetimeIndex(after.index)
    dt_h = float((index[1] - index[0]) / pd.Timedelta(hours=1)) if len(index) > 1 else 0.25
    steps = len(after)
    demand = after["heat_demand_th_w"].to_numpy(float)
    it_power = (
        after["it_power_w"].to_numpy(float) if "it_power_w" in after else np.full(steps, np.nan)
    )
    it_power = np.where(np.isnan(it_power), dc.it_power_w, it_power)
    source_c = (
        after["waste_heat_temp_c"].to_numpy(float)
        if "waste_heat_temp_c" in after
        else np.full(steps, np.nan)
    )
    source_c = np.where(np.isnan(source_c), dc.waste_heat_temp_c, source_c)
    cop = cop_series(hp, heat.supply_temp_c, source_c, params)
    hp_max = np.where(cop > 0, hp.max_el_w, 0.0)
    reach = heat_pump_reach_th_w(cop, hp_max, it_power * dc.heat_recovery_ratio)
    short = np.clip(
        np.nan_to_num(demand) - reach, -heat.store_max_charge_th_w, heat.store_max_discharge_th_w
    )
    keep = (1.0 - heat.store_loss_pct_per_h / 100) ** dt_h
    need = 0.0
    for k in range(steps - 1, -1, -1):
        need = max(0.0, (need + float(short[k]) * dt_h) / keep)
    return float(min(need, heat.store_capacity_wh))


__all__ = ["store_reserve_wh"]
