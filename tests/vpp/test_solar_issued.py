"""Issued PV forecasts (synthetic, vpp.weather) and the rule blend weighed against them by
their track record (vpp.forecast.issued_solar_weight)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.data import read_inputs, shipped_inputs
from vpp.forecast import (
    PV_COLUMN,
    ForecastSettings,
    clear_sky_ghi,
    forecast,
    issued_history,
    issued_solar_weight,
    known_series,
)
from vpp.weather import ForecastSpec, SyntheticSolarForecast, latest_issue

HOUR = pd.Timedelta(hours=1)
NOW = pd.Timestamp("2023-06-12T05:00Z")


@lru_cache(maxsize=2)
def _year(year: int = 2023) -> pd.DataFrame:
    return read_inputs(shipped_inputs(year))


def _pv(year: int = 2023) -> pd.Series:
    return _year(year)[PV_COLUMN]


def test_issued_pv_is_dark_at_night_never_negative_and_at_most_the_clear_sky() -> None:
    """Over a month of issues: zero where the clear sky is dark, never negative, an hour's
    value at most the larger of the hour's truth and its clear-sky GHI (the clip), NaN
    before the issue's first hour and past its last."""
    truth = _pv()
    source = SyntheticSolarForecast(truth)
    sky_settings = ForecastSettings()
    for step in range(0, 30 * 24, 7):
        now = pd.Timestamp("2023-04-01T00:00Z") + step * HOUR
        index = pd.date_range(now.floor("15min"), periods=4 * 36, freq="15min")
        got = source.at(now, index)
        assert not np.isnan(got).any()
        sky = clear_sky_ghi(index, sky_settings)
        assert (got >= 0.0).all()
        assert (got[sky == 0.0] == 0.0).all()
        hourly = pd.Series(got, index=index).groupby(index.floor("h")).mean()
        sky_h = pd.Series(sky, index=index).groupby(index.floor("h")).mean()
        true_h = truth.reindex(index).groupby(index.floor("h")).mean()
        assert (hourly <= np.maximum(true_h, sky_h) + 1e-9).all()
    issued = latest_issue(NOW, source.spec)
    before = pd.date_range(issued - 2 * HOUR, periods=8, freq="15min")
    assert np.isnan(source.at(NOW, before)).all()
    past = pd.date_range(issued + source.spec.max_lead_h * HOUR, periods=4, freq="15min")
    assert np.isnan(source.at(NOW, past)).all()


@settings(max_examples=60, deadline=None)
@given(minutes=st.integers(min_value=0, max_value=6 * 60 - 1))
def test_one_issue_serves_until_the_next_is_delivered(minutes: int) -> None:
    """Every ``now`` between an issue's delivery and the next one's gets the same values on
    the same quarter hours; the next delivery changes them."""
    source = SyntheticSolarForecast(_pv())
    delivered = pd.Timestamp("2023-06-12T09:00Z")  # the 06 UTC run, 3 h later
    index = pd.date_range("2023-06-13T04:00Z", periods=4 * 12, freq="15min")
    first = source.at(delivered, index)
    now = delivered + pd.Timedelta(minutes=minutes)
    assert np.array_equal(source.at(now, index), first)
    assert not np.array_equal(source.at(delivered + 6 * HOUR, index), first)


