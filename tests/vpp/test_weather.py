"""Issued temperature forecasts and the heat-demand forecast made from them."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.params import OptimizerParams
from vpp.data import DATA_DIR, read_inputs, shipped_inputs
from vpp.data.world import noisy_world, read_household
from vpp.forecast import ForecastSettings, forecast, heat_error_history, heat_level_error
from vpp.weather import (
    ISSUE_HOURS_UTC,
    RMSE_BY_LEAD_K,
    ForecastSpec,
    SyntheticTemperatureForecast,
    TemperatureQuantile,
    latest_issue,
    rmse_k,
)

#: The first day of the May cold spell of 2018 (docs/replay-world.md).
SPELL = pd.Timestamp("2018-05-21T00:00Z")
ROOT = DATA_DIR.parent


@lru_cache(maxsize=1)
def _year() -> pd.DataFrame:
    return read_inputs(shipped_inputs(2018))


def _steady(values: np.ndarray, start: str = "2018-03-01T00:00Z") -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq="15min", name="time")
    return pd.Series(values, index=index)


@settings(max_examples=200, deadline=None)
@given(minutes=st.integers(min_value=0, max_value=60 * 24 * 30))
def test_the_issue_read_at_now_was_delivered_before_now(minutes: int) -> None:
    """The issue used at ``now`` is a run hour, delivered (3 h after it) by ``now``, and the
    newest such: the next run would only be delivered after ``now``."""
    spec = ForecastSpec()
    now = pd.Timestamp("2018-03-01T00:00Z") + pd.Timedelta(minutes=minutes)
    issued = latest_issue(now, spec)
    assert issued.hour in ISSUE_HOURS_UTC and issued == issued.floor("h")
    assert issued + spec.available_after <= now
    assert issued + pd.Timedelta(hours=6) + spec.available_after > now


def test_forecast_issued_after_now_is_never_used() -> None:
    """Two worlds that agree up to the issue usable at ``now`` and differ in every issue
    after it give the same forecast at ``now``; the same series read once the later issue
    is delivered differ. A table of issues stands for the provider (as a live source is)."""
    year = _year()
    now = SPELL + pd.Timedelta(hours=4)  # 00 UTC run delivered at 03:00; 06 UTC not yet
    history = year.loc[now - pd.Timedelta(days=8) : now + pd.Timedelta(days=2)]
    base = SyntheticTemperatureForecast(year["outdoor_temp_c"])

    class Issues:
        """The synthetic issues, with every issue after the 00 UTC run ``offset`` K off."""

        def __init__(self, offset: float) -> None:
            self.offset = offset

        def at(self, when: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
            values = base.at(when, index)
            return values + self.offset if latest_issue(when, base.spec) > SPELL else values

    horizon = pd.Timedelta(hours=36)
    warm = forecast(history, now, horizon, weather=Issues(+15.0))
    cold = forecast(history, now, horizon, weather=Issues(-15.0))
    pd.testing.assert_frame_equal(warm, cold)
    delivered = now + pd.Timedelta(hours=5)  # the 06 UTC run is in from 09:00
    a = forecast(history, delivered, horizon, weather=Issues(+15.0))
    b = forecast(history, delivered, horizon, weather=Issues(-15.0))
    assert (a["outdoor_temp_c"] - b["outdoor_temp_c"]).abs().min() > 29.0
    # Warmer issues, less heat; over the first hour both start from the measured heat (the
    # nowcast of the network's departure from its model).
    heat_a, heat_b = a["heat_w_per_mwh_a"].to_numpy(), b["heat_w_per_mwh_a"].to_numpy()
    assert (heat_a[4:] < heat_b[4:]).all()
    assert (np.abs(heat_a[:4] - heat_b[:4]) < 0.1 * heat_b[:4]).all()


def test_error_spread_grows_with_lead_time_as_published() -> None:
    """Over 400 issues of a constant 10 degC, the forecasts' root-mean-square error at each
    lead time is the table's (within sampling error), and grows with the lead time."""
    truth = _steady(np.full(4 * 24 * 110, 10.0))
    source = SyntheticTemperatureForecast(truth)
    issues = pd.date_range("2018-03-01T00:00Z", periods=400, freq="6h")
    errors = np.stack([source.error(t).to_numpy() for t in issues])
    rmse = np.sqrt((errors**2).mean(axis=0))
    for lead, expected in RMSE_BY_LEAD_K[1:]:
        assert rmse[int(lead) - 1] == pytest.approx(expected, rel=0.15), lead
    assert rmse[5] < rmse[47] < rmse[95]
    assert abs(errors.mean()) < 0.3  # unbiased
    # The forecast is the observation plus that error.
    index = pd.date_range(issues[0] + pd.Timedelta(hours=4), periods=8, freq="h")
    got = source.at(issues[0] + pd.Timedelta(hours=3), index)
    np.testing.assert_allclose(got, 10.0 + errors[0, 3:11] + 0.0, atol=0.3)


