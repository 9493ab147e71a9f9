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
capped at the store's capacity.

The forecast is uncertain, and so is the reserve: :func:`reserve_tiers` turns the reserves
for several quantiles of the heat demand into tiers, each MWh with the chance that it is
needed, and the planner values each tier at that chance of the boiler's heat it saves and
otherwise at the store's terminal value (:func:`optimizer.data.set_store_floor`). So the
plan fills the store for a spell that may not come only where the heat is cheap enough for
the chance.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    demand = after["heat_demand_th_w"].to_numpy(float) if len(after) else np.zeros(0)
    return store_reserves_wh(site, after, [demand], params)[0]


def store_reserves_wh(
    site: Site,
    after: pd.DataFrame,
    demands: Sequence[np.ndarray],
    params: OptimizerParams | None = None,
) -> list[float]:
    """:func:`store_reserve_wh` for each heat demand [W thermal] of ``demands`` (one value
    per row of ``after``) in place of ``after``'s own: the heat pump's reach is worked out
    once for all of them."""
    hp, dc = site.heat_pump, site.datacentre
    if hp is None or dc is None or len(after) == 0:
        return [0.0] * len(demands)
    params = params or OptimizerParams()
    heat = site.heat
    index = pd.DatetimeIndex(after.index)
    dt_h = float((index[1] - index[0]) / pd.Timedelta(hours=1)) if len(index) > 1 else 0.25
    steps = len(after)
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
    keep = (1.0 - heat.store_loss_pct_per_h / 100) ** dt_h
    out = []
    for demand in demands:
        short = np.clip(
            np.nan_to_num(np.asarray(demand, dtype=float)) - reach,
            -heat.store_max_charge_th_w,
            heat.store_max_discharge_th_w,
        )
        need = 0.0
        for k in range(steps - 1, -1, -1):
            need = max(0.0, (need + float(short[k]) * dt_h) / keep)
        out.append(float(min(need, heat.store_capacity_wh)))
    return out


def reserve_tiers(
    levels_wh: Sequence[float], quantiles: Sequence[float]
) -> tuple[tuple[float, float], ...]:
    """Tiers ``(energy Wh, chance it is needed)`` from the reserves ``levels_wh`` made for
    the heat demand's ``quantiles`` (increasing, in (0, 1)).

    The reserve for quantile ``q`` is the shortfall's ``q`` quantile, so the energy between
    the reserves for ``q[i-1]`` and ``q[i]`` is needed with a chance between ``1 - q[i]``
    and ``1 - q[i-1]``; the tier takes the middle, ``1 - (q[i-1] + q[i]) / 2`` (``q[-1] =
    0``: the first tier's chance lies between ``1 - q[0]`` and 1). Levels that fall with the
    quantile (they cannot, but for rounding) count as equal; empty tiers are kept (width
    0), so the number of tiers is the number of quantiles."""
    if len(levels_wh) != len(quantiles):
        raise ValueError(f"{len(levels_wh)} reserve levels for {len(quantiles)} quantiles")
    q = np.asarray(quantiles, dtype=float)
    if len(q) and (not ((q > 0) & (q < 1)).all() or (np.diff(q) <= 0).any()):
        raise ValueError(f"quantiles must increase within (0, 1), got {list(quantiles)}")
    levels = np.maximum.accumulate(np.maximum(np.asarray(levels_wh, dtype=float), 0.0))
    widths = np.diff(levels, prepend=0.0)
    chance = 1.0 - (np.concatenate([[0.0], q[:-1]]) + q) / 2
    return tuple((float(w), float(p)) for w, p in zip(widths, chance, strict=True))


__all__ = ["reserve_tiers", "store_reserve_wh", "store_reserves_wh"]