def test_same_seed_same_issues_another_seed_others() -> None:
    index = pd.date_range("2023-06-13T04:00Z", periods=4 * 12, freq="15min")
    a = SyntheticSolarForecast(_pv(), ForecastSpec(seed=7)).at(NOW, index)
    b = SyntheticSolarForecast(_pv(), ForecastSpec(seed=7)).at(NOW, index)
    c = SyntheticSolarForecast(_pv(), ForecastSpec(seed=8)).at(NOW, index)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_first_day_skill_is_about_half_of_day_ahead_persistence() -> None:
    """The error spread's calibration (vpp.weather.PV_ERROR_BY_LEAD): on the shipped
    typical-year GHI of Leipzig, hourly, the forecasts 24-48 h after their issue have an RMSE
    of 0.4-0.65 of day-ahead persistence's (Perez et al. 2013: about half for the best
    NWP-based forecasts), and are nearly unbiased (mean error within 5 % of the mean)."""
    ghi = _year(2018)["ghi_w_per_m2"]
    source = SyntheticSolarForecast(ghi)
    hourly = ghi.groupby(pd.DatetimeIndex(ghi.index).floor("h")).mean()
    errors, persistence = [], []
    for issued in pd.date_range("2018-03-01T00:00Z", "2018-10-31T00:00Z", freq="30h"):
        issued = issued.floor("6h")
        now = issued + pd.Timedelta(hours=3)
        index = pd.date_range(issued + 24 * HOUR, periods=4 * 24, freq="15min")
        got = pd.Series(source.at(now, index), index=index)
        got_h = got.groupby(index.floor("h")).mean()
        true_h = hourly.reindex(got_h.index).to_numpy()
        lag_h = hourly.reindex(got_h.index - 24 * HOUR).to_numpy()
        day = true_h > 0
        errors += list(got_h.to_numpy()[day] - true_h[day])
        persistence += list(lag_h[day] - true_h[day])
    err, pers = np.array(errors), np.array(persistence)
    ratio = float(np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(pers**2)))
    assert 0.4 <= ratio <= 0.65, ratio
    assert abs(err.mean()) < 0.05 * hourly[hourly > 0].mean()


class _Exact:
    """An issued forecast equal to the truth (a test's stand-in for a perfect service)."""

    def __init__(self, truth: pd.Series) -> None:
        self.truth = truth

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
        return self.truth.reindex(index).to_numpy(dtype=float)


class _Dark:
    """An issued forecast of no PV at all."""

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
        return np.zeros(len(index))


def test_the_weight_follows_the_track_record() -> None:
    """A perfect issue weighs 1, one that never sees PV close to 0, the synthetic one in
    between; with too few scored days the two are weighed equally."""
    truth = _pv()
    cutoff = pd.Timestamp("2023-06-12T00:00Z")
    known = known_series(truth, cutoff)
    cfg = ForecastSettings()
    assert issued_solar_weight(known, _Exact(truth), cutoff, cfg) == 1.0
    assert issued_solar_weight(known, _Dark(), cutoff, cfg) < 0.2
    synthetic = issued_solar_weight(known, SyntheticSolarForecast(truth), cutoff, cfg)
    assert 0.2 < synthetic < 1.0
    short = known[known.index >= cutoff - pd.Timedelta(days=2)]
    assert issued_solar_weight(short, _Exact(truth), cutoff, cfg) == 0.5


@settings(max_examples=25, deadline=None)
@given(
    hours=st.integers(min_value=0, max_value=47),
    value=st.one_of(st.floats(0.0, 2000.0), st.just(float("nan"))),
)
def test_the_weight_reads_nothing_from_the_cutoff_on(hours: int, value: float) -> None:
    """The measured PV from the cutoff on (changed at random, or missing) never changes the
    weight; the issues it scores are those usable at the start of each past day."""
    truth = _pv()
    cutoff = pd.Timestamp("2023-06-12T00:00Z")
    cfg = ForecastSettings()
    base = issued_solar_weight(known_series(truth, cutoff), _Exact(truth), cutoff, cfg)
    changed = truth.copy()
    changed.loc[cutoff + hours * HOUR :] = value
    got = issued_solar_weight(known_series(changed, cutoff), _Exact(changed), cutoff, cfg)
    assert got == base


def test_the_forecast_takes_the_issue_by_its_weight() -> None:
    """With the nowcast off: weight 1 gives the issue, weight 0 the rules, 0.3 the mix,
    wherever the issue has a value; past the issue's last hour the rules stay."""
    data = _year()
    history = data.loc[NOW - pd.Timedelta(days=8) : NOW + pd.Timedelta(days=6)]
    cfg = ForecastSettings(solar_nowcast_h=0.0)
    horizon = timedelta(hours=36)

    def pv(weight: float | None, solar: object = None, h: timedelta = horizon) -> np.ndarray:
        frame = forecast(history, NOW, h, settings=cfg, solar=solar, solar_weight=weight)  # type: ignore[arg-type]
        return frame[PV_COLUMN].to_numpy()

    source = SyntheticSolarForecast(data[PV_COLUMN])
    index = pd.date_range(NOW, periods=4 * 36, freq="15min")
    issued = source.at(NOW, index)
    rules = pv(None)
    assert np.allclose(pv(1.0, source), issued)
    assert np.array_equal(pv(0.0, source), rules)
    assert np.allclose(pv(0.3, source), 0.3 * issued + 0.7 * rules)
    assert not np.allclose(rules, issued)
    # An issue that reaches 12 h past its run: from there on the rules stay.
    short = SyntheticSolarForecast(data[PV_COLUMN], ForecastSpec(max_lead_h=12))
    a = pv(1.0, short)
    lead = (index - latest_issue(NOW, short.spec)) / HOUR
    beyond = np.asarray(lead >= 12)
    assert beyond.any() and (~beyond).any()
    assert np.array_equal(a[beyond], rules[beyond])
    assert np.allclose(a[~beyond], short.at(NOW, index)[~beyond])


