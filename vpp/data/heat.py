"""BDEW standard heat-load profile (SigLinDe) from outdoor temperature.

The method of the BDEW/VKU/GEODE guideline "Abwicklung von Standardlastprofilen Gas",
as demandlib implements it in ``demandlib.bdew.heat_building.HeatBuilding`` (MIT; the
coefficient files ``shlp_*.csv`` come from there). Reimplemented here on the quarter-hour
grid, per local day:

- daily mean temperature ``T_D``, smoothed over the three days before as a geometric series
  ``theta = (T_D + 0.5 T_D-1 + 0.25 T_D-2 + 0.125 T_D-3) / 1.875`` (building inertia);
- daily factor ``h(theta) = A / (1 + (B / (theta - 40))^C) + D`` (sigmoid; ``D`` is hot
  water), times the weekday factor ``F``;
- customer value ``KW = 1 / sum_days(h F)``, so the year's demand is exactly 1;
- the day's energy is spread over its hours by the hour factors of the day's temperature
  interval (5 K bands of ``ceil(theta)``), renormalised over the hours the local day has
  (23 or 25 on the DST change days; demandlib assumes 24).

The first days of the year look back into the end of the same (typical) year, as demandlib
does with ``np.roll``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from vpp.data.schema import STEP_H
from vpp.data.timegrid import LOCAL_TZ, local_calendar

_THETA_0_C = 40.0
_WH_PER_MWH = 1e6


@dataclass(frozen=True)
class ShlpCoefficients:
    """SigLinDe coefficients of one profile type, building class and wind class."""

    a: float
    b: float
    c: float
    d: float
    #: Hour factors: 24 local hours (row 0 = 00:00-01:00) x 10 temperature intervals.
    hour_factors: np.ndarray
    #: Weekday factors, Monday first.
    weekday_factors: np.ndarray


def read_shlp(
    load_dir: str | Path,
    shlp_type: str = "MFH",
    building_class: int = 2,
    wind_class: int = 0,
    hot_water: bool = True,
) -> ShlpCoefficients:
    """Read the coefficients from demandlib's ``shlp_sigmoid_factors.csv``,
    ``shlp_hour_factors.csv`` and ``shlp_weekday_factors.csv`` in ``load_dir``.

    ``building_class`` 1..11 for the residential types EFH/MFH (0 for the others);
    ``wind_class`` 1 for windy sites; ``hot_water`` keeps the constant ``D`` term.
    """
    load_dir = Path(load_dir)
    sig = pd.read_csv(load_dir / "shlp_sigmoid_factors.csv", index_col=0)
    row = sig[(sig.shlp_type == shlp_type) & (sig.building_class == building_class)
              & (sig.wind_impact == wind_class)]  # fmt: skip
    if len(row) != 1:
        raise KeyError(f"no SigLinDe coefficients for {shlp_type} class {building_class}")
    hours = pd.read_csv(load_dir / "shlp_hour_factors.csv", index_col=0)
    hours = hours[(hours.shlp_type == shlp_type) & (hours.building_class == building_class)]
    hours = hours.sort_values("hour_of_day")
    if len(hours) != 24:
        # Non-residential types have one set per weekday; only residential ones are needed.
        raise KeyError(f"expected 24 hour-factor rows for {shlp_type}, got {len(hours)}")
    weekdays = pd.read_csv(load_dir / "shlp_weekday_factors.csv", index_col=0)
    week = weekdays[weekdays.shlp_type == shlp_type]["wochentagsfaktor"].to_numpy(dtype=float)
    first = row.iloc[0]
    return ShlpCoefficients(
        a=float(first.parameter_a), b=float(first.parameter_b), c=float(first.parameter_c),
        d=float(first.parameter_d) if hot_water else 0.0,
        hour_factors=hours.filter(like="temp_intervall").to_numpy(dtype=float),
        weekday_factors=week,
    )  # fmt: skip


def geometric_temperature(daily_mean_c: np.ndarray, wrap: bool = True) -> np.ndarray:
    """Smoothed daily temperature ``theta`` [degC] from daily means [degC]; the first three
    days take the last ones' means (``wrap``, a whole year) or are NaN."""
    t = np.asarray(daily_mean_c, dtype=float)
    lagged = t + 0.5 * np.roll(t, 1) + 0.25 * np.roll(t, 2) + 0.125 * np.roll(t, 3)
    theta: np.ndarray = lagged / 1.875
    if not wrap:
        theta[:3] = np.nan
    return theta


