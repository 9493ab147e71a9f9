"""The simulated world of the demo: the simulators follow the same historic inputs that the
forecasts are made from, so forecast errors in the demo are those of real weather, load and IT
load (the forecasts only see the past), not of two unrelated models.

:func:`truth_frame` scales a raw input table to the site exactly as replay's plant takes it
(:mod:`vpp.replay.layout`); :func:`world_from_inputs` hands the same quantities to the
simulated devices minute by minute as the replay plant steps them: PV per kWp (turned into
the irradiance that reproduces it), the site's base load and the network's heat demand
(which the heat pump's plant meters as ``network_th_w``) interpolated within the quarter hour
(:func:`vpp.data.minutes.within_quarter`), each at a moment the value of the minute that
contains the instant before it (the minute that just ended); the data centre's IT power and
waste-heat temperature held for the quarter hour, as the replay plant holds the waste heat
and the COP (so that each quarter hour's heat balance is the plan's and the bound's). The IT
power at a moment is that of the quarter hour that starts or goes on at it, as the replay
plant's data-centre meter shows it: at a quarter hour's first poll the heat correction caps
the heat pump at the new quarter hour's waste heat in both.

The inverters turn plane irradiance into AC power with a performance ratio and an inverter
efficiency, so the irradiance is ``G = pv_w_per_kwp / (PR * eta_inv)`` [W/m^2 for 1 kWp at
1,000 W/m^2]; orientation is ignored (the shipped series is a national mix of roofs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from adapters.sim.physics import INVERTER_EFFICIENCY, PV_PERFORMANCE_RATIO
from adapters.sim.profiles import SimWorld
from optimizer.inputs import forecast_from_raw
from vpp.core.site import Site
from vpp.data.minutes import within_quarter
from vpp.sources import Source

#: Sub-steps of the simulated world [s].
MINUTE_S = 60
_PER_QUARTER = 15


def truth_frame(site: Site, raw: pd.DataFrame) -> pd.DataFrame:
    """The raw inputs scaled to the site, with the optional columns' defaults filled in."""
    fc = forecast_from_raw(site, raw)
    dc = site.datacentre
    if "it_power_w" not in fc:
        fc["it_power_w"] = dc.it_power_w if dc is not None else 0.0
    if "waste_heat_temp_c" not in fc:
        fc["waste_heat_temp_c"] = dc.waste_heat_temp_c if dc is not None else np.nan
    if "co2_g_per_kwh" not in fc:
        fc["co2_g_per_kwh"] = 0.0
    return fc


#: Raw inputs of the quarter hours ``[start, end)`` (None: not to be had).
DayFetch = Callable[[datetime, datetime], pd.DataFrame | None]


def world_from_inputs(site: Site, source: Source) -> SimWorld:
    """The simulators' world from a source of raw inputs, read a local day at a time."""
    return _world(site, lambda start, end: source.fetch(start, end, end))


def world_from_frame(site: Site, raw: pd.DataFrame) -> SimWorld:
    """The same world from a table of raw inputs (replay's history): what the simulated
    devices would show at any moment of a local day that ``raw`` holds whole (None in a
    day it does not)."""
    have = pd.DatetimeIndex(raw.index)

    def fetch(start: datetime, end: datetime) -> pd.DataFrame | None:
        want = pd.date_range(start, end, freq="15min", inclusive="left")
        return raw.loc[want] if want.isin(have).all() else None

    return _world(site, fetch)


def _world(site: Site, fetch: DayFetch) -> SimWorld:
    tz = ZoneInfo(site.site.timezone)
    cache: dict[date, tuple[datetime, dict[str, np.ndarray]]] = {}

    def day_of(instant: datetime) -> tuple[datetime, dict[str, np.ndarray]]:
        local = instant.astimezone(tz).date()
        if local not in cache:
            cache.clear()
            cache[local] = _minutes(site, fetch, local, tz)
        return cache[local]

    def minute(name: str, instant: datetime) -> float | None:
        """The value of the minute that contains ``instant``."""
        start, series = day_of(instant)
        m = int((instant - start).total_seconds() // MINUTE_S)
        values = series.get(name)
        if values is None or not 0 <= m < len(values) or not np.isfinite(values[m]):
            return None
        return float(values[m])

    def value(name: str, when: datetime) -> float | None:
        # The minute that just ended at ``when``.
        return minute(name, when - timedelta(microseconds=1))

    def held(name: str, when: datetime) -> float | None:
        # The minute that starts or goes on at ``when``.
        return minute(name, when)

    def irradiance(when: datetime, _tilt_deg: float, _azimuth_deg: float) -> float:
        pv = value("pv_w_per_kwp", when) or 0.0
        return pv / (PV_PERFORMANCE_RATIO * INVERTER_EFFICIENCY)

    return SimWorld(
        irradiance=irradiance,
        base_load_w=lambda when: value("load_w", when),
        it_power_w=lambda when: held("it_power_w", when),
        waste_heat_temp_c=lambda when: value("waste_heat_temp_c", when),
        heat_demand_th_w=lambda when: value("heat_demand_th_w", when),
    )


def _minutes(
    site: Site, fetch: DayFetch, day: date, tz: ZoneInfo
) -> tuple[datetime, dict[str, np.ndarray]]:
    """Minute values of one local day (UTC start, arrays by quantity)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(ZoneInfo("UTC"))
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(ZoneInfo("UTC"))
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    raw = fetch(start, end)
    series: dict[str, np.ndarray] = {}
    if raw is None:
        return start, series
    try:
        truth = truth_frame(site, raw.reindex(index))
    except ValueError:  # the source has nothing usable for this day
        return start, series
    for name in ("pv_w_per_kwp", "load_w", "it_power_w", "waste_heat_temp_c", "heat_demand_th_w"):
        if name in truth:
            values = truth[name].to_numpy(float)
            if name in ("it_power_w", "waste_heat_temp_c"):  # held, as the replay plant does
                series[name] = np.repeat(values, _PER_QUARTER)
            else:
                series[name] = within_quarter(np.nan_to_num(values), _PER_QUARTER)
    return start, series