def test_replayed_plans_take_the_issued_pv_and_the_rules_stay_on_request() -> None:
    """The controller replayed on a June morning of 2023: with ``[forecast] pv = "issued"``
    (the default) its plans' PV differs from the rules' (``pv = "rules"``), and the quarter
    hour ahead's PV error is scored for both (replay's determinism with it:
    tests/vpp/replay/test_determinism.py)."""
    from datetime import date

    from tests.vpp.replay.conftest import small_site
    from vpp.replay.baselines import CONTROLLER
    from vpp.replay.data import read_replay_inputs
    from vpp.replay.parallel import make_jobs, run_jobs
    from vpp.replay.runner import ReplayOptions

    day = date(2023, 6, 14)
    steps = 44  # to 11:00 local: six hours of daylight

    def replay(pv: str) -> pd.DataFrame:
        site = small_site()
        assert site.forecast.pv == "issued"
        site = site.model_copy(update={"forecast": site.forecast.model_copy(update={"pv": pv})})
        data = read_replay_inputs(site, day, day)
        jobs = make_jobs(site, data, [day], ReplayOptions(max_steps=steps, chain_days=1))
        result = run_jobs(jobs, workers=1)[0]
        assert result.kpis[CONTROLLER]["forecast_steps"] == steps
        frame: pd.DataFrame = result.frames[CONTROLLER]
        return frame

    issued, rules = replay("issued"), replay("rules")
    column = "planned_pv_available_w"
    daylight = issued[column] > 0
    assert daylight.sum() >= 16
    assert not np.allclose(issued[column], rules[column])


def test_a_live_source_keeps_the_days_the_weight_is_scored_on() -> None:
    """``vpp run``'s sources keep good data long enough for the day's first plan to score
    the issued PV forecasts on the same days as replay does."""
    from vpp.sources.resilient import DEFAULT_RETAIN

    assert issued_history(ForecastSettings()) <= DEFAULT_RETAIN


class _PastOnly:
    """A real source that answers only up to ``now`` (as a live feed of measurements)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner.inner  # type: ignore[attr-defined]
        self.name, self.columns = "past", self.inner.columns

    def fetch(self, start: object, end: object, now: object) -> pd.DataFrame:
        frame: pd.DataFrame = self.inner.fetch(start, end, now)
        return frame[frame.index < pd.Timestamp(now)]  # type: ignore[arg-type]


async def test_vpp_run_weighs_issued_pv_only_where_its_inputs_hold_pv_ahead() -> None:
    """``vpp run`` on the demo's historic file (PV ahead known): the day's plans weigh the
    issued PV forecasts (the weight shown in the state); on a source that knows only the
    past there is nothing to issue from, the rules plan alone and no weight is shown."""
    from datetime import UTC, datetime

    from vpp.sources import ResilientSource
    from vpp.testing.harness import plant, small_site

    site = small_site()
    async with plant(site, datetime(2026, 6, 21, 10, 0, tzinfo=UTC)) as p:
        assert await p.ctl.run_job("poll")
        assert await p.ctl.run_job("plan")
        weight = p.ctl.state.pv_issued_weight
        assert weight is not None and 0.0 <= weight <= 1.0 and weight != 0.5
        provider = p.ctl.inputs
        provider.sources[0] = ResilientSource(_PastOnly(provider.sources[0]))
        p.clock.advance(900)
        assert await p.ctl.run_job("plan")
        assert p.ctl.state.pv_issued_weight is None
        assert p.ctl.state.plan is not None and p.ctl.state.plan.info.status == "optimal"