def test_same_seed_same_forecasts_in_any_order_other_seed_others() -> None:
    truth = _steady(np.linspace(0.0, 20.0, 4 * 24 * 20))
    now = pd.Timestamp("2018-03-05T10:00Z")
    index = pd.date_range(now.floor("15min"), periods=200, freq="15min")
    first = SyntheticTemperatureForecast(truth, ForecastSpec(seed=7))
    first.at(now + pd.Timedelta(days=3), index)  # another issue first
    a = first.at(now, index)
    b = SyntheticTemperatureForecast(truth, ForecastSpec(seed=7)).at(now, index)
    c = SyntheticTemperatureForecast(truth, ForecastSpec(seed=8)).at(now, index)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    with pytest.raises(ValueError, match="max_lead_h"):
        ForecastSpec(max_lead_h=0)


def test_heat_forecast_from_temperature_sees_the_cold_spell_coming() -> None:
    """At midnight before the May spell of 2018 the heat demand climbs over three days.
    Yesterday's profile (the old rule) forecasts a third of the third day's heat; the
    SigLinDe model on the issued temperature forecast comes within a quarter of every day,
    and on the observed temperature it is the shipped profile itself."""
    year = _year()
    history = year.loc[SPELL - pd.Timedelta(days=8) : SPELL + pd.Timedelta(days=4)]
    horizon = pd.Timedelta(hours=72)
    truth = year["heat_w_per_mwh_a"].loc[SPELL : SPELL + horizon - pd.Timedelta(minutes=15)]
    daily_truth = truth.resample("D").sum()

    def daily(weather: object) -> pd.Series:
        heat = forecast(history, SPELL, horizon, weather=weather)["heat_w_per_mwh_a"]  # type: ignore[arg-type]
        return heat.resample("D").sum() / daily_truth

    persistence = daily(None)
    assert persistence.iloc[2] < 0.5  # the old forecast misses the spell
    issued = daily(SyntheticTemperatureForecast(year["outdoor_temp_c"]))
    assert ((issued > 0.75) & (issued < 1.25)).all(), issued.round(3).tolist()

    class Observed:
        def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
            return year["outdoor_temp_c"].reindex(index).to_numpy(float)

    exact = forecast(history, SPELL, horizon, weather=Observed())["heat_w_per_mwh_a"]
    # Whole days known ahead: the model is the shipped profile (scaled by recent days).
    first_two = slice(SPELL, SPELL + pd.Timedelta(hours=46))
    np.testing.assert_allclose(exact.loc[first_two], truth.loc[first_two], rtol=0.01, atol=0.5)


