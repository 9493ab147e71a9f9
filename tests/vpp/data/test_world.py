"""The noisy world (vpp.data.world): seeded, in the input schema, energies kept, a generated
home shaped like the measured household it is drawn from, the district's load no longer the
standard profile the forecasts rebuild."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from vpp.data import read_inputs
from vpp.data.richardson import (
    home_seed,
    home_stats,
    hourly,
    local_days,
    minute_irradiance,
    occupant_counts,
    read_htw_homes,
    richardson_homes,
    simulate_home,
)
from vpp.data.world import (
    households,
    htw_homes,
    noisy_world,
    read_household,
    richardson_pool_homes,
)

ROOT_INPUTS = "data/inputs_2018.parquet"


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return read_inputs(ROOT_INPUTS)


@pytest.fixture(scope="module")
def world(base: pd.DataFrame) -> pd.DataFrame:
    return noisy_world(base, read_household(), seed=7)


def _lag1(x: np.ndarray) -> float:
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


def _daily(x: np.ndarray) -> np.ndarray:
    days = x.size // 96
    return x[: days * 96].reshape(days, 96).mean(axis=0)


def test_same_seed_same_world(base: pd.DataFrame, world: pd.DataFrame) -> None:
    again = noisy_world(base, read_household(), seed=7)
    pd.testing.assert_frame_equal(again, world)
    other = noisy_world(base, read_household(), seed=8)
    assert not np.allclose(other["load_w_per_mwh_a"], world["load_w_per_mwh_a"])


def test_energies_kept_and_real_series_untouched(base: pd.DataFrame, world: pd.DataFrame) -> None:
    assert world["load_w_per_mwh_a"].sum() * 0.25 / 1e6 == pytest.approx(1.0)  # 2018: 8,760 h
    for column in ("heat_w_per_mwh_a", "pv_w_per_kwp"):
        assert world[column].sum() == pytest.approx(base[column].sum(), rel=1e-9)
    for column in ("price_eur_per_mwh", "co2_g_per_kwh", "outdoor_temp_c", "ghi_w_per_m2"):
        pd.testing.assert_series_equal(world[column], base[column])
    assert (world["pv_w_per_kwp"][base["pv_w_per_kwp"] == 0] == 0).all()  # no sun at night
    assert world["it_load_ratio"].between(0.3, 1.0).all()


def test_a_generated_home_is_shaped_like_the_measured_household(base: pd.DataFrame) -> None:
    real = read_household()
    one = households(
        np.random.default_rng(3), real, pd.DatetimeIndex(base.index), 1, "Europe/Berlin"
    )
    assert _lag1(one) == pytest.approx(_lag1(real), abs=0.05)
    assert np.corrcoef(_daily(one), _daily(real))[0, 1] > 0.8
    assert one.max() / one.mean() == pytest.approx(real.max() / real.mean(), rel=0.2)


#: 2018's holidays in Saxony (lived as Sundays) and the days BDEW counts as Saturdays.
HOLIDAYS_2018 = [
    "01-01",
    "03-30",
    "04-02",
    "05-01",
    "05-10",
    "05-21",
    "10-03",
    "10-31",
    "11-21",
    "12-25",
    "12-26",
]
SATURDAYS_2018 = ("12-24", "12-31")


def test_every_day_of_a_home_comes_from_the_weekday_it_is_lived_as(base: pd.DataFrame) -> None:
    """A household whose days carry their weekday (Monday 1 .. Sunday 7, the source year from
    a Friday): every local day of 2018, in summer time too and across both clock changes
    (no day repeated in March), takes a day of its own weekday; a holiday a Sunday, 24 and
    31 December a Saturday; the same for homes drawn from a Richardson pool."""
    weekday = (4 + np.arange(365)) % 7
    household = np.repeat(weekday + 1.0, 96)
    index = pd.DatetimeIndex(base.index)
    local = index.tz_convert("Europe/Berlin")
    midday = (local.hour >= 10) & (local.hour < 14)  # clear of the home's shift of up to 1 h
    lived = pd.Series(local.day_of_week + 1.0, index=local.strftime("%m-%d"))
    lived[lived.index.isin(HOLIDAYS_2018)] = 7.0
    lived[lived.index.isin(SATURDAYS_2018)] = 6.0
    want = lived.to_numpy()[midday]
    assert (want == 7.0).sum() == (52 + len(HOLIDAYS_2018)) * 16  # 2018: 52 Sundays
    for home in htw_homes(np.random.default_rng(5), household, index, 3, "Europe/Berlin"):
        got = home[midday]
        scale = got[0] / want[0]
        np.testing.assert_allclose(got / scale, want)
    # A Richardson pool is simulated on the table's own days: the same rule.
    days = pd.date_range("2018-01-01", "2018-12-31", freq="D")
    pool = np.repeat((days.day_of_week + 1.0).to_numpy()[None, :, None], 96, axis=2)
    homes = richardson_pool_homes(np.random.default_rng(5), pool, index, 2, "Europe/Berlin")
    for home in homes:
        np.testing.assert_allclose(home[midday], want)


def test_the_district_is_noisier_than_the_standard_profile(
    base: pd.DataFrame, world: pd.DataFrame
) -> None:
    """Season and day shape stay (monthly energy within 10 %, correlation > 0.85), but the
    load departs from the standard profile by more than 5 % on average, and heat, IT load and
    PV carry noise too."""
    h25, load = base["load_w_per_mwh_a"], world["load_w_per_mwh_a"]
    months = (load.resample("MS").sum() / h25.resample("MS").sum()).iloc[1:]
    assert months.between(0.9, 1.1).all(), months
    assert np.corrcoef(load, h25)[0, 1] > 0.85
    for column, least in (
        ("load_w_per_mwh_a", 0.05),
        ("heat_w_per_mwh_a", 0.04),
        ("it_load_ratio", 0.02),
        ("pv_w_per_kwp", 0.10),
    ):
        off = float(np.abs(world[column] - base[column]).mean() / base[column].mean())
        assert off > least, (column, off)


# --- Richardson homes (vpp.data.richardson) --------------------------------------------------
# The reference is the 74 measured HTW homes over the same three November weeks (2010, Monday
# to Sunday): a simulated home must lie within their spread, as the year's homes do in the
# table of docs/replay-world.md (`python -m vpp.data.richardson_check --check`).


@pytest.fixture(scope="module")
def autumn(base: pd.DataFrame) -> pd.DataFrame:
    """Three weeks of November 2018 (local), with their real irradiance."""
    return base.loc["2018-11-04T23:00Z":"2018-11-25T22:45Z"]


@pytest.fixture(scope="module")
def pool(autumn: pd.DataFrame) -> np.ndarray:
    return richardson_homes(
        autumn["ghi_w_per_m2"].to_numpy(float), pd.DatetimeIndex(autumn.index), 3, seed=5
    )


def test_household_sizes_follow_the_german_shares() -> None:
    rng = np.random.default_rng(0)
    for count, expected in (
        (24, [10, 8, 3, 2, 1]),
        (100, [42, 34, 12, 9, 3]),
        (1, [1, 0, 0, 0, 0]),
    ):
        sizes = occupant_counts(count, rng)
        assert [sizes.count(n) for n in (1, 2, 3, 4, 5)] == expected
    with pytest.raises(ValueError, match="distinct homes"):
        occupant_counts(0, rng)


def test_richardson_homes_are_seeded_per_home(autumn: pd.DataFrame) -> None:
    """The same seed gives the same homes in one process or two; another seed other homes;
    the caller's Python random state is left as it was."""
    week = autumn.iloc[: 7 * 96]
    ghi, index = week["ghi_w_per_m2"].to_numpy(float), pd.DatetimeIndex(week.index)
    random.seed(123)
    before = random.getstate()
    one = richardson_homes(ghi, index, 2, seed=5)
    assert random.getstate() == before
    np.testing.assert_array_equal(one, richardson_homes(ghi, index, 2, seed=5, workers=2))
    assert one.shape == (2, 7, 96)
    assert not np.allclose(one, richardson_homes(ghi, index, 2, seed=6))


