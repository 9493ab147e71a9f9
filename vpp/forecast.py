"""Forecasts of the input schema "as of" a moment: only what was known then is used.

:func:`forecast` turns a history in the raw input schema (:mod:`vpp.data.schema`) into a
forecast for the quarter hours ``[floor(now), floor(now) + horizon)``. The live controller
passes what it has recorded; replay passes a whole historic year, future included, and
``mode="asof"`` must not look at that future. What counts as known at ``now``:

- measured series (PV, weather, CO2, loads, IT load): the quarter hours that have ended,
  i.e. those before ``floor(now)``;
- day-ahead prices: as published. The auction for delivery day D closes at 12:00
  Europe/Berlin on D-1 and its results appear at about 12:45-13:00; from 13:00 local
  (:data:`PRICE_PUBLICATION`) tomorrow's prices are known, before that only today's.

Everything after the cutoff is replaced by an estimate from the known past, one small
pure function per quantity (see each for the method). ``mode="perfect"`` is the oracle:
the true values from the history. All results are deterministic.

A site's first days (a new installation, or a replay from the first day of its data) have
no past to estimate from: household load then takes the BDEW H25 profile itself, PV, GHI
and DHI a climatological share of the clear-sky irradiance (:data:`COLD_START_SKY_SHARE`)
and heat, given a temperature forecast, the SigLinDe model at a typical year's level
(:data:`COLD_START_HEAT_SCALE`), until the history has days of its own; prices and the rest
keep their rules (the data centre's IT load and waste-heat temperature fall back to the
site file's values in the optimizer's inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache, partial
from typing import Literal, Protocol

import numpy as np
import pandas as pd
import pvlib  # type: ignore[import-untyped]

from vpp.data import DATA_DIR
from vpp.data.heat import ShlpCoefficients, day_shape, geometric_temperature, read_shlp
from vpp.data.profiles import (
    bdew_dynamisation,
    household_load,
    read_bdew25,
    saxony_holidays,
    slp_day_types,
)
from vpp.data.schema import COLUMNS, INDEX_NAME, SCHEMA, STEP, STEP_H
from vpp.data.timegrid import LOCAL_TZ
from vpp.sources.daymap import (
    DAY_NS,
    DayTable,
    day_table,
    local_calendar,
    local_slots,
    quarter_grid,
    utc_ns,
)

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


def forecast_index(now: datetime, horizon: timedelta = DEFAULT_HORIZON) -> pd.DatetimeIndex:
    """UTC quarter hours from the one containing ``now``, as many as cover ``horizon``."""
    start = _utc(now).floor(STEP)
    steps = int(np.ceil(pd.Timedelta(horizon) / STEP))
    return pd.date_range(start, periods=steps, freq=STEP, name=INDEX_NAME)


def price_known_until(now: datetime, publication: time = PRICE_PUBLICATION) -> pd.Timestamp:
    """End (UTC) of the day-ahead prices published at ``now``: the next local midnight,
    or the one after it from ``publication`` local time on."""
    local = _utc(now).tz_convert(LOCAL_TZ)
    days = 2 if local.time() >= publication else 1
    midnight = local.normalize()
    for _ in range(days):  # step over 23/25-hour days without drifting off midnight
        midnight = (midnight + pd.Timedelta(hours=26)).normalize()
    return midnight.tz_convert("UTC")


def cutoffs(
    columns: list[str], now: datetime, settings: ForecastSettings
) -> dict[str, pd.Timestamp]:
    """First instant (UTC) not known at ``now``, per column."""
    measured = _utc(now).floor(STEP)
    prices = price_known_until(now, settings.price_publication)
    return {c: prices if c == "price_eur_per_mwh" else measured for c in columns}


def forecast(
    history: pd.DataFrame,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    mode: Mode = "asof",
    settings: ForecastSettings | None = None,
    weather: TemperatureForecasts | None = None,
    solar: SolarForecasts | None = None,
    solar_weight: float | None = None,
) -> pd.DataFrame:
    """Raw-schema forecast for the quarter hours of :func:`forecast_index`.

    Parameters
    ----------
    history : DataFrame
        Schema columns on a UTC quarter-hour index; may reach past ``now``.
    now : datetime
        The moment the forecast is made (timezone-aware).
    horizon : timedelta
        Length of the forecast, rounded up to whole quarter hours.
    mode : {"asof", "perfect"}
        ``"asof"``: only what was known at ``now``; ``"perfect"``: the true values.
    weather : TemperatureForecasts, optional
        Issued temperature forecasts (asof only): the outdoor temperature is the newest
        issue usable at ``now`` (persistence where it has no value) and the heat demand
        comes from it through :func:`forecast_heat_from_temperature`. None: persistence.
    solar : SolarForecasts, optional
        Issued PV forecasts (asof only): the PV column's day-to-day blend becomes
        ``w * issued + (1 - w) * blend`` where the issue has a value, the nowcast on top
        (:func:`forecast_solar`); ``w`` is ``solar_weight``, or when None
        :func:`issued_solar_weight` on the known PV.

    Returns
    -------
    DataFrame
        The history's schema columns (schema order) on the forecast index; NaN where
        there was nothing to estimate from.
    """
    settings = settings or ForecastSettings()
    index = forecast_index(now, horizon)
    columns = [c.name for c in SCHEMA if c.name in history.columns]
    data = _utc_index(history)
    if mode == "perfect":
        return perfect(data, index, columns)
    if mode != "asof":
        raise ValueError(f"unknown forecast mode {mode!r} (asof or perfect)")
    out = {}
    for column, cutoff in cutoffs(columns, now, settings).items():
        known = known_series(data[column], cutoff)
        if solar is not None and column == PV_COLUMN:
            issued = np.asarray(solar.at(_utc(now), index), dtype=float)
            if len(issued) != len(index):
                raise ValueError(f"PV forecast: {len(issued)} values for {len(index)} steps")
            if solar_weight is None:
                solar_weight = issued_solar_weight(known, solar, cutoff, settings)
            estimate = _forecast_solar(
                known, index, cutoff, settings, COLD_START_SKY_SHARE[column],
                issued=(issued, solar_weight),
                issued_at=lambda at: np.asarray(solar.at(_utc(now), at), dtype=float),
            )  # fmt: skip
        else:
            estimate = _FORECASTERS[column](known, index, cutoff, settings)
        out[column] = _clip(column, estimate)
    if weather is not None and "outdoor_temp_c" in out:
        issued = np.asarray(weather.at(_utc(now), index), dtype=float)
        if len(issued) != len(index):
            raise ValueError(f"weather forecast: {len(issued)} values for {len(index)} steps")
        temp = np.where(np.isnan(issued), out["outdoor_temp_c"], issued)
        out["outdoor_temp_c"] = _clip("outdoor_temp_c", temp)
        if "heat_w_per_mwh_a" in out:
            cutoff = _utc(now).floor(STEP)
            heat = forecast_heat_from_temperature(
                known_series(data["heat_w_per_mwh_a"], cutoff),
                known_series(data["outdoor_temp_c"], cutoff),
                out["outdoor_temp_c"],
                index,
                cutoff,
                settings,
            )
            rules = out["heat_w_per_mwh_a"]
            out["heat_w_per_mwh_a"] = _clip(
                "heat_w_per_mwh_a", np.where(np.isnan(heat), rules, heat)
            )
    return pd.DataFrame(out, index=index)


def perfect(history: pd.DataFrame, index: pd.DatetimeIndex, columns: list[str]) -> pd.DataFrame:
    """The true values on ``index``; ValueError naming the first quarter hour missing."""
    truth = history[columns].reindex(index).astype(float)
    missing = truth.isna().any(axis=1)
    if missing.any():
        first = missing[missing].index[0]
        raise ValueError(f"perfect forecast: history has no values for {first.isoformat()}")
    return truth


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


# --- one estimate per quantity ------------------------------------------------------------


def forecast_price(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Published prices [EUR/MWh] where known; beyond them the same local wall-clock
    quarter hour of the last complete published day (day-ahead persistence)."""
    values = values_at(known, utc_ns(index))
    table = day_table(known)
    last = _last_complete(table)
    if last >= 0:
        todo = np.isnan(values)
        rows = np.full(int(todo.sum()), last)
        values[todo] = table.lookup(rows, local_slots(index[todo]))
    return values


