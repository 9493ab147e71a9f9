"""What every forecast of :mod:`vpp.forecast` shares: its settings, what counts as known at
``now`` (:func:`cutoffs`, :func:`known_series`), persistence lookups and the time helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from vpp.data.schema import COLUMNS, INDEX_NAME, STEP
from vpp.data.timegrid import LOCAL_TZ
from vpp.sources.base import to_utc
from vpp.sources.daymap import DayTable, utc_ns

Mode = Literal["asof", "perfect"]


class TemperatureForecasts(Protocol):
    """Issued temperature forecasts (e.g. :class:`vpp.weather.SyntheticTemperatureForecast`):
    ``at(now, index)`` gives the newest forecast usable at ``now`` on ``index`` [degC], NaN
    where it has no value."""

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray: ...


class SolarForecasts(Protocol):
    """Issued PV forecasts (e.g. :class:`vpp.weather.SyntheticSolarForecast`): ``at(now,
    index)`` gives the newest forecast usable at ``now`` on ``index`` [W/kWp], NaN where it
    has no value."""

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray: ...


#: The column issued PV forecasts are for.
PV_COLUMN = "pv_w_per_kwp"

#: Local time from which the next delivery day's day-ahead prices count as published.
PRICE_PUBLICATION = time(13, 0)

DEFAULT_HORIZON = timedelta(hours=36)

#: History older than this before the cutoff is not looked at (bounds the work per call).
LOOKBACK = pd.Timedelta(days=35)

DAY = pd.Timedelta(days=1)

WEEK = pd.Timedelta(days=7)

#: PV per kWp, GHI and DHI over a year, each over the clear-sky GHI of :func:`clear_sky_ghi`
#: at Leipzig (the shipped 2018 year: 0.537, 0.616, 0.311): the cold-start estimate while no
#: daylight quarter hour of the quantity is known yet.
COLD_START_SKY_SHARE = {"pv_w_per_kwp": 0.54, "ghi_w_per_m2": 0.62, "dhi_w_per_m2": 0.31}

#: The level of the SigLinDe model (:func:`forecast_heat_from_temperature`) that makes a year
#: of Leipzig's test-reference temperatures 1 MWh (the shipped years: 2,804): the heat
#: forecast's scale while no complete day of measured heat is known yet.
COLD_START_HEAT_SCALE = 2800.0


@dataclass(frozen=True)
class ForecastSettings:
    """Site position and method parameters of the forecasts."""

    latitude_deg: float = 51.34
    longitude_deg: float = 12.37
    price_publication: time = PRICE_PUBLICATION
    #: Past days averaged for PV persistence and for the clear-sky index.
    solar_days: int = 3
    #: Weight of persistence in the PV blend; the rest goes to the scaled clear-sky shape.
    solar_persistence_weight: float = 0.5
    #: Hours of the latest measurements that set the nowcast's clear-sky index (0: off).
    solar_nowcast_h: float = 0.5
    #: Time constant [h] over which the nowcast fades into the day-to-day blend.
    solar_nowcast_decay_h: float = 4.0
    #: Mean clear-sky GHI [W/m^2] the nowcast window needs (no nowcast around sunrise/night).
    solar_nowcast_min_sky: float = 30.0
    #: What the nowcast's index is measured against: ``sky``, the clear-sky GHI (the
    #: measured PV's clear-sky index, carried to the target's clear sky); ``forecast``, the
    #: day-ahead forecast itself over the same window (its ratio scales the forecast ahead).
    solar_nowcast_reference: Literal["sky", "forecast"] = "forecast"
    #: Largest ratio of measured to forecast PV the nowcast against the forecast carries.
    solar_nowcast_max_ratio: float = 3.0
    #: Complete UTC days before the cutoff on which issued PV forecasts and the rule blend
    #: are scored against the measured PV to weigh them (:func:`issued_solar_weight`).
    solar_issued_days: int = 14
    #: Fewer days than this with daylight to score: the two are weighed equally.
    solar_issued_min_days: int = 3
    #: Complete known days whose measured heat demand scales the SigLinDe model of the heat
    #: forecast from a temperature forecast (:func:`forecast_heat_from_temperature`).
    heat_scale_days: int = 3
    #: Hours of the latest measured heat whose mean departure from the scaled model is
    #: carried into the heat forecast (0: off), and the time constant [h] over which that
    #: departure fades (a heat network's departures from its weather model last hours:
    #: cold nights, solar gains, the network's own inertia).
    heat_nowcast_h: float = 1.0
    heat_nowcast_decay_h: float = 6.0
    #: Complete known days on which the heat forecast's level is scored against the measured
    #: heat (:func:`vpp.forecast.demand.heat_level_error`); fewer than ``heat_error_min_days``
    #: scored: no error is given.
    heat_error_days: int = 14
    heat_error_min_days: int = 7
    #: Latest complete known days of its kind whose median makes the data centre's usual
    #: day, and known days before the cutoff over which the persistence of the IT load's
    #: departures from it is measured (0: no departure carried) (:func:`forecast_it_load`).
    it_load_days: int = 5
    it_departure_days: int = 2
    #: Known days of the grid's CO2 intensity and the day-ahead price over which the
    #: intensity's slope in the price is fitted (:func:`vpp.forecast.forecast_co2`); fewer
    #: than ``co2_fit_min_days`` days of pairs (0 days: off), daily persistence.
    co2_fit_days: int = 7
    co2_fit_min_days: int = 2


def forecast_index(now: datetime, horizon: timedelta = DEFAULT_HORIZON) -> pd.DatetimeIndex:
    """UTC quarter hours from the one containing ``now``, as many as cover ``horizon``."""
    start = to_utc(now).floor(STEP)
    steps = int(np.ceil(pd.Timedelta(horizon) / STEP))
    return pd.date_range(start, periods=steps, freq=STEP, name=INDEX_NAME)


def price_known_until(now: datetime, publication: time = PRICE_PUBLICATION) -> pd.Timestamp:
    """End (UTC) of the day-ahead prices published at ``now``: the next local midnight,
    or the one after it from ``publication`` local time on."""
    local = to_utc(now).tz_convert(LOCAL_TZ)
    days = 2 if local.time() >= publication else 1
    midnight = local.normalize()
    for _ in range(days):  # step over 23/25-hour days without drifting off midnight
        midnight = (midnight + pd.Timedelta(hours=26)).normalize()
    return midnight.tz_convert("UTC")


def cutoffs(
    columns: list[str], now: datetime, settings: ForecastSettings
) -> dict[str, pd.Timestamp]:
    """First instant (UTC) not known at ``now``, per column."""
    measured = to_utc(now).floor(STEP)
    prices = price_known_until(now, settings.price_publication)
    return {c: prices if c == "price_eur_per_mwh" else measured for c in columns}


def known_series(series: pd.Series, cutoff: pd.Timestamp) -> pd.Series:
    """Values before ``cutoff`` (and after ``cutoff - LOOKBACK``), missing ones dropped."""
    index = series.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    if index.is_monotonic_increasing:  # the usual case: a slice, no mask over the history
        lo, hi = index.searchsorted(cutoff - LOOKBACK), index.searchsorted(cutoff)
        inside = series.iloc[lo:hi]
        if inside.dtype == np.float64 and not np.isnan(inside.to_numpy()).any():
            return inside
    else:
        inside = series[(index < cutoff) & (index >= cutoff - LOOKBACK)]
    return inside.dropna().astype(float)


def shift_persistence(
    known: pd.Series,
    index: pd.DatetimeIndex,
    cutoff: pd.Timestamp,
    period: pd.Timedelta,
    count: int = 1,
    average: bool = False,
) -> np.ndarray:
    """Values ``period`` (or whole multiples of it) earlier, from before ``cutoff``.

    For each target ``t`` the lags are ``n * period`` for the smallest ``n`` with
    ``t - n * period < cutoff`` and on; the first ``count`` lags with a value are taken,
    and averaged if ``average``. NaN where none of ``count + 7`` lags has a value.
    """
    targets = utc_ns(index)
    period_ns = pd.Timedelta(period).as_unit("ns").value
    lag0 = np.floor((targets - ns(cutoff)) / period_ns).astype(int) + 1
    first = np.maximum(lag0, 1)
    found = np.zeros(len(index), dtype=int)
    total = np.zeros(len(index))
    lookup = lookup_in(known)
    for extra in range(count + 7):
        value = lookup(targets - (first + extra) * period_ns)
        take = ~np.isnan(value) & (found < count)
        total[take] += value[take]
        found[take] += 1
    divisor = np.maximum(found, 1) if average else 1
    return np.where(found > 0, total / divisor, np.nan)


def values_at(known: pd.Series, instants_ns: np.ndarray) -> np.ndarray:
    """``known``'s values at the instants (ns since the epoch, UTC); NaN where it has none:
    ``known.reindex``, without building an index per call."""
    return lookup_in(known)(instants_ns)


def lookup_in(known: pd.Series) -> Callable[[np.ndarray], np.ndarray]:
    index = known.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    values = known.to_numpy(dtype=float)
    if not (index.is_monotonic_increasing and index.is_unique):
        # Unsorted or repeated instants: pandas matches them (or refuses).
        return lambda wanted: known.reindex(pd.DatetimeIndex(wanted, tz="UTC")).to_numpy(
            dtype=float, copy=True
        )
    times = utc_ns(index)

    def lookup(wanted: np.ndarray) -> np.ndarray:
        out = np.full(len(wanted), np.nan)
        if len(times) == 0:
            return out
        pos = np.minimum(np.searchsorted(times, wanted), len(times) - 1)
        hit = times[pos] == wanted
        out[hit] = values[pos[hit]]
        return out

    return lookup


def ns(when: pd.Timestamp) -> int:
    return int(pd.Timestamp(when).as_unit("ns").value)


def last_complete(table: DayTable) -> int:
    rows = np.flatnonzero(table.complete)
    return int(rows[-1]) if len(rows) else -1


def clip(column: str, values: np.ndarray) -> np.ndarray:
    spec = COLUMNS[column]
    clipped: np.ndarray = np.clip(values, spec.min, spec.max)
    return clipped


def utc_index(history: pd.DataFrame) -> pd.DataFrame:
    index = history.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("forecast history needs a timezone-aware DatetimeIndex (UTC)")
    if str(index.tz) == "UTC" and index.is_monotonic_increasing and index.is_unique:
        return history  # the usual case: no copy of a year of data per call
    out = history.copy()
    out.index = index.tz_convert("UTC")
    return out[~out.index.duplicated(keep="first")].sort_index()


Forecaster = Callable[[pd.Series, pd.DatetimeIndex, pd.Timestamp, ForecastSettings], np.ndarray]