def test_heat_forecast_is_scaled_by_the_recent_days() -> None:
    """A network whose measured heat runs 30 % above the standard profile is forecast 30 %
    above it (the scale comes from the recent complete days, not from the model)."""
    year = _year().copy()
    year["heat_w_per_mwh_a"] *= 1.3
    history = year.loc[SPELL - pd.Timedelta(days=8) : SPELL + pd.Timedelta(days=2)]

    class Observed:
        def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
            return year["outdoor_temp_c"].reindex(index).to_numpy(float)

    heat = forecast(history, SPELL, pd.Timedelta(hours=24), weather=Observed())
    truth = year["heat_w_per_mwh_a"].reindex(heat.index)
    assert float(heat["heat_w_per_mwh_a"].sum() / truth.sum()) == pytest.approx(1.0, abs=0.01)


def test_heat_forecast_carries_the_last_hours_departure_and_lets_it_fade() -> None:
    """The last hour's measured heat 25 % above the model (a cold night the temperature
    forecast did not see): the forecast starts near it and returns to the model with the
    nowcast's time constant; without the nowcast it is the model from the first step."""
    year = _year().copy()
    now = SPELL - pd.Timedelta(days=2) + pd.Timedelta(hours=9)
    last_hour = (year.index >= now - pd.Timedelta(hours=1)) & (year.index < now)
    year.loc[last_hour, "heat_w_per_mwh_a"] *= 1.25
    history = year.loc[now - pd.Timedelta(days=8) : now + pd.Timedelta(days=2)]

    class Observed:
        def at(self, when: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
            return year["outdoor_temp_c"].reindex(index).to_numpy(float)

    horizon = pd.Timedelta(hours=36)
    plain = forecast(history, now, horizon, weather=Observed(),
                     settings=ForecastSettings(heat_nowcast_h=0.0))["heat_w_per_mwh_a"]  # fmt: skip
    nowcast = forecast(history, now, horizon, weather=Observed())["heat_w_per_mwh_a"]
    measured = year.loc[last_hour, "heat_w_per_mwh_a"]
    model = plain.to_numpy()
    departure = float((measured - _unchanged(pd.DatetimeIndex(measured.index))).mean())
    lead_h = np.arange(len(model)) / 4
    expected = model + departure * np.exp(-lead_h / ForecastSettings().heat_nowcast_decay_h)
    np.testing.assert_allclose(nowcast.to_numpy(), expected, rtol=0.02)
    assert abs(nowcast.iloc[0] - measured.iloc[-1]) < 0.1 * measured.iloc[-1]
    assert abs(plain.iloc[0] - measured.iloc[-1]) > 0.15 * measured.iloc[-1]
    assert abs(nowcast.iloc[-1] - plain.iloc[-1]) < 0.01 * plain.iloc[-1]


def _unchanged(index: pd.DatetimeIndex) -> pd.Series:
    """The shipped heat on ``index`` (what the model reproduces on observed temperatures)."""
    return _year()["heat_w_per_mwh_a"].reindex(index)


def test_a_temperature_quantile_is_the_issue_moved_by_its_spread() -> None:
    """The quantile of an issue is the issue plus the normal quantile times the published
    spread at each step's lead time from that issue (so it parts from the issue more the
    further ahead); the median is the issue itself. A source that states no spread gets
    the published one at the lead time from ``now``. Quantiles outside (0, 1) are refused."""
    weather = SyntheticTemperatureForecast(_year()["outdoor_temp_c"])
    now = pd.Timestamp("2018-10-02T09:45Z")
    index = pd.date_range(now, periods=4 * 100, freq="15min")
    issue = weather.at(now, index)
    assert not np.isnan(issue).any()
    np.testing.assert_array_equal(TemperatureQuantile(weather, 0.5).at(now, index), issue)
    cold = TemperatureQuantile(weather, 0.1).at(now, index)
    lead_h = np.asarray((index - latest_issue(now, ForecastSpec())) / pd.Timedelta(hours=1))
    np.testing.assert_allclose(issue - cold, 1.2815516 * rmse_k(lead_h), rtol=1e-6)
    assert (np.diff(issue - cold) >= 0).all()
    assert (issue - cold)[0] < 1.0 * 1.29 and (issue - cold)[-1] > 2.3 * 1.28

    class Plain:
        def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
            return np.full(len(index), 5.0)

    warm = TemperatureQuantile(Plain(), 0.9).at(now, index)
    lead_now = np.asarray((index - now) / pd.Timedelta(hours=1))
    np.testing.assert_allclose(warm - 5.0, 1.2815516 * rmse_k(lead_now), rtol=1e-6)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="quantile"):
            TemperatureQuantile(weather, bad)