def forecast_solar(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """PV per kWp [W/kWp] (also GHI/DHI [W/m^2]): a blend of persistence and clear sky.

    - persistence: mean of the same UTC quarter hour (same sun position, to within
      minutes) over the ``solar_days`` latest known days;
    - clear sky: the target quarter hour's clear-sky GHI (pvlib, Haurwitz model, at the
      site) times the recent clear-sky index: the known energy of those days over their
      clear-sky energy. It moves sunrise and sunset to the target day and keeps night at 0.

    Blended ``w * persistence + (1 - w) * clear sky`` with ``w = solar_persistence_weight``.

    Within the day this is corrected by a nowcast (the weather now says more about the next
    hours than the last days do), fading as ``f = exp(-lead / solar_nowcast_decay_h)``:

    - ``solar_nowcast_reference = "forecast"`` (default): the PV measured over the last
      ``solar_nowcast_h`` hours over what the same day-ahead forecast gives for them, ``r``
      (at most ``solar_nowcast_max_ratio``); the forecast ahead is scaled by
      ``1 + f (r - 1)``. A low sun's PV is measured against the forecast's own low-sun
      shape, not against the clear-sky GHI of a horizontal plane;
    - ``"sky"``: the clear-sky index of the last ``solar_nowcast_h`` hours measured, times
      the target's clear-sky GHI, weighted ``f`` against the blend (at a low sun this index
      is low and was carried into the day: docs/replay-world.md).

    With issued PV forecasts (:func:`forecast`) the day-ahead forecast is the blend weighed
    with the issue, and the nowcast is measured against that.
    """
    return _forecast_solar(known, index, cutoff, settings)


def _forecast_solar(
    known: pd.Series,
    index: pd.DatetimeIndex,
    cutoff: pd.Timestamp,
    settings: ForecastSettings,
    cold_start_share: float | None = None,
    issued: tuple[np.ndarray, float] | None = None,
    issued_at: Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`forecast_solar`; with no daylight known at all, ``cold_start_share`` times
    the clear-sky GHI where persistence has nothing (None: NaN there). ``issued``: an
    issued forecast on ``index`` and its weight against the blend (see :func:`forecast`)."""
    days = settings.solar_days
    recent = known[known.index >= cutoff - days * DAY]
    sky_recent = clear_sky_ghi(pd.DatetimeIndex(recent.index), settings)
    total_sky = float(sky_recent.sum())
    if total_sky <= 0.0:
        persistence = shift_persistence(known, index, cutoff, DAY, count=days, average=True)
        if cold_start_share is None:
            return persistence
        prior = cold_start_share * clear_sky_ghi(index, settings)
        return _with_issued(np.where(np.isnan(persistence), prior, persistence), issued)
    sky_index = float(recent.sum()) / total_sky
    w = settings.solar_persistence_weight
    weight = None if issued is None else issued[1]

    def day_ahead(at: pd.DatetimeIndex, sky: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """The day-to-day blend on ``at`` (with the issue ``values`` at ``weight``)."""
        lagged = shift_persistence(known, at, cutoff, DAY, count=days, average=True)
        clear = sky * sky_index
        blend = np.where(np.isnan(lagged), clear, w * lagged + (1.0 - w) * clear)
        return _with_issued(blend, None if values is None or weight is None else (values, weight))

    sky = clear_sky_ghi(index, settings)
    ahead = day_ahead(index, sky, None if issued is None else issued[0])
    if settings.solar_nowcast_reference == "sky":
        return nowcast_solar(recent, ahead, sky, index, cutoff, settings)
    # The nowcast against the forecast: how the last measured window came out against
    # what the same day-ahead forecast says for it, carried ahead as a fading ratio.
    window = recent[recent.index >= cutoff - pd.Timedelta(hours=settings.solar_nowcast_h)]
    if len(window) == 0:
        return ahead
    at = pd.DatetimeIndex(window.index)
    sky_window = clear_sky_ghi(at, settings)
    if float(sky_window.mean()) < settings.solar_nowcast_min_sky:
        return ahead
    said = day_ahead(at, sky_window, None if issued_at is None else issued_at(at))
    expected = float(np.nansum(said))
    if expected <= 0.0:
        return ahead
    ratio = min(max(float(window.sum()), 0.0) / expected, settings.solar_nowcast_max_ratio)
    lead_h = np.asarray((index - cutoff) / pd.Timedelta(hours=1), dtype=float)
    fade = np.exp(-np.maximum(lead_h, 0.0) / settings.solar_nowcast_decay_h)
    result: np.ndarray = ahead * (1.0 + fade * (ratio - 1.0))
    return result


def _with_issued(blend: np.ndarray, issued: tuple[np.ndarray, float] | None) -> np.ndarray:
    if issued is None:
        return blend
    values, weight = issued
    mixed = weight * values + (1.0 - weight) * blend
    out: np.ndarray = np.where(np.isnan(values) | np.isnan(blend), blend, mixed)
    return np.where(np.isnan(blend), values, out)


def issued_history(settings: ForecastSettings) -> pd.Timedelta:
    """History :func:`issued_solar_weight` reads: the days it scores and the blend's days
    before the first of them."""
    return pd.Timedelta(days=settings.solar_issued_days + settings.solar_days + 1)


def issued_solar_weight(
    known: pd.Series, solar: SolarForecasts, cutoff: pd.Timestamp, settings: ForecastSettings
) -> float:
    """Weight of issued PV forecasts against the rule blend, from their track record on
    known days: for each of the ``solar_issued_days`` complete UTC days before ``cutoff``,
    the issue usable at the day's start and the rule blend made then (nothing of the day
    known), each against the day's measured PV. The weight that minimises the squared
    error of two unbiased, uncorrelated forecasts, ``mse_blend / (mse_blend +
    mse_issued)``; 0.5 with fewer than ``solar_issued_min_days`` days with daylight to
    score. Reads only ``known`` (the measured PV before ``cutoff``) and issues usable by
    each day's start."""
    end = _utc(cutoff).floor("D")
    err_issued = err_blend = 0.0
    scored = 0
    for back in range(settings.solar_issued_days, 0, -1):
        start = end - back * DAY
        index = pd.date_range(start, periods=96, freq=STEP)
        truth = _lookup_in(known)(utc_ns(index))
        if np.isnan(truth).any() or float(np.nansum(truth)) <= 0.0:
            continue
        before = known[known.index < start]
        blend = _forecast_solar(before, index, start, settings)
        issued = np.asarray(solar.at(start, index), dtype=float)
        if np.isnan(blend).any() or np.isnan(issued).any():
            continue
        err_blend += float(np.square(blend - truth).sum())
        err_issued += float(np.square(issued - truth).sum())
        scored += 1
    if scored < settings.solar_issued_min_days or err_blend + err_issued <= 0.0:
        return 0.5
    return err_blend / (err_blend + err_issued)


def nowcast_solar(
    recent: pd.Series,
    blend: np.ndarray,
    sky: np.ndarray,
    index: pd.DatetimeIndex,
    cutoff: pd.Timestamp,
    settings: ForecastSettings,
) -> np.ndarray:
    """``blend`` corrected near ``cutoff`` by the clear-sky index measured just before it
    (see :func:`forecast_solar`); ``sky`` is the clear-sky GHI on ``index``."""
    window = recent[recent.index >= cutoff - pd.Timedelta(hours=settings.solar_nowcast_h)]
    if len(window) == 0:
        return blend
    sky_window = clear_sky_ghi(pd.DatetimeIndex(window.index), settings)
    if float(sky_window.mean()) < settings.solar_nowcast_min_sky:
        return blend
    index_now = float(window.sum()) / float(sky_window.sum())
    lead_h = np.asarray((index - cutoff) / pd.Timedelta(hours=1), dtype=float)
    weight = np.exp(-np.maximum(lead_h, 0.0) / settings.solar_nowcast_decay_h)
    result: np.ndarray = weight * sky * index_now + (1.0 - weight) * blend
    return result


def forecast_load(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Household load [W per MWh/a] from the BDEW H25 structure, without the profile table.

    H25 is a value per (month, day type, wall-clock quarter hour) times the dynamisation
    factor F(day of year). So each target day takes the latest known complete day of the
    same day type (working day, Saturday, Sunday/holiday in Saxony), preferably of the
    same month, rescaled by F(target) / F(source): exact when the month matches. A day with
    no known day of its type (a site's first days) takes the H25 profile itself.
    """
    values = by_day_type(known, index, dynamise=True)
    missing = np.isnan(values)
    if missing.any():
        where = pd.DatetimeIndex(index[missing])
        holidays = {d for y in set(where.year) for d in saxony_holidays(y)}
        values[missing] = household_load(where, _h25(), holidays).to_numpy()
    return values


@lru_cache(maxsize=1)
def _h25() -> pd.DataFrame:
    """The BDEW H25 household profile table (data/README.md), W per MWh/a."""
    return read_bdew25(DATA_DIR / "slp" / "h25.csv")


def forecast_it_load(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Data-centre IT load ratio [1]: the latest known complete day of the same day type
    (office hours on working days, not on Saturdays, Sundays and Saxon holidays), so a
    Monday after a holiday Monday is not forecast as a holiday; weekly persistence where
    no such day is known."""
    values = by_day_type(known, index, dynamise=False)
    weekly = shift_persistence(known, index, cutoff, WEEK)
    return np.where(np.isnan(values), weekly, values)


def by_day_type(known: pd.Series, index: pd.DatetimeIndex, dynamise: bool) -> np.ndarray:
    """Each target day from the latest complete known day of its day type (same month
    first), by local wall-clock quarter hour; scaled by the BDEW dynamisation factor
    F(target) / F(source) if ``dynamise``. NaN for days without such a known day."""
    table = day_table(known)
    target_days, slots = local_calendar(index)
    values = np.full(len(index), np.nan)
    for day in np.unique(target_days):
        source = _same_day_type(table, day)
        if source < 0:
            continue
        scale = _dynamisation(day) / _dynamisation(table.days[source]) if dynamise else 1.0
        here = target_days == day
        rows = np.full(int(here.sum()), source)
        values[here] = table.lookup(rows, slots[here]) * scale
    return values


def forecast_heat(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Heat demand [W per MWh/a]: the last complete known day's wall-clock profile.

    The SigLinDe profile is a function of the smoothed daily temperature (and weekday
    factors, all 1 for multi-family houses), so repeating yesterday's profile is the
    profile under a persistence forecast of temperature.
    """
    table = day_table(known)
    last = _last_complete(table)
    if last < 0:
        return np.full(len(index), np.nan)
    return table.lookup(np.full(len(index), last), local_slots(index))


def forecast_heat_from_temperature(
    known_heat: pd.Series,
    known_temp: pd.Series,
    temp_forecast: np.ndarray,
    index: pd.DatetimeIndex,
    cutoff: pd.Timestamp,
    settings: ForecastSettings,
) -> np.ndarray:
    """Heat demand [W per MWh/a] from a temperature forecast through the SigLinDe model.

    The model the world's heat demand is made with (:mod:`vpp.data.heat`, MFH, building
    class 2, coefficients in ``data/shlp/``): per local day the mean temperature (measured
    before ``cutoff``, ``temp_forecast`` on ``index`` after it), smoothed over the three days
    before (``theta``), the daily factor ``h(theta)`` spread over the day by the hour
    factors of its temperature band. Its level is set by what the recent history says: the
    measured heat of the ``heat_scale_days`` latest complete known days over the model's
    heat of the same days (from their measured temperature), so a bias of the model or of
    the network (noise, solar gains) is corrected by recent days; with no complete day yet
    (a site's first day) :data:`COLD_START_HEAT_SCALE`, the days before the first temperature
    taking its day's mean. NaN where a day has no temperature (the caller falls back).
    """
    coef = _shlp()
    index = pd.DatetimeIndex(index)
    if len(index) == 0:
        return np.zeros(0)
    first_day = (
        cutoff.tz_convert(LOCAL_TZ).normalize() - pd.Timedelta(days=settings.heat_scale_days + 4)
    ).normalize()
    last = index[-1].tz_convert(LOCAL_TZ)
    end = (last.normalize() + pd.Timedelta(hours=26)).normalize()
    grid_ns, codes, n_days, hours, weekday = _local_grid(_ns(first_day), _ns(end))
    temp = values_at(known_temp, grid_ns)
    ahead = grid_ns >= _ns(cutoff)
    temp[ahead] = np.nan
    pos = np.searchsorted(utc_ns(index), grid_ns)
    on_index = (pos < len(index)) & ahead
    on_index[on_index] = utc_ns(index)[pos[on_index]] == grid_ns[on_index]
    temp[on_index] = np.asarray(temp_forecast, dtype=float)[pos[on_index]]
    model, theta = _siglinde(temp, codes, n_days, hours, weekday, coef)
    # Scale: the latest complete known days of measured heat.
    heat = values_at(known_heat, grid_ns)
    before = grid_ns < _ns(cutoff)
    known_q = np.bincount(codes, weights=(before & ~np.isnan(heat)).astype(float),
                          minlength=n_days)  # fmt: skip
    complete = known_q == np.bincount(codes, minlength=n_days)
    usable = np.flatnonzero(complete & ~np.isnan(theta))[-settings.heat_scale_days :]
    if len(usable) == 0:
        scale = COLD_START_HEAT_SCALE  # no complete day yet (a site's first day)
    else:
        rows = np.isin(codes, usable)
        modelled = float(model[rows].sum())
        if not modelled > 0:
            return np.full(len(index), np.nan)
        scale = float(heat[rows].sum()) / modelled
    out = np.full(len(index), np.nan)
    target = np.searchsorted(grid_ns, utc_ns(index))
    inside = target < len(grid_ns)
    out[inside] = scale * model[target[inside]]
    if settings.heat_nowcast_h > 0 and settings.heat_nowcast_decay_h > 0:
        # The latest measured departure from the scaled model (today's quarter hours are
        # modelled with the day's mean temperature, the forecast's part included, as the
        # forecast ahead is: so the first quarter hours start from the measured heat),
        # fading with the lead.
        recent = before & (grid_ns >= _ns(cutoff) - int(settings.heat_nowcast_h * 3600e9))
        recent &= ~np.isnan(heat) & ~np.isnan(model)
        if recent.any():
            departure = float(np.mean(heat[recent] - scale * model[recent]))
            lead_h = (utc_ns(index) - _ns(cutoff)) / 3600e9
            out += departure * np.exp(-np.maximum(lead_h, 0.0) / settings.heat_nowcast_decay_h)
    return out


def _siglinde(
    temp: np.ndarray,
    codes: np.ndarray,
    n_days: int,
    hours: np.ndarray,
    weekday: np.ndarray,
    coef: ShlpCoefficients,
) -> tuple[np.ndarray, np.ndarray]:
    """The SigLinDe heat per quarter hour [W per MWh/a] from quarter-hour temperatures (NaN
    where unknown; a day's mean over the known ones), and each day's ``theta``."""
    have = ~np.isnan(temp)
    counts = np.bincount(codes, weights=have.astype(float), minlength=n_days)
    sums = np.bincount(codes, weights=np.where(have, temp, 0.0), minlength=n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    # Days before the first known temperature (a site's first days) take its day's mean, so
    # the smoothing over the days before has something to work with.
    known_days = np.flatnonzero(~np.isnan(daily))
    if len(known_days) and known_days[0] > 0:
        daily[: known_days[0]] = daily[known_days[0]]
    theta = geometric_temperature(daily, wrap=False)
    daily_weight, share = day_shape(theta, weekday, codes, hours, coef)
    return daily_weight[codes] * share / STEP_H, theta


@lru_cache(maxsize=64)
def _local_grid(
    start_ns: int, end_ns: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """Quarter hours ``[start, end)`` (ns, UTC; local midnights): their instants, local day
    code (0..n-1), the number of days, local hour, and each day's weekday (Monday 0).
    Cached: the plans of a day ask for the same span again."""
    grid = pd.date_range(
        pd.Timestamp(start_ns, tz="UTC"), pd.Timestamp(end_ns, tz="UTC"), freq=STEP,
        inclusive="left",
    )  # fmt: skip
    local = grid.tz_convert(LOCAL_TZ)
    codes, days = pd.factorize(local.normalize(), sort=True)
    out = (
        utc_ns(grid), codes, len(days), local.hour.to_numpy(),
        pd.DatetimeIndex(days).day_of_week.to_numpy(),
    )  # fmt: skip
    for array in (out[0], out[1], out[3], out[4]):
        array.flags.writeable = False
    return out


@lru_cache(maxsize=1)
def _shlp() -> ShlpCoefficients:
    """The SigLinDe coefficients the shipped heat demand is made with (data/README.md)."""
    return read_shlp(DATA_DIR / "shlp")


def forecast_daily(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Persistence of the last 24 h: the latest known value at the same UTC time of day
    (temperature, CO2 intensity, waste-heat temperature)."""
    return shift_persistence(known, index, cutoff, DAY)


def forecast_weekly(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Persistence of the same quarter hour of the last known week (data-centre IT load,
    which follows office hours and weekdays)."""
    return shift_persistence(known, index, cutoff, WEEK)


# --- helpers --------------------------------------------------------------------------------


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
    lag0 = np.floor((targets - _ns(cutoff)) / period_ns).astype(int) + 1
    first = np.maximum(lag0, 1)
    found = np.zeros(len(index), dtype=int)
    total = np.zeros(len(index))
    lookup = _lookup_in(known)
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
    return _lookup_in(known)(instants_ns)


def _lookup_in(known: pd.Series) -> Callable[[np.ndarray], np.ndarray]:
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


def _ns(when: pd.Timestamp) -> int:
    return int(pd.Timestamp(when).as_unit("ns").value)


def clear_sky_ghi(index: pd.DatetimeIndex, settings: ForecastSettings) -> np.ndarray:
    """Clear-sky global horizontal irradiance [W/m^2], mean sun of each quarter hour.

    Every forecast asks for the same days again, so quarter hours on the UTC grid come from
    a table per UTC day computed once (:func:`_clear_sky_day`; pvlib's solar position is
    computed element by element, so the values are the same bits either way)."""
    if len(index) == 0:
        return np.array([])
    lat, lon = settings.latitude_deg, settings.longitude_deg
    grid = quarter_grid(index)
    if grid is None:
        return _clear_sky(pd.DatetimeIndex(index), lat, lon)
    days, row, pos = grid
    out: np.ndarray = np.stack([_clear_sky_day(d, lat, lon) for d in days])[row, pos]
    return out


@lru_cache(maxsize=2048)
def _clear_sky_day(day: int, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """:func:`clear_sky_ghi` of the 96 quarter hours of UTC day ``day`` (days since 1970)."""
    start = pd.Timestamp(day * DAY_NS, unit="ns", tz="UTC").as_unit("us")
    ghi = _clear_sky(pd.date_range(start, periods=96, freq=STEP), latitude_deg, longitude_deg)
    ghi.flags.writeable = False
    return ghi


def _clear_sky(index: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    middle = index + STEP / 2
    sun = pvlib.solarposition.get_solarposition(middle, latitude_deg, longitude_deg)
    ghi = np.asarray(pvlib.clearsky.haurwitz(sun["apparent_zenith"])["ghi"], dtype=float)
    filled: np.ndarray = np.nan_to_num(ghi)
    return filled


def _last_complete(table: DayTable) -> int:
    rows = np.flatnonzero(table.complete)
    return int(rows[-1]) if len(rows) else -1


@lru_cache(maxsize=4096)
def _day_type(day: np.datetime64) -> str:
    """SLP day type of a local calendar day (cached: every forecast asks for the same few
    weeks of days again)."""
    year = pd.Timestamp(day).year
    types = slp_day_types(pd.Series([pd.Timestamp(day)]), set(saxony_holidays(year)))
    return str(types[0])


def _same_day_type(table: DayTable, day: np.datetime64) -> int:
    """Row of the latest complete day before ``day`` of its day type, same month first."""
    wanted = _day_type(day)
    month = pd.Timestamp(day).month
    candidates = [
        r
        for r in np.flatnonzero(table.complete)[::-1]
        if table.days[r] < day and _day_type(table.days[r]) == wanted
    ]
    same_month = [r for r in candidates if pd.Timestamp(table.days[r]).month == month]
    chosen = same_month or candidates
    return int(chosen[0]) if chosen else -1


def _dynamisation(day: np.datetime64) -> float:
    return float(bdew_dynamisation(np.array([pd.Timestamp(day).day_of_year]))[0])


def _clip(column: str, values: np.ndarray) -> np.ndarray:
    spec = COLUMNS[column]
    clipped: np.ndarray = np.clip(values, spec.min, spec.max)
    return clipped


def _utc(when: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise ValueError(f"forecast time {ts} has no time zone (UTC expected)")
    return ts.tz_convert("UTC")


def _utc_index(history: pd.DataFrame) -> pd.DataFrame:
    index = history.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("forecast history needs a timezone-aware DatetimeIndex (UTC)")
    if str(index.tz) == "UTC" and index.is_monotonic_increasing and index.is_unique:
        return history  # the usual case: no copy of a year of data per call
    out = history.copy()
    out.index = index.tz_convert("UTC")
    return out[~out.index.duplicated(keep="first")].sort_index()


Forecaster = Callable[[pd.Series, pd.DatetimeIndex, pd.Timestamp, ForecastSettings], np.ndarray]

#: Which estimate each schema column gets.
_FORECASTERS: dict[str, Forecaster] = {
    "price_eur_per_mwh": forecast_price,
    **{
        column: partial(_forecast_solar, cold_start_share=share)
        for column, share in COLD_START_SKY_SHARE.items()
    },
    "load_w_per_mwh_a": forecast_load,
    "heat_w_per_mwh_a": forecast_heat,
    "outdoor_temp_c": forecast_daily,
    "co2_g_per_kwh": forecast_daily,
    "waste_heat_temp_c": forecast_daily,
    "it_load_ratio": forecast_it_load,
}

__all__ = [
    "COLD_START_HEAT_SCALE",
    "COLD_START_SKY_SHARE",
    "DEFAULT_HORIZON",
    "PRICE_PUBLICATION",
    "PV_COLUMN",
    "ForecastSettings",
    "SolarForecasts",
    "TemperatureForecasts",
    "cutoffs",
    "forecast",
    "forecast_daily",
    "forecast_heat",
    "forecast_heat_from_temperature",
    "forecast_index",
    "forecast_it_load",
    "forecast_load",
    "forecast_price",
    "forecast_solar",
    "forecast_weekly",
    "issued_history",
    "issued_solar_weight",
    "known_series",
    "perfect",
    "price_known_until",
    "shift_persistence",
]
