"""Learned quantile forecasts: no look-ahead, ordered quantiles, determinism, the fallback to
the rules, and that they beat the rules where the world is noisy."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.data import read_inputs, shipped_inputs
from vpp.data.world import noisy_world, read_household
from vpp.forecast import forecast, forecast_index
from vpp.learned import (
    LEARNED_COLUMNS,
    LearnedForecaster,
    LearnedSettings,
    conformal_widening,
)

H36 = timedelta(hours=36)
#: Small models: the properties do not depend on the size.
SMALL = LearnedSettings(train_days=16, min_train_days=10, cutoffs_per_day=6, trees=20)


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return read_inputs(shipped_inputs(2018))


@pytest.fixture(scope="module")
def world(year: pd.DataFrame) -> pd.DataFrame:
    """The noisy world over the first quarter of 2018 (seeded)."""
    return noisy_world(year.loc["2018-01-01":"2018-03-31"], read_household(), seed=11)


@pytest.fixture(scope="module")
def history(world: pd.DataFrame) -> pd.DataFrame:
    return world.loc["2018-02-01T00:00Z":"2018-03-20T00:00Z"]


def reader(data: pd.DataFrame):  # type: ignore[no-untyped-def]
    """The whole table, future included, as the controller's input source would give it
    in replay: the forecaster must cut it itself."""
    return lambda start, end: data[(data.index >= start) & (data.index < end)]


def learned(
    data: pd.DataFrame, now: pd.Timestamp, settings_: LearnedSettings = SMALL
) -> dict[str, np.ndarray]:
    index = forecast_index(now, H36)
    rules = forecast(data, now, H36)
    return LearnedForecaster(settings_).quantiles(data, now, index, reader(data), rules)


def change_future(data: pd.DataFrame, now: pd.Timestamp, seed: int, how: str) -> pd.DataFrame:
    """Every value from the quarter hour containing ``now`` on, changed."""
    rng = np.random.default_rng(seed)
    out = data.copy()
    future = out.index >= now.floor("15min")
    for column in out.columns:
        if how == "noise":
            out.loc[future, column] *= rng.uniform(0.2, 3.0, int(future.sum()))
        elif how == "nan":
            out.loc[future, column] = np.nan
        else:
            out.loc[future, column] = out[column].max()
    return out


@settings(max_examples=6, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=24 * 60 * 6),
    seed=st.integers(min_value=0, max_value=2**16),
    how=st.sampled_from(("noise", "nan", "max")),
)
def test_changing_the_future_never_changes_a_forecast(
    history: pd.DataFrame, minutes: int, seed: int, how: str
) -> None:
    now = pd.Timestamp("2018-03-05T00:00Z") + pd.Timedelta(minutes=minutes)
    expected = learned(history, now)
    got = learned(change_future(history, now, seed, how), now)
    assert set(got) == set(expected) == set(LEARNED_COLUMNS)
    for column in LEARNED_COLUMNS:
        np.testing.assert_array_equal(got[column], expected[column], err_msg=column)


def test_the_look_ahead_check_is_not_vacuous(history: pd.DataFrame) -> None:
    """The last known quarter hour and the training window both move the forecast (trees
    saturate: a value beyond the training range on one side may not, so both sides)."""
    now = pd.Timestamp("2018-03-05T09:40Z")
    before = learned(history, now)
    last = now.floor("15min") - pd.Timedelta(minutes=15)
    moved = set()
    for factor in (0.8, 1.2):
        changed = history.copy()
        changed.loc[last, list(LEARNED_COLUMNS)] *= factor
        after = learned(changed, now)
        moved |= {c for c in LEARNED_COLUMNS if not np.array_equal(before[c], after[c])}
    assert moved == set(LEARNED_COLUMNS)
    older = history.copy()
    older.loc[: now.normalize() - pd.Timedelta(days=9), list(LEARNED_COLUMNS)] *= 0.7
    refit = learned(older, now)
    assert not np.array_equal(before["heat_w_per_mwh_a"], refit["heat_w_per_mwh_a"])


def test_quantiles_are_ordered_within_the_schema_and_pv_is_dark_at_night(
    history: pd.DataFrame,
) -> None:
    for now in (pd.Timestamp("2018-03-04T03:10Z"), pd.Timestamp("2018-03-12T11:55Z")):
        got = learned(history, now)
        for column, values in got.items():
            assert values.shape == (3, 144)
            assert np.isfinite(values).all(), column
            assert (np.diff(values, axis=0) >= 0).all(), column
            assert (values >= 0).all(), column
        index = forecast_index(now, H36)
        night = (index.hour < 4) | (index.hour >= 19)  # UTC, winter in Leipzig
        assert (got["pv_w_per_kwp"][:, night] == 0).all()
        assert got["pv_w_per_kwp"][2, ~night].max() > 0


def test_deterministic_with_a_seed_and_across_the_daily_cache(history: pd.DataFrame) -> None:
    now = pd.Timestamp("2018-03-08T13:20Z")
    first = learned(history, now)
    second = learned(history, now)
    warm = LearnedForecaster(SMALL)
    index = forecast_index(now, H36)
    rules = forecast(history, now, H36)
    warm.quantiles(history, now - pd.Timedelta(hours=5), index, reader(history), rules)
    third = warm.quantiles(history, now, index, reader(history), rules)
    assert warm.fits == len(LEARNED_COLUMNS)  # one fit per quantity for the day
    other_seed = learned(history, now, LearnedSettings(**{**SMALL.__dict__, "seed": 8}))
    for column in LEARNED_COLUMNS:
        np.testing.assert_array_equal(first[column], second[column])
        np.testing.assert_array_equal(first[column], third[column])
    assert any(not np.array_equal(first[c], other_seed[c]) for c in LEARNED_COLUMNS)


def test_a_centred_column_keeps_the_given_median_and_the_learned_band(
    history: pd.DataFrame,
) -> None:
    """The heat demand forecast from issued temperatures is the median; P10 and P90 keep
    their learned distances from the learned P50; the other columns are untouched."""
    now = pd.Timestamp("2018-03-08T13:20Z")
    index = forecast_index(now, H36)
    rules = forecast(history, now, H36)
    given_ = rules.copy()
    heat = "heat_w_per_mwh_a"
    given_[heat] = given_[heat] * 1.3
    given_.iloc[:4, given_.columns.get_loc(heat)] = np.nan  # none given: the learned stay
    plain = LearnedForecaster(SMALL).quantiles(history, now, index, reader(history), given_)
    got = LearnedForecaster(SMALL).quantiles(
        history, now, index, reader(history), given_, frozenset({heat})
    )
    median = given_[heat].to_numpy()
    np.testing.assert_allclose(got[heat][1, 4:], median[4:])
    np.testing.assert_allclose(got[heat][:, :4], plain[heat][:, :4])
    np.testing.assert_allclose(
        got[heat][:, 4:] - median[4:], plain[heat][:, 4:] - plain[heat][1, 4:], atol=1e-6
    )
    assert (got[heat][2] - got[heat][0]).min() > 0
    for column in set(LEARNED_COLUMNS) - {heat}:
        np.testing.assert_array_equal(got[column], plain[column])


def test_short_history_leaves_the_rules(year: pd.DataFrame) -> None:
    now = pd.Timestamp("2018-01-09T10:00Z")  # 8 days into the file
    assert learned(year, now) == {}


def test_settings_name_the_bad_field() -> None:
    with pytest.raises(ValueError, match="min_train_days"):
        LearnedSettings(train_days=10, min_train_days=12)
    with pytest.raises(ValueError, match="calibration_days"):
        LearnedSettings(train_days=10, min_train_days=5, calibration_days=4)


def test_conformal_widening_covers_the_calibration_rows() -> None:
    """Moving P10 down and P90 up by the bucket's widening puts 80 % of its held-out rows
    inside the band; a band already too wide is narrowed."""
    rng = np.random.default_rng(3)
    lead = np.repeat([0, 10, 30, 100], 200)
    actual = rng.normal(0.0, 1.0 + lead / 50.0)
    low, high = np.full(len(lead), -0.3), np.full(len(lead), 0.3)
    widen = conformal_widening(low, high, actual, lead, 0.8)
    assert (np.diff(widen) > 0).all()  # later leads were missed by more
    for i, first in enumerate((0, 10, 30, 100)):
        mine = lead == first
        inside = (actual[mine] >= low[mine] - widen[i]) & (actual[mine] <= high[mine] + widen[i])
        assert 0.8 <= inside.mean() <= 0.81
    assert (conformal_widening(low - 10, high + 10, actual, lead, 0.8) < 0).all()


def test_learned_beat_the_rules_in_a_noisy_winter(world: pd.DataFrame) -> None:
    """In the noisy world (stochastic homes, heat with weather-driven noise, local PV) the
    learned P50 is closer to what happened than the rules, for the next quarter hour (heat
    and load) and over the horizon (heat), at as-of times over three February days."""
    forecaster = LearnedForecaster()
    read = reader(world)
    errors: dict[str, list[float]] = {"rule0": [], "ml0": [], "rule": [], "ml": []}
    load0: dict[str, list[float]] = {"rule": [], "ml": []}
    for k in range(0, 3 * 96, 7):
        now = pd.Timestamp("2018-02-10T00:00Z") + pd.Timedelta(minutes=15 * k)
        rules = forecast(world, now, H36)
        got = forecaster.quantiles(world, now, pd.DatetimeIndex(rules.index), read, rules)
        truth = world.reindex(rules.index)
        heat_truth = truth["heat_w_per_mwh_a"].to_numpy()
        rule_err = np.abs(rules["heat_w_per_mwh_a"].to_numpy() - heat_truth)
        ml_err = np.abs(got["heat_w_per_mwh_a"][1] - heat_truth)
        errors["rule0"].append(rule_err[0])
        errors["ml0"].append(ml_err[0])
        errors["rule"].append(rule_err.mean())
        errors["ml"].append(ml_err.mean())
        load_truth = truth["load_w_per_mwh_a"].to_numpy()[0]
        load0["rule"].append(abs(rules["load_w_per_mwh_a"].iloc[0] - load_truth))
        load0["ml"].append(abs(got["load_w_per_mwh_a"][1, 0] - load_truth))
    mean = {k: float(np.mean(v)) for k, v in errors.items()}
    assert mean["ml0"] < 0.6 * mean["rule0"], mean
    assert mean["ml"] < mean["rule"], mean
    assert np.mean(load0["ml"]) < np.mean(load0["rule"])