@pytest.fixture(scope="module")
def measured_november() -> list[dict[str, float]]:
    """The 74 measured homes over 8-28 November 2010 (Monday to Sunday), hourly."""
    homes = read_htw_homes()
    start = (pd.Timestamp("2010-11-08") - pd.Timestamp("2010-01-01")).days * 24
    window = homes[:, start : start + 21 * 24]
    mean_day = window.mean(axis=0).reshape(21, 24).mean(axis=0)
    return [home_stats(x, 24, mean_day) for x in window]


def test_richardson_homes_lie_within_the_measured_homes(
    autumn: pd.DataFrame, pool: np.ndarray, measured_november: list[dict[str, float]]
) -> None:
    """Three simulated November weeks (5-25 Nov 2018, Monday to Sunday) against the same weeks
    of the 74 measured homes: energy, day-to-day spread, variability, persistence and the
    evening peak of each home within the measured homes' range; the mean day shaped like
    theirs at least as well as their tenth percentile."""
    index = pd.DatetimeIndex(autumn.index)
    day, quarter = local_days(index, "Europe/Berlin")
    homes = read_htw_homes()
    start = (pd.Timestamp("2010-11-08") - pd.Timestamp("2010-01-01")).days * 24
    mean_day = homes[:, start : start + 21 * 24].mean(axis=0).reshape(21, 24).mean(axis=0)
    ranges = {
        key: (min(m[key] for m in measured_november), max(m[key] for m in measured_november))
        for key in ("kwh_a", "daily_cv", "cv", "step", "acf_1h", "evening_peak")
    }
    corr_p10 = float(np.quantile([m["profile_corr"] for m in measured_november], 0.1))
    assert pool.shape == (3, 21, 96)
    for home in pool:
        x = home.ravel()[day * 96 + quarter]
        got = home_stats(hourly(x, day, quarter), 24, mean_day)
        for key, (low, high) in ranges.items():
            assert low <= got[key] <= high, (key, got[key], low, high)
        assert got["profile_corr"] >= corr_p10, (got["profile_corr"], corr_p10)
        assert 17 <= got["peak_hour"] <= 22, got["peak_hour"]


