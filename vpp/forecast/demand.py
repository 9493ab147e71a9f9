"""Demand: household load by BDEW day type, the data centre's IT load, and heat demand, by
persistence or from a temperature forecast through the SigLinDe model."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from vpp.data import DATA_DIR
from vpp.data.heat import ShlpCoefficients, day_shape, geometric_temperature, read_shlp
from vpp.data.profiles import (
    bdew_dynamisation,
    household_load,
    read_bdew25,
    saxony_holidays,
    saxony_holidays_in,
    slp_day_types,
)
from vpp.data.schema import STEP, STEP_H
from vpp.data.timegrid import LOCAL_TZ
from vpp.forecast.common import (
    COLD_START_HEAT_SCALE,
    DAY,
    WEEK,
    ForecastSettings,
    last_complete,
    ns,
    shift_persistence,
    values_at,
)
from vpp.sources.daymap import (
    QUARTER_NS,
    DayTable,
    day_table,
    local_calendar,
    local_slots,
    utc_ns,
)


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
        holidays = saxony_holidays_in(where.year)
        values[missing] = household_load(where, _h25(), holidays).to_numpy()
    return values


@lru_cache(maxsize=1)
def _h25() -> pd.DataFrame:
    """The BDEW H25 household profile table (data/README.md), W per MWh/a."""
    return read_bdew25(DATA_DIR / "slp" / "h25.csv")


def forecast_it_load(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """Data-centre IT load ratio [1]: the usual day plus the latest departure from it.

    The usual day is, per local wall-clock quarter hour, the median over the latest
    ``it_load_days`` complete known days of the target day's kind: working days (office
    hours), or days without them (Saturdays, Sundays and Saxon holidays, pooled), so a
    Monday after a holiday Monday is not forecast as a holiday and one day's batch job or
    noise is not repeated. The latest known departure from the usual day is carried ahead,
    fading by the lag-one autocorrelation of the departures over the ``it_departure_days``
    known days before the cutoff (a job under way, a level drifting off, persist for hours;
    noise does not). Weekly persistence where no day of the kind is known.
    """
    table = day_table(known)
    values = _usual_day(table, index, settings.it_load_days)
    weekly = shift_persistence(known, index, cutoff, WEEK)
    values = np.where(np.isnan(values), weekly, values)
    inside = np.asarray(known.index >= cutoff - settings.it_departure_days * DAY)
    if settings.it_departure_days > 0 and inside.any():
        recent = pd.DatetimeIndex(known.index[inside])
        departures = known.to_numpy(float)[inside] - _usual_day(
            table, recent, settings.it_load_days
        )
        fade = _persistence(departures)
        if fade > 0 and not np.isnan(departures[-1]):
            lead = (utc_ns(index) - utc_ns(recent[-1:])[0]) / QUARTER_NS
            values = values + departures[-1] * fade ** np.maximum(lead, 0.0)
    return values


def _usual_day(table: DayTable, index: pd.DatetimeIndex, days: int) -> np.ndarray:
    """Per instant of ``index`` the median, at its wall-clock slot, of the latest ``days``
    complete days of ``table`` before its day that are of its kind (working day or not);
    NaN for days without one."""
    target_days, slots = local_calendar(index)
    values = np.full(len(index), np.nan)
    complete = np.flatnonzero(table.complete)[::-1]
    working = np.array([day_type(d) == "WT" for d in table.days], dtype=bool)
    for day in np.unique(target_days):
        wanted = day_type(day) == "WT"
        rows = [r for r in complete if table.days[r] < day and working[r] == wanted][:days]
        if not rows:
            continue
        here = target_days == day
        values[here] = np.median(table.values[np.array(rows)][:, slots[here]], axis=0)
    return values


def _persistence(departures: np.ndarray) -> float:
    """The lag-one autocorrelation of a series of departures (NaN gaps left out), in
    [0, 0.995]; 0 with fewer than eight pairs or no spread."""
    pairs = ~np.isnan(departures[:-1]) & ~np.isnan(departures[1:])
    if pairs.sum() < 8:
        return 0.0
    a, b = departures[:-1][pairs], departures[1:][pairs]
    spread = float(np.dot(a, a))
    if spread <= 1e-12:
        return 0.0
    return float(np.clip(np.dot(a, b) / spread, 0.0, 0.995))


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
    last = last_complete(table)
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
    grid_ns, codes, n_days, hours, weekday = _local_grid(ns(first_day), ns(end))
    temp = values_at(known_temp, grid_ns)
    ahead = grid_ns >= ns(cutoff)
    temp[ahead] = np.nan
    pos = np.searchsorted(utc_ns(index), grid_ns)
    on_index = (pos < len(index)) & ahead
    on_index[on_index] = utc_ns(index)[pos[on_index]] == grid_ns[on_index]
    temp[on_index] = np.asarray(temp_forecast, dtype=float)[pos[on_index]]
    model, theta = _siglinde(temp, codes, n_days, hours, weekday, coef)
    # Scale: the latest complete known days of measured heat.
    heat = values_at(known_heat, grid_ns)
    before = grid_ns < ns(cutoff)
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
        recent = before & (grid_ns >= ns(cutoff) - int(settings.heat_nowcast_h * 3600e9))
        recent &= ~np.isnan(heat) & ~np.isnan(model)
        if recent.any():
            departure = float(np.mean(heat[recent] - scale * model[recent]))
            lead_h = (utc_ns(index) - ns(cutoff)) / 3600e9
            out += departure * np.exp(-np.maximum(lead_h, 0.0) / settings.heat_nowcast_decay_h)
    return out


def heat_error_history(settings: ForecastSettings) -> pd.Timedelta:
    """History :func:`heat_level_error` reads: the days it scores, the days that level the
    first of them, and four days before those (the model's temperature is smoothed over the
    days before; one of them for the local day's offset)."""
    return pd.Timedelta(days=settings.heat_error_days + settings.heat_scale_days + 4)


def heat_level_error(
    known_heat: pd.Series, known_temp: pd.Series, cutoff: pd.Timestamp, settings: ForecastSettings
) -> float:
    """The heat forecast's level error: the mean relative error, over the last
    ``heat_error_days`` complete known days before ``cutoff``, of a day's measured heat
    against the SigLinDe model of its measured temperature levelled as
    :func:`forecast_heat_from_temperature` levels it (measured over modelled heat of the
    ``heat_scale_days`` days before). Only days with their heat and the temperature of
    them and of the three days before known all day count (the model smooths the
    temperature over those). 0 with fewer than ``heat_error_min_days`` such days.

    It is what the network's own departures from the weather model (noise, solar gains, its
    occupants) leave in a day's heat after the recent level is applied; it leaves out the
    temperature forecast's error (the model is fed the measured temperature).
    """
    days = settings.heat_error_days + settings.heat_scale_days
    end = cutoff.tz_convert(LOCAL_TZ).normalize()
    start = (end - pd.Timedelta(days=days + 4)).normalize()
    grid_ns, codes, n_days, hours, weekday = _local_grid(ns(start), ns(end))
    temp = values_at(known_temp, grid_ns)
    heat = values_at(known_heat, grid_ns)
    model, _ = _siglinde(temp, codes, n_days, hours, weekday, _shlp())
    have = ~np.isnan(temp) & ~np.isnan(heat) & ~np.isnan(model)
    quarters = np.bincount(codes, minlength=n_days)
    complete = np.bincount(codes, weights=have.astype(float), minlength=n_days) == quarters
    # The model of a day is the model's only with the measured temperature of the three
    # days its temperature is smoothed over (at a history's start it is not).
    warm = np.bincount(codes, weights=(~np.isnan(temp)).astype(float), minlength=n_days)
    warm = np.convolve(warm == quarters, np.ones(4), mode="full")[:n_days] == 4
    complete &= warm
    heat_d = np.bincount(codes, weights=np.where(have, heat, 0.0), minlength=n_days)
    model_d = np.bincount(codes, weights=np.where(have, model, 0.0), minlength=n_days)
    k = settings.heat_scale_days
    errors = []
    for d in range(max(k, n_days - settings.heat_error_days), n_days):
        before = slice(d - k, d)
        if not (complete[d] and complete[before].all()) or not model_d[before].sum() > 0:
            continue
        expected = model_d[d] * heat_d[before].sum() / model_d[before].sum()
        if expected > 0:
            errors.append(abs(heat_d[d] / expected - 1.0))
    if len(errors) < settings.heat_error_min_days:
        return 0.0
    return float(np.mean(errors))


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


@lru_cache(maxsize=4096)
def day_type(day: np.datetime64) -> str:
    """SLP day type of a local calendar day (cached: every forecast asks for the same few
    weeks of days again)."""
    year = pd.Timestamp(day).year
    types = slp_day_types(pd.Series([pd.Timestamp(day)]), set(saxony_holidays(year)))
    return str(types[0])


def _same_day_type(table: DayTable, day: np.datetime64) -> int:
    """Row of the latest complete day before ``day`` of its day type, same month first."""
    wanted = day_type(day)
    month = pd.Timestamp(day).month
    candidates = [
        r
        for r in np.flatnonzero(table.complete)[::-1]
        if table.days[r] < day and day_type(table.days[r]) == wanted
    ]
    same_month = [r for r in candidates if pd.Timestamp(table.days[r]).month == month]
    chosen = same_month or candidates
    return int(chosen[0]) if chosen else -1


def _dynamisation(day: np.datetime64) -> float:
    return float(bdew_dynamisation(np.array([pd.Timestamp(day).day_of_year]))[0])