def _reserve_at(
    at: pd.Timestamp, weather: object, quantiles: tuple[float, ...] | None = None
) -> tuple[pd.DataFrame, tuple[tuple[float, float], ...]]:
    from datetime import timedelta

    from vpp.control.planning import forecast_with_weather
    from vpp.core.site import read_site

    site = read_site(ROOT / "config" / "demo.toml")
    if quantiles is not None:
        forecast = site.forecast.model_copy(update={"reserve_quantiles": quantiles})
        site = site.model_copy(update={"forecast": forecast})
    year = _year()
    ahead = 36 + site.forecast.reserve_lookahead_h + 8
    used = year.loc[at - pd.Timedelta(days=8) : at + pd.Timedelta(hours=ahead)]
    raw, reserve = forecast_with_weather(
        site, used, at.to_pydatetime(), timedelta(hours=36), weather
    )
    assert len(raw) == 144 and not raw[["heat_w_per_mwh_a", "outdoor_temp_c"]].isna().any().any()
    return raw, reserve


def _levels(tiers: tuple[tuple[float, float], ...]) -> list[float]:
    """The reserve [Wh] up to each tier."""
    return np.cumsum([w for w, _ in tiers]).tolist()


def test_the_plan_sees_the_spell_past_its_horizon_as_a_store_reserve() -> None:
    """On the demo site, at noon the day before the May 2018 spell (its demand two days
    ahead, past the 36 h horizon), the issued forecasts call for several MWh in the store
    at the plan's end already at the heat demand's median; in a quiet July week for none,
    at any quantile. With persistence the reserve is empty by construction (vpp run
    without a forecast source)."""
    weather = SyntheticTemperatureForecast(_year()["outdoor_temp_c"])
    _, before = _reserve_at(pd.Timestamp("2018-05-20T12:00Z"), weather)
    assert [p for _, p in before] == pytest.approx([0.95, 0.8, 0.6, 0.4, 0.2, 0.065])
    assert 2e6 < _levels(before)[2] <= 10e6  # up to the median (0.5)
    quiet = _reserve_at(pd.Timestamp("2018-07-10T12:00Z"), weather)[1]
    assert len(quiet) == 6 and _levels(quiet)[-1] == 0.0


def test_the_reserve_is_made_for_the_cold_side_of_the_issue() -> None:
    """Two days before the October 2018 spell, with the issue of 06 UTC: the reserve for
    the heat at the issue itself is none (0.0 Wh); for the quantiles (the default 0.1 to
    0.97) none up to the median, part of the store by the 0.7 quantile and the whole store
    by the 0.9 quantile, so the store's energy for the spell is valued at chances of 0.4
    and 0.2 that it is needed; the quantiles only move the reserve, the plan's own rows are
    the issue's either way."""
    weather = SyntheticTemperatureForecast(_year()["outdoor_temp_c"])
    at = pd.Timestamp("2018-10-02T09:45Z")
    median_raw, median = _reserve_at(at, weather, (0.5,))
    cold_raw, tiers = _reserve_at(at, weather)
    pd.testing.assert_frame_equal(cold_raw, median_raw)
    assert median == ((0.0, 0.75),)
    levels = _levels(tiers)
    assert levels[2] == 0.0
    assert 1e6 < levels[3] < 9e6
    assert 9.99e6 <= levels[4] <= levels[5] <= 10e6