def sigmoid_h(theta_c: np.ndarray, coef: ShlpCoefficients) -> np.ndarray:
    """SigLinDe daily factor ``h(theta)`` [1] for smoothed temperature ``theta`` [degC]."""
    theta = np.asarray(theta_c, dtype=float)
    return coef.a / (1.0 + (coef.b / (theta - _THETA_0_C)) ** coef.c) + coef.d


def temperature_interval(theta_c: np.ndarray) -> np.ndarray:
    """BDEW temperature interval 1..10 (5 K bands of ``ceil(theta)``; <= -15 -> 1,
    -14..-10 -> 2, ..., 21..25 -> 9, >= 26 -> 10)."""
    rounded = np.ceil(np.asarray(theta_c, dtype=float))
    return np.asarray(np.clip(np.ceil((rounded + 15.0) / 5.0) + 1.0, 1, 10), dtype=int)


def day_shape(
    theta_c: np.ndarray,
    weekday: np.ndarray,
    day_codes: np.ndarray,
    hours: np.ndarray,
    coef: ShlpCoefficients,
) -> tuple[np.ndarray, np.ndarray]:
    """The SigLinDe model's parts: each day's weight ``h(theta) x`` its weekday factor, and
    each quarter hour's share of its day (the hour factors of the day's temperature interval
    over their day's sum). ``day_codes`` (0..days-1) and ``hours`` (local) per quarter hour."""
    daily_weight = sigmoid_h(theta_c, coef) * coef.weekday_factors[weekday]
    interval = temperature_interval(np.nan_to_num(theta_c))[day_codes]
    hour_weight = coef.hour_factors[hours, interval - 1]
    day_total = np.bincount(day_codes, weights=hour_weight, minlength=len(daily_weight))
    return daily_weight, hour_weight / day_total[day_codes]


def heat_profile(
    temp_c: pd.Series,
    coef: ShlpCoefficients,
    holidays: set[date] | None = None,
    tz: str = LOCAL_TZ,
) -> pd.Series:
    """Heat demand per MWh of demand over the series' span [W per MWh/a].

    Parameters
    ----------
    temp_c : Series
        Outdoor temperature [degC] on a UTC quarter-hour index covering whole local days
        (normally a whole local year, so that the result integrates to 1 MWh).
    coef : ShlpCoefficients
        Profile coefficients, see :func:`read_shlp`.
    holidays : set of date, optional
        Days that take Sunday's weekday factor.
    """
    cal = local_calendar(pd.DatetimeIndex(temp_c.index), tz)
    day_codes, days = pd.factorize(cal["date"], sort=True)
    daily_mean = np.bincount(day_codes, weights=temp_c.to_numpy(dtype=float)) / np.bincount(
        day_codes
    )
    theta = geometric_temperature(daily_mean)
    weekday = pd.DatetimeIndex(days).day_of_week.to_numpy().copy()
    if holidays:
        weekday[np.isin(pd.DatetimeIndex(days).date, np.array(sorted(holidays)))] = 6
    daily_weight, share = day_shape(theta, weekday, day_codes, cal["hour"].to_numpy(), coef)
    daily_wh = _WH_PER_MWH * daily_weight / daily_weight.sum()
    energy_wh = daily_wh[day_codes] * share
    return pd.Series(energy_wh / STEP_H, index=temp_c.index, name="heat_w_per_mwh_a")
