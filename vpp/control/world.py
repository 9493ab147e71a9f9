"""The simulated world of the demo: the simulators' PV follows the same historic inputs that
the forecasts are made from, so forecast errors in the demo are those of real weather (the
forecasts only see the past), not of two unrelated models.

The inputs give PV output per kWp installed (``pv_w_per_kwp``); the simulator's inverters turn
plane irradiance into AC power with a performance ratio and an inverter efficiency, so the
profile hands them the irradiance that reproduces that output:
``G = pv_w_per_kwp / (PR * eta_inv)`` [W/m^2 for 1 kWp at 1,000 W/m^2].
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from adapters.sim.physics import INVERTER_EFFICIENCY, PV_PERFORMANCE_RATIO
from adapters.sim.profiles import IrradianceProfile
from vpp.core.clock import floor_quarter
from vpp.sources import Source


def irradiance_from_inputs(source: Source) -> IrradianceProfile:
    """An irradiance profile for the simulators from a source of ``pv_w_per_kwp``.

    The source is read a day at a time and cached; orientation is ignored (the shipped
    series is a national mix of roofs).
    """
    cache: dict[datetime, pd.Series] = {}

    def day_values(day: datetime) -> pd.Series:
        if day not in cache:
            cache.clear()
            frame = source.fetch(day, day + timedelta(days=1), day)
            cache[day] = frame["pv_w_per_kwp"] if "pv_w_per_kwp" in frame else pd.Series()
        return cache[day]

    def profile(when: datetime, _tilt_deg: float, _azimuth_deg: float) -> float:
        step = floor_quarter(when)
        day = step.replace(hour=0, minute=0)
        values = day_values(day)
        value = values.get(pd.Timestamp(step), 0.0) if len(values) else 0.0
        if pd.isna(value):
            return 0.0
        return float(value) / (PV_PERFORMANCE_RATIO * INVERTER_EFFICIENCY)

    return profile