def test_noisy_world_with_richardson_homes(base: pd.DataFrame) -> None:
    """1 January to 24 March 2018: the load is the simulated homes' (scaled to 1 MWh
    a year, its mean power 1 MWh over 8,760 h, as the htw homes are), heat, IT load and PV
    are the htw world's of the same seed; a wrong model or a table without irradiance is
    refused by name."""
    winter = base.loc["2018-01-01":"2018-03-24"]
    world = noisy_world(winter, read_household(), seed=4, model="richardson", distinct=1)
    htw = noisy_world(winter, read_household(), seed=4)
    for got in (world, htw):
        assert got["load_w_per_mwh_a"].mean() * 8760 / 1e6 == pytest.approx(1.0)
    for column in ("heat_w_per_mwh_a", "it_load_ratio", "pv_w_per_kwp", "price_eur_per_mwh"):
        pd.testing.assert_series_equal(world[column], htw[column])
    load = world["load_w_per_mwh_a"].to_numpy()
    assert np.corrcoef(load, htw["load_w_per_mwh_a"])[0, 1] < 0.95
    with pytest.raises(ValueError, match="households model"):
        noisy_world(winter, read_household(), seed=4, model="h0")
    with pytest.raises(ValueError, match="ghi_w_per_m2"):
        noisy_world(winter.drop(columns="ghi_w_per_m2"), read_household(), 4, model="richardson")


def test_quarter_hours_are_minute_means_and_lights_follow_the_sky() -> None:
    """A home's quarter hours are the means of its minutes (not single minutes); the same
    home under a dark sky uses more than under a bright one (its lighting: 33-46 % more for
    homes of 1-3 persons over this week, seed 1)."""
    weekend, days = [False] * 5 + [True] * 2, list(range(300, 307))
    dark, bright = np.zeros((7, 1440)), np.full((7, 1440), 1000.0)
    for n in (1, 2):
        quarters = simulate_home(n, dark, weekend, days, home_seed(1, n))
        minutes = simulate_home(n, dark, weekend, days, home_seed(1, n), step_min=1)
        np.testing.assert_allclose(minutes.reshape(7, 96, 15).mean(axis=2), quarters)
        lit = simulate_home(n, bright, weekend, days, home_seed(1, n))
        assert quarters.mean() > 1.15 * lit.mean(), (n, quarters.mean(), lit.mean())
    with pytest.raises(ValueError, match="step_min"):
        simulate_home(1, dark, weekend, days, 1, step_min=7)
    with pytest.raises(ValueError, match="irradiance_w_per_m2"):
        simulate_home(1, dark[:6], weekend, days, 1)


def test_minute_irradiance_is_the_tables_in_local_time(base: pd.DataFrame) -> None:
    """Each local minute holds its quarter hour's irradiance; the hour the spring clock change
    skips (02:00-03:00 local, 25 March 2018) holds the quarter hour before it."""
    week = base.loc["2018-03-21T23:00Z":"2018-03-28T21:45Z"]  # 22-28 March local
    ghi = week["ghi_w_per_m2"].to_numpy(float)
    minutes = minute_irradiance(ghi, pd.DatetimeIndex(week.index), "Europe/Berlin")
    assert minutes.shape == (7, 1440)
    series = week["ghi_w_per_m2"]
    assert minutes[0, 12 * 60 + 7] == series["2018-03-22T11:00Z"]  # 12:07 CET
    assert minutes[5, 12 * 60 + 7] == series["2018-03-27T10:00Z"]  # 12:07 CEST
    assert (minutes[3, 120:180] == series["2018-03-25T00:45Z"]).all()  # 01:45 CET held
    assert minutes[:, : 4 * 60].max() == 0.0  # before 04:00 local it is dark in March
