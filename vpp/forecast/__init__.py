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

The rules live in three modules: :mod:`vpp.forecast.common` (settings, what is known,
persistence), :mod:`vpp.forecast.solar` (PV, GHI, DHI) and :mod:`vpp.forecast.demand` (load,
IT load, heat).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import numpy as np
import pandas as pd

from vpp.data.schema import SCHEMA, STEP
from vpp.forecast.common import (
    COLD_START_HEAT_SCALE,
    COLD_START_SKY_SHARE,
    DAY,
    DEFAULT_HORIZON,
    PRICE_PUBLICATION,
    PV_COLUMN,
    WEEK,
    Forecaster,
    ForecastSettings,
    Mode,
    SolarForecasts,
    TemperatureForecasts,
    clip,
    cutoffs,
    forecast_index,
    known_series,
    last_complete,
    price_known_until,
    shift_persistence,
    utc_index,
    values_at,
)
from vpp.forecast.demand import (
    forecast_heat,
    forecast_heat_from_temperature,
    forecast_it_load,
    forecast_load,
    heat_error_history,
    heat_level_error,
)
from vpp.forecast.solar import (
    blend_solar,
    clear_sky_ghi,
    forecast_solar,
    issued_history,
    issued_solar_weight,
)
from vpp.sources.base import to_utc
from vpp.sources.daymap import day_table, local_slots, utc_ns


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
    data = utc_index(history)
    if mode == "perfect":
        return perfect(data, index, columns)
    if mode != "asof":
        raise ValueError(f"unknown forecast mode {mode!r} (asof or perfect)")
    out = {}
    cuts = cutoffs(columns, now, settings)
    for column, cutoff in cuts.items():
        known = known_series(data[column], cutoff)
        if solar is not None and column == PV_COLUMN:
            issued = np.asarray(solar.at(to_utc(now), index), dtype=float)
            if len(issued) != len(index):
                raise ValueError(f"PV forecast: {len(issued)} values for {len(index)} steps")
            if solar_weight is None:
                solar_weight = issued_solar_weight(known, solar, cutoff, settings)
            estimate = blend_solar(
                known, index, cutoff, settings, COLD_START_SKY_SHARE[column],
                issued=(issued, solar_weight),
                issued_at=lambda at: np.asarray(solar.at(to_utc(now), at), dtype=float),
            )  # fmt: skip
        else:
            estimate = _FORECASTERS[column](known, index, cutoff, settings)
        out[column] = clip(column, estimate)
    if mode == "asof" and {"co2_g_per_kwh", "price_eur_per_mwh"} <= out.keys():
        cutoff = cuts["co2_g_per_kwh"]
        line = forecast_co2(
            known_series(data["co2_g_per_kwh"], cutoff),
            known_series(data["price_eur_per_mwh"], cuts["price_eur_per_mwh"]),
            out["price_eur_per_mwh"],
            index,
            cutoff,
            settings,
        )
        out["co2_g_per_kwh"] = clip(
            "co2_g_per_kwh", np.where(np.isnan(line), out["co2_g_per_kwh"], line)
        )
    if weather is not None and "outdoor_temp_c" in out:
        issued = np.asarray(weather.at(to_utc(now), index), dtype=float)
        if len(issued) != len(index):
            raise ValueError(f"weather forecast: {len(issued)} values for {len(index)} steps")
        temp = np.where(np.isnan(issued), out["outdoor_temp_c"], issued)
        out["outdoor_temp_c"] = clip("outdoor_temp_c", temp)
        if "heat_w_per_mwh_a" in out:
            cutoff = to_utc(now).floor(STEP)
            heat = forecast_heat_from_temperature(
                known_series(data["heat_w_per_mwh_a"], cutoff),
                known_series(data["outdoor_temp_c"], cutoff),
                out["outdoor_temp_c"],
                index,
                cutoff,
                settings,
            )
            rules = out["heat_w_per_mwh_a"]
            out["heat_w_per_mwh_a"] = clip(
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


def forecast_price(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Published prices [EUR/MWh] where known; beyond them the same local wall-clock
    quarter hour of the last complete published day (day-ahead persistence)."""
    values = values_at(known, utc_ns(index))
    table = day_table(known)
    last = last_complete(table)
    if last >= 0:
        todo = np.isnan(values)
        rows = np.full(int(todo.sum()), last)
        values[todo] = table.lookup(rows, local_slots(index[todo]))
    return values


def forecast_daily(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Persistence of the last 24 h: the latest known value at the same UTC time of day
    (temperature, waste-heat temperature; the CO2 intensity where :func:`forecast_co2`
    has no slope)."""
    return shift_persistence(known, index, cutoff, DAY)


def forecast_co2(
    known: pd.Series,
    known_price: pd.Series,
    price: np.ndarray,
    index: pd.DatetimeIndex,
    cutoff: pd.Timestamp,
    settings: ForecastSettings,
) -> np.ndarray:
    """The grid's CO2 intensity [g/kWh] on ``index``: yesterday's intensity (daily
    persistence, :func:`forecast_daily`) moved by the change of the day-ahead price from
    yesterday to the forecast ``price``, times the slope of the least-squares line of the
    known intensity over the known price in the ``co2_fit_days`` days before ``cutoff``.

    Both follow the residual load (wind and sun push coal and gas out of the merit order
    and the price down), so the published price tells how far tomorrow's intensity departs
    from today's; yesterday's gives the shape of the day. NaN where the slope cannot be
    made (fewer than ``co2_fit_min_days`` of pairs, a price without spread) or yesterday is
    not known: the caller keeps daily persistence there."""
    out = np.full(len(index), np.nan)
    start = cutoff - pd.Timedelta(days=settings.co2_fit_days)
    co2 = known[(known.index >= start) & (known.index < cutoff)]
    paid = values_at(known_price, utc_ns(pd.DatetimeIndex(co2.index)))
    ok = np.isfinite(paid) & np.isfinite(co2.to_numpy(dtype=float))
    if ok.sum() < settings.co2_fit_min_days * (DAY // STEP) or np.std(paid[ok]) < 1e-6:
        return out
    slope = float(np.polyfit(paid[ok], co2.to_numpy(dtype=float)[ok], 1)[0])
    then = shift_persistence(known, index, cutoff, DAY)
    paid_then = shift_persistence(known_price[known_price.index < cutoff], index, cutoff, DAY)
    moved: np.ndarray = then + slope * (np.asarray(price, dtype=float) - paid_then)
    return moved


def forecast_weekly(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Persistence of the same quarter hour of the last known week (data-centre IT load,
    which follows office hours and weekdays)."""
    return shift_persistence(known, index, cutoff, WEEK)


#: Which estimate each schema column gets.
_FORECASTERS: dict[str, Forecaster] = {
    "price_eur_per_mwh": forecast_price,
    **{
        column: partial(blend_solar, cold_start_share=share)
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
    "Mode",
    "SolarForecasts",
    "TemperatureForecasts",
    "clear_sky_ghi",
    "cutoffs",
    "forecast",
    "forecast_co2",
    "forecast_daily",
    "forecast_heat",
    "forecast_heat_from_temperature",
    "forecast_index",
    "forecast_it_load",
    "forecast_load",
    "forecast_price",
    "forecast_solar",
    "forecast_weekly",
    "heat_error_history",
    "heat_level_error",
    "issued_history",
    "issued_solar_weight",
    "known_series",
    "perfect",
    "price_known_until",
    "shift_persistence",
    "values_at",
]
