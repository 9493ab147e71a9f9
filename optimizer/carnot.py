"""Heat-pump COP from the Carnot limit and a fitted efficiency factor.

``COP(t) = eta * T_supply / (T_supply - T_source(t))`` in kelvin, with
``T_source = waste_heat_temp - source_approach_k``. ``eta`` comes from the site file unless the
file leaves it at its default, in which case the value fitted to real heat pumps is used
(:data:`optimizer.params.FITTED_CARNOT_EFFICIENCY`, see ``optimizer/fit_carnot.py``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optimizer.params import FITTED_CARNOT_EFFICIENCY, OptimizerParams
from vpp.core.site import HeatPumpDevice

KELVIN = 273.15


def carnot_cop(
    supply_temp_c: ArrayLike, source_temp_c: ArrayLike, eta: float
) -> NDArray[np.float64]:
    """COP of a heat pump at ``eta`` times the Carnot limit.

    supply_temp_c : hot-side (condenser) temperature [degC]
    source_temp_c : cold-side (evaporator) temperature [degC]
    eta : Carnot efficiency factor [-]
    Returns ``eta * T_h / (T_h - T_c)`` in kelvin; ``inf`` where the lift is not positive.
    """
    t_hot = np.asarray(supply_temp_c, dtype=float) + KELVIN
    lift = t_hot - (np.asarray(source_temp_c, dtype=float) + KELVIN)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lift > 0, eta * t_hot / lift, np.inf)


def effective_carnot_efficiency(hp: HeatPumpDevice) -> float:
    """The site's ``carnot_efficiency``, or the fitted value when the site leaves the default."""
    default = HeatPumpDevice.model_fields["carnot_efficiency"].default
    if hp.carnot_efficiency == default:
        return FITTED_CARNOT_EFFICIENCY
    return float(hp.carnot_efficiency)


def cop_series(
    hp: HeatPumpDevice,
    supply_temp_c: float,
    waste_heat_temp_c: NDArray[np.float64],
    params: OptimizerParams,
) -> NDArray[np.float64]:
    """COP per step, clipped to ``params.cop_max``; 0 where the heat pump cannot run.

    waste_heat_temp_c : data-centre waste-heat temperature per step [degC]; NaN = no source.
    A step whose COP is below ``params.cop_min`` (source too cold for the supply temperature)
    gets 0, which the model reads as "heat pump unavailable".
    """
    source = waste_heat_temp_c - hp.source_approach_k
    cop = np.minimum(
        carnot_cop(supply_temp_c, source, effective_carnot_efficiency(hp)), params.cop_max
    )
    usable = ~np.isnan(source) & (cop >= params.cop_min)
    return np.where(usable, cop, 0.0)
