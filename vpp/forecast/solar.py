"""PV per kWp (and GHI, DHI): persistence and clear sky blended, issued PV forecasts weighed
against that blend by their track record, and the nowcast (see :func:`forecast_solar`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
import pvlib  # type: ignore[import-untyped]

from vpp.data.schema import STEP
from vpp.forecast.common import (
    DAY,
    ForecastSettings,
    SolarForecasts,
    lookup_in,
    shift_persistence,
)
from vpp.sources.base import to_utc
from vpp.sources.daymap import DAY_NS, quarter_grid, utc_ns


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
    return blend_solar(known, index, cutoff, settings)


def blend_solar(
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
    end = to_utc(cutoff).floor("D")
    err_issued = err_blend = 0.0
    scored = 0
    for back in range(settings.solar_issued_days, 0, -1):
        start = end - back * DAY
        index = pd.date_range(start, periods=96, freq=STEP)
        truth = lookup_in(known)(utc_ns(index))
        if np.isnan(truth).any() or float(np.nansum(truth)) <= 0.0:
            continue
        before = known[known.index < start]
        blend = blend_solar(before, index, start, settings)
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