def _level_error(year: pd.DataFrame, cutoff: pd.Timestamp, settings: ForecastSettings) -> float:
    known = year[year.index < cutoff]
    return heat_level_error(known["heat_w_per_mwh_a"], known["outdoor_temp_c"], cutoff, settings)


def test_the_heat_level_error_is_what_a_day_departs_from_the_recent_level() -> None:
    """The shipped heat is the SigLinDe model of its temperature: no level error (below the
    optimizer's floor on every day of the year: 0.0016 % at most). Each local day's heat
    scaled by 1.1 and 0.9 in turn: each day departs from the level of the three days
    before by the share worked out here; fewer scored days than the minimum give none;
    what is measured after the cutoff's day changes nothing."""
    settings = ForecastSettings()
    cutoff = pd.Timestamp("2018-10-20T06:00Z")
    year = _year()
    assert _level_error(year, cutoff, settings) < OptimizerParams().heat_error_min
    # Nor at the file's start, where the model's smoothed temperature lacks the days before
    # the first: those days are not scored (they were, at 0.56 %).
    early = pd.Timestamp("2018-01-12T06:00Z")
    assert _level_error(year, early, settings) < OptimizerParams().heat_error_min
    noisy = year.copy()
    local_day = noisy.index.tz_convert("Europe/Berlin").normalize()
    codes = (local_day - local_day[0]).days.to_numpy()
    factor = np.where(codes % 2 == 0, 1.1, 0.9)
    noisy["heat_w_per_mwh_a"] *= factor
    got = _level_error(noisy, cutoff, settings)
    # Days scored: the 14 before the cutoff's local day. A day at 1.1 follows days at 0.9,
    # 1.1, 0.9 (a level of about 0.967, model-weighted), a day at 0.9 the mirror (1.033):
    # errors of |1.1 / 0.967 - 1| = 13.8 % and |0.9 / 1.033 - 1| = 12.9 %.
    assert 0.125 < got < 0.140
    few = ForecastSettings(heat_error_min_days=15)
    assert _level_error(noisy, cutoff, few) == 0.0
    later = noisy.copy()
    after = later.index >= cutoff.tz_convert("Europe/Berlin").normalize()
    later.loc[after, "heat_w_per_mwh_a"] *= 3.0
    assert _level_error(later, cutoff, settings) == got
    assert heat_error_history(settings) >= pd.Timedelta(days=21)


def test_the_noisy_world_has_a_level_error_the_plans_are_told_of() -> None:
    """The noisy world's heat (vpp.data.world) departs from its recent level by some 4-8 %
    a day in every season; the controller hands the day's error to each plan."""
    world = noisy_world(_year(), read_household(), 2018)
    settings = ForecastSettings()
    for day in ("2018-01-20", "2018-04-15", "2018-06-12", "2018-10-05"):
        assert 0.03 < _level_error(world, pd.Timestamp(day, tz="UTC"), settings) < 0.09


async def test_vpp_run_shows_the_heat_forecast_s_level_error() -> None:
    """``vpp run`` on the demo's historic file: the day's first plan scores the heat
    forecast's level on the days before (the state shows it, for the metrics). The file's
    heat is the model's: the error is under the optimizer's floor and the plans are told
    none. (Before the days at the history's start were left out, 0.3 %: the model's
    smoothed temperature lacked the days before them.)"""
    from datetime import UTC, datetime

    from vpp.testing.harness import plant, small_site

    site = small_site()
    async with plant(site, datetime(2026, 6, 21, 10, 0, tzinfo=UTC)) as p:
        assert await p.ctl.run_job("poll")
        assert await p.ctl.run_job("plan")
        shown = p.ctl.state.heat_level_error
        assert shown is not None and 0.0 < shown < OptimizerParams().heat_error_min
        assert p.ctl.heat_level_error == 0.0
