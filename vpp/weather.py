"""Issued temperature forecasts: what a weather service had published at a given moment.

A real controller receives a point forecast of the 2 m temperature several times a day (DWD
MOSMIX: four runs a day, hourly values to 240 h). The project has observations only, no
archive of issued forecasts, so replay and the simulated world make them from the observed
temperature plus an error whose spread grows with the lead time
(:class:`SyntheticTemperatureForecast`):

- issues at :data:`ISSUE_HOURS_UTC` (00, 06, 12, 18 UTC), each usable from
  ``issue + available_after_h`` (3 h: the run, its post-processing and delivery), hourly
  values to ``max_lead_h`` (120 h);
- the forecast for ``issue + L`` is ``observed(issue + L) + sigma(L) * z(L)``: ``z`` a unit
  AR(1) process over the lead hours (correlation time ``error_corr_h``, 24 h: a forecast
  that misses a front misses it for a day, not for one hour), ``sigma(L)`` interpolated
  linearly in the table :data:`RMSE_BY_LEAD_K` of published verification of operational
  2 m temperature forecasts (docs/forecasts.md names the sources) and held beyond its last
  entry;
- issues draw independent errors, from ``numpy.random.default_rng([seed, issue hour])``: the
  same seed gives the same forecasts whatever is replayed, in any order, in any process.

The spread is taken from the verification literature, not fitted to the replayed year.
:meth:`SyntheticTemperatureForecast.at` is the only way the forecasts read one: the latest
issue usable at ``now`` (never one issued or delivered later).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import pandas as pd

from vpp.forecast.common import TemperatureForecasts
from vpp.sources.base import to_utc

#: Hours (UTC) of the runs.
ISSUE_HOURS_UTC: tuple[int, ...] = (0, 6, 12, 18)
#: Root-mean-square error [K] of operational 2 m temperature point forecasts by lead time
#: [h] (station forecasts over central Europe; rounded from the verification cited in
#: docs/forecasts.md).
RMSE_BY_LEAD_K: tuple[tuple[float, float], ...] = (
    (0.0, 0.8),
    (24.0, 1.4),
    (48.0, 1.7),
    (72.0, 2.0),
    (120.0, 2.6),
)
HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class ForecastSpec:
    """How the synthetic issues are made (see the module docstring)."""

    seed: int = 2018
    available_after_h: float = 3.0
    max_lead_h: int = 120
    error_corr_h: float = 24.0

    def __post_init__(self) -> None:
        if self.max_lead_h <= 0:
            raise ValueError(f"max_lead_h must be positive, got {self.max_lead_h}")
        if self.error_corr_h <= 0:
            raise ValueError(f"error_corr_h must be positive, got {self.error_corr_h}")
        if self.available_after_h < 0:
            raise ValueError(
                f"available_after_h must not be negative, got {self.available_after_h}"
            )

    @property
    def available_after(self) -> pd.Timedelta:
        return pd.Timedelta(hours=self.available_after_h)


def rmse_k(lead_h: np.ndarray) -> np.ndarray:
    """Error spread [K] at the lead times [h] (:data:`RMSE_BY_LEAD_K`, held past its end)."""
    leads, rmse = zip(*RMSE_BY_LEAD_K, strict=True)
    out: np.ndarray = np.interp(np.asarray(lead_h, dtype=float), leads, rmse)
    return out


def spread_at(
    weather: TemperatureForecasts, now: pd.Timestamp, index: pd.DatetimeIndex
) -> np.ndarray:
    """The error spread [K] of ``weather``'s forecasts at ``now`` on ``index``: its own
    ``spread_k(now, index)`` where it states one, else :func:`rmse_k` of the lead time
    from ``now`` (published skill of operational forecasts)."""
    own = getattr(weather, "spread_k", None)
    if own is not None:
        return np.asarray(own(now, index), dtype=float)
    return spread_from(to_utc(now), index)


def spread_from(issued: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
    """:func:`rmse_k` at the lead time of each step of ``index`` from ``issued``."""
    lead_h = (pd.DatetimeIndex(index) - issued) / HOUR
    return rmse_k(np.maximum(np.asarray(lead_h, dtype=float), 0.0))


class TemperatureQuantile:
    """A quantile of issued temperature forecasts: ``at(now, index)`` is ``weather.at(now,
    index) + z * spread``, ``spread`` of :func:`spread_at` and ``z`` the standard normal
    quantile of ``quantile`` (the errors taken as normal; 0.1 gives the cold side that
    heat reserves are made for)."""

    def __init__(self, weather: TemperatureForecasts, quantile: float) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
        self.weather = weather
        self.z = NormalDist().inv_cdf(quantile)

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
        base = np.asarray(self.weather.at(now, index), dtype=float)
        out: np.ndarray = base + self.z * spread_at(self.weather, now, index)
        return out


def latest_issue(now: pd.Timestamp, spec: ForecastSpec) -> pd.Timestamp:
    """The newest issue time whose forecast is usable at ``now`` (UTC)."""
    ready = to_utc(now) - spec.available_after
    issue = ready.floor("h")
    for _ in range(25):  # at most a day back to the previous run hour
        if issue.hour in ISSUE_HOURS_UTC:
            return issue
        issue -= HOUR
    raise ValueError(f"no run hour in the day before {ready}")  # pragma: no cover


class SyntheticTemperatureForecast:
    """Issued temperature forecasts made from an observed series (see the module docstring).

    ``observed``: outdoor temperature [degC] on a UTC index (the input table's quarter
    hours; the controller passes what its inputs hold, which for a historic file or
    replay's table reaches past the horizon). It is the truth the forecasts err around,
    read only here. Targets it has no value for get NaN (the caller falls back to its own
    estimate there: with a source that knows only the past, persistence).
    """

    def __init__(self, observed: pd.Series, spec: ForecastSpec | None = None) -> None:
        self.spec = spec or ForecastSpec()
        self._times, self._values = _arrays(observed)

    def error(self, issued: pd.Timestamp) -> pd.Series:
        """One issue's error [K] at its hourly lead times ``issued + 1 h .. + max_lead_h``."""
        return _error(self.spec, to_utc(issued))

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
        """Temperature [degC] on ``index`` as forecast by the newest issue usable at ``now``:
        the observation plus the issue's error, interpolated linearly between its hours to
        the middle of each step; NaN outside the issue's lead times or the observations."""
        issued = latest_issue(now, self.spec)
        err = self.error(issued)
        times = _ns(pd.DatetimeIndex(index))
        step = np.diff(times[:2]) // 2 if len(times) > 1 else np.array([450 * 10**9])
        middle = times + step[0]
        hours = _ns(pd.DatetimeIndex(err.index))
        shift = np.interp(middle, hours, err.to_numpy(), left=np.nan, right=np.nan)
        out: np.ndarray = _lookup(self._times, self._values, times) + shift
        return out

    def spread_k(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
        """The error spread [K] of the issue :meth:`at` reads at ``now`` on ``index``:
        :func:`rmse_k` at each step's lead time from that issue."""
        return spread_from(latest_issue(now, self.spec), index)

    def truth(self, index: pd.DatetimeIndex) -> np.ndarray:
        """The observation on ``index``, NaN where there is none."""
        return _lookup(self._times, self._values, _ns(pd.DatetimeIndex(index)))


def _arrays(observed: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    index = pd.DatetimeIndex(observed.index)
    if index.tz is None:
        raise ValueError("observed temperature needs a timezone-aware index (UTC)")
    series = observed.astype(float).set_axis(index.tz_convert("UTC")).sort_index()
    series = series[~series.index.duplicated()].dropna()
    return _ns(pd.DatetimeIndex(series.index)), series.to_numpy(dtype=float)


def _lookup(times: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    out = np.full(len(wanted), np.nan)
    if len(times):
        pos = np.clip(np.searchsorted(times, wanted), 0, len(times) - 1)
        hit = times[pos] == wanted
        out[hit] = values[pos[hit]]
    return out


@lru_cache(maxsize=256)
def _error(spec: ForecastSpec, issued: pd.Timestamp) -> pd.Series:
    steps = spec.max_lead_h
    targets = pd.date_range(issued + HOUR, periods=steps, freq="h")
    lead_h = np.arange(1, steps + 1, dtype=float)
    z = _ar1([spec.seed, int(issued.value // 3_600_000_000_000)], steps, spec.error_corr_h)
    return pd.Series(rmse_k(lead_h) * z, index=targets, name="error_k")


def _ar1(seed: list[int], steps: int, corr_h: float) -> np.ndarray:
    """A unit AR(1) process over ``steps`` hours with correlation time ``corr_h`` [h]."""
    rng = np.random.default_rng(seed)
    phi = float(np.exp(-1.0 / corr_h))
    shocks = rng.standard_normal(steps)
    z = np.empty(steps)
    z[0] = shocks[0]
    innovation = np.sqrt(1.0 - phi**2)
    for i in range(1, steps):
        z[i] = phi * z[i - 1] + innovation * shocks[i]
    return z


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    out: np.ndarray = np.asarray(index.tz_convert("UTC").as_unit("ns").asi8)
    return out


#: Spread of the hourly error of issued PV forecasts by lead time [h], in units of the clear-sky
#: index (the error in W/kWp is this times the hour's clear-sky GHI in W/m^2, i.e. the PV of
#: one kWp at standard test conditions under a clear sky). Set so that on the shipped
#: typical-year GHI of Leipzig (one site) the first-day forecast's hourly RMSE is about half
#: of day-ahead persistence's, the skill Perez et al. (2013) report for the best NWP-based
#: forecasts (docs/forecasts.md).
PV_ERROR_BY_LEAD: tuple[tuple[float, float], ...] = (
    (0.0, 0.17),
    (24.0, 0.20),
    (48.0, 0.22),
    (120.0, 0.26),
)
#: Correlation time [h] of an issued PV forecast's error over its lead hours (a misplaced
#: cloud field is misplaced for hours, not for a day as a front is).
PV_ERROR_CORR_H = 6.0


def pv_error_index(lead_h: np.ndarray) -> np.ndarray:
    """Error spread [clear-sky index] at the lead times [h] (:data:`PV_ERROR_BY_LEAD`)."""
    leads, spread = zip(*PV_ERROR_BY_LEAD, strict=True)
    out: np.ndarray = np.interp(np.asarray(lead_h, dtype=float), leads, spread)
    return out


class SyntheticSolarForecast:
    """Issued PV forecasts [W/kWp] made from an observed PV series, as a forecast service
    working from numerical weather prediction delivers them (same issue times and delivery
    delay as :class:`SyntheticTemperatureForecast`, hourly values to ``max_lead_h``).

    The forecast for the hour starting at ``issue + k h`` is the hour's observed mean plus
    ``pv_error_index(k + 0.5) * z(k) * sky``: ``z`` a unit AR(1) process over the lead hours
    (correlation time :data:`PV_ERROR_CORR_H`), drawn from
    ``default_rng([seed, issue hour, 2])`` (independent of the temperature's errors),
    ``sky`` the hour's mean clear-sky GHI [W/m^2]; clipped to ``[0, max(observed, sky)]``.
    Within the hour the value is shaped by the clear-sky GHI of each quarter hour (dark
    quarter hours get 0). ``observed`` is the truth the forecasts err around, read only
    here; targets without an observation get NaN (the caller keeps its own forecast there).
    """

    def __init__(
        self,
        observed: pd.Series,
        spec: ForecastSpec | None = None,
        latitude_deg: float = 51.34,
        longitude_deg: float = 12.37,
    ) -> None:
        from vpp.forecast import ForecastSettings

        self.spec = spec or ForecastSpec()
        self._settings = ForecastSettings(latitude_deg=latitude_deg, longitude_deg=longitude_deg)
        times, values = _arrays(observed)
        series = pd.Series(values, index=pd.DatetimeIndex(times, tz="UTC"))
        hourly = series.resample("h").mean().dropna()
        self._times, self._values = _ns(pd.DatetimeIndex(hourly.index)), hourly.to_numpy()

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
        """PV [W/kWp] on the quarter hours ``index`` as forecast by the newest issue usable
        at ``now``; NaN outside the issue's lead times or the observations."""
        from vpp.forecast import clear_sky_ghi

        index = pd.DatetimeIndex(index).tz_convert("UTC")
        if len(index) == 0:
            return np.full(0, np.nan)
        issued = latest_issue(now, self.spec)
        hour_of = index.floor("h")
        hours = pd.DatetimeIndex(hour_of.unique())
        quarters = pd.date_range(hours[0], hours[-1] + HOUR, freq="15min", inclusive="left")
        sky_q = clear_sky_ghi(quarters, self._settings).reshape(-1, 4)
        sky_h = sky_q.mean(axis=1)
        k = np.asarray((hours - issued) / HOUR, dtype=float)
        err = _solar_error(self.spec, issued)
        inside = (k >= 0) & (k < self.spec.max_lead_h)
        shift = np.full(len(hours), np.nan)
        shift[inside] = err[k[inside].astype(int)]
        truth = _lookup(self._times, self._values, _ns(hours))
        hourly = np.clip(truth + shift * sky_h, 0.0, np.maximum(truth, sky_h))
        row = np.asarray((hour_of - hours[0]) / HOUR, dtype=int)
        col = np.asarray((index - hour_of) / pd.Timedelta(minutes=15), dtype=int)
        with np.errstate(invalid="ignore", divide="ignore"):
            shape = np.where(sky_h[row] > 0, sky_q[row, col] / sky_h[row], 0.0)
        result: np.ndarray = hourly[row] * shape
        return result

    def truth(self, index: pd.DatetimeIndex) -> np.ndarray:
        """The observed hourly mean of each step's hour, NaN where there is none."""
        hours = pd.DatetimeIndex(index).tz_convert("UTC").floor("h")
        return _lookup(self._times, self._values, _ns(hours))


@lru_cache(maxsize=256)
def _solar_error(spec: ForecastSpec, issued: pd.Timestamp) -> np.ndarray:
    steps = spec.max_lead_h
    z = _ar1([spec.seed, int(issued.value // 3_600_000_000_000), 2], steps, PV_ERROR_CORR_H)
    out: np.ndarray = pv_error_index(np.arange(steps) + 0.5) * z
    out.flags.writeable = False
    return out


__all__ = [
    "ISSUE_HOURS_UTC",
    "PV_ERROR_BY_LEAD",
    "PV_ERROR_CORR_H",
    "RMSE_BY_LEAD_K",
    "ForecastSpec",
    "SyntheticSolarForecast",
    "SyntheticTemperatureForecast",
    "latest_issue",
    "pv_error_index",
    "rmse_k",
]
