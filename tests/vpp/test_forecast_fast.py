"""The fast paths of the forecasts against what they replace: each helper against the plain
pandas way, and whole forecasts from cold caches against warm ones, for many as-of times
(no peeking either way; see test_forecast.py for the rules themselves)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.data import read_inputs, shipped_inputs
from vpp.forecast import ForecastSettings, clear_sky_ghi, forecast, shift_persistence, values_at
from vpp.forecast.solar import _clear_sky, _clear_sky_day
from vpp.sources import daymap
from vpp.sources.daymap import day_table, local_calendar, utc_ns

Q = pd.Timedelta(minutes=15)
BERLIN = "Europe/Berlin"


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """Spring to the autumn DST change of the shipped 2018 year."""
    return read_inputs(shipped_inputs(2018), "2018-03-15T00:00Z", "2018-11-05T00:00Z")


def pandas_calendar(index: pd.DatetimeIndex, tz: str) -> tuple[np.ndarray, np.ndarray]:
    local = index.tz_convert(tz)
    days = local.tz_localize(None).to_numpy().astype("datetime64[D]")
    return days, np.asarray(local.hour * 4 + local.minute // 15, dtype=int)


instants = st.lists(st.integers(min_value=0, max_value=4 * 24 * 800), min_size=1, max_size=300).map(
    lambda q: pd.Timestamp("2017-06-01", tz="UTC") + pd.to_timedelta(np.sort(q) * 15, unit="min")
)


@settings(max_examples=60, deadline=None)
@given(
    index=instants, tz=st.sampled_from([BERLIN, "America/New_York", "UTC"]), seconds=st.booleans()
)
def test_local_calendar_is_the_pandas_conversion(
    index: pd.DatetimeIndex, tz: str, seconds: bool
) -> None:
    """Quarter hours over two years with both DST changes, any unit, off the grid too."""
    index = index.as_unit("s") if seconds else index
    off_grid = index + pd.Timedelta(seconds=7)
    for idx in (index, off_grid, index.tz_convert(BERLIN)):
        days, slots = local_calendar(idx, tz)
        want_days, want_slots = pandas_calendar(idx, tz)
        np.testing.assert_array_equal(days, want_days)
        np.testing.assert_array_equal(slots, want_slots)
        assert days.dtype == want_days.dtype and slots.dtype == want_slots.dtype


def test_local_calendar_over_a_whole_year_with_its_dst_days() -> None:
    index = pd.date_range("2017-12-31T23:00Z", "2019-01-01T00:00Z", freq="15min")
    for idx in (index, index.as_unit("ns")):
        days, slots = local_calendar(idx, BERLIN)
        want_days, want_slots = pandas_calendar(idx, BERLIN)
        np.testing.assert_array_equal(days, want_days)
        np.testing.assert_array_equal(slots, want_slots)


def test_day_table_keeps_the_first_pass_of_the_autumn_hour(history: pd.DataFrame) -> None:
    series = history["price_eur_per_mwh"]
    table = day_table(series)
    autumn = table.row(np.datetime64("2018-10-28"))
    first_pass = series[pd.Timestamp("2018-10-28T00:00Z") : pd.Timestamp("2018-10-28T00:45Z")]
    np.testing.assert_array_equal(table.values[autumn, 8:12], first_pass.to_numpy())
    spring = table.row(np.datetime64("2018-03-25"))
    assert table.complete[spring] and table.complete[autumn]
    np.testing.assert_array_equal(table.values[spring, 8:12], table.values[spring, 7])


@settings(max_examples=40, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=200 * 96),
    length=st.integers(min_value=0, max_value=40 * 96),
    holes=st.floats(min_value=0.0, max_value=0.5),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_values_at_is_reindex(
    history: pd.DataFrame, start: int, length: int, holes: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    known = history["pv_w_per_kwp"].iloc[start : start + length]
    known = known[rng.random(len(known)) >= holes]
    wanted = pd.DatetimeIndex(history.index[rng.integers(0, len(history), 200)])
    wanted = pd.DatetimeIndex(wanted.append(wanted[:20] + pd.Timedelta(minutes=7)))
    np.testing.assert_array_equal(
        values_at(known, utc_ns(wanted)), known.reindex(wanted).to_numpy(dtype=float)
    )
    shuffled = known.sample(frac=1.0, random_state=seed)  # unsorted: the pandas way
    np.testing.assert_array_equal(
        values_at(shuffled, utc_ns(wanted)), known.reindex(wanted).to_numpy(dtype=float)
    )


def pandas_persistence(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, period: pd.Timedelta,
    count: int, average: bool,
) -> np.ndarray:  # fmt: skip
    """shift_persistence as it was written with reindex."""
    lag0 = np.floor((index - cutoff) / period).astype(int) + 1
    first = np.maximum(np.asarray(lag0), 1)
    found = np.zeros(len(index), dtype=int)
    total = np.zeros(len(index))
    for extra in range(count + 7):
        lagged = index - pd.to_timedelta((first + extra) * period.value, unit="ns")
        value = known.reindex(lagged).to_numpy(dtype=float)
        take = ~np.isnan(value) & (found < count)
        total[take] += value[take]
        found[take] += 1
    divisor = np.maximum(found, 1) if average else 1
    return np.where(found > 0, total / divisor, np.nan)


@settings(max_examples=40, deadline=None)
@given(
    quarter=st.integers(min_value=10 * 96, max_value=200 * 96),
    count=st.integers(min_value=1, max_value=4),
    average=st.booleans(),
    weekly=st.booleans(),
    holes=st.floats(min_value=0.0, max_value=0.9),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_shift_persistence_is_the_reindex_version(
    history: pd.DataFrame, quarter: int, count: int, average: bool, weekly: bool,
    holes: float, seed: int,
) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    cutoff = pd.Timestamp(history.index[quarter])
    known = history["outdoor_temp_c"]
    known = known[(known.index < cutoff) & (rng.random(len(known)) >= holes)]
    index = pd.date_range(cutoff, periods=144, freq="15min")
    period = pd.Timedelta(days=7 if weekly else 1)
    got = shift_persistence(known, index, cutoff, period, count, average)
    want = pandas_persistence(known, index, cutoff, period, count, average)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=30, deadline=None)
@given(index=instants)
def test_clear_sky_from_the_day_tables_is_pvlib_on_the_index(index: pd.DatetimeIndex) -> None:
    s = ForecastSettings()
    np.testing.assert_array_equal(
        clear_sky_ghi(index, s), _clear_sky(index, s.latitude_deg, s.longitude_deg)
    )


def clear_caches() -> None:
    _clear_sky_day.cache_clear()
    daymap._utc_day.cache_clear()
    daymap._day_length.cache_clear()


def test_warm_caches_give_the_forecasts_of_cold_ones(history: pd.DataFrame) -> None:
    """A day of forecasts one quarter hour after the other (the controller's way, caches
    warm) equals the same forecasts each from cold caches; the future is not seen either way
    (it is replaced by NaN for the cold run)."""
    start = pd.Timestamp("2018-10-27T20:00Z")  # over the autumn DST change
    times = [start + i * Q - pd.Timedelta(seconds=30 * (i % 2)) for i in range(0, 110, 3)]
    warm = [forecast(history, t, timedelta(hours=36)) for t in times]
    for t, got in zip(times, warm, strict=True):
        clear_caches()
        blind = history.copy()
        blind.loc[blind.index >= t.ceil("D") + pd.Timedelta(days=2)] = np.nan  # prices beyond
        measured = [c for c in blind.columns if c != "price_eur_per_mwh"]
        blind.loc[blind.index >= t.floor("15min"), measured] = np.nan
        pd.testing.assert_frame_equal(forecast(blind, t, timedelta(hours=36)), got)
