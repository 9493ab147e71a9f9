"""Rolling-day forecast scores for the metrics of vpp run: each plan's forecast for the
quarter hour ahead against the value the inputs later measured, in the site's units."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpp.control.scores import ForecastScores, site_values_frame
from vpp.core.site import read_site
from vpp.data import read_inputs, shipped_inputs
from vpp.learned import bands_frame

ROOT = Path(__file__).resolve().parents[3]
Q = pd.Timedelta(minutes=15)


@pytest.fixture(scope="module")
def inputs() -> pd.DataFrame:
    return read_inputs(shipped_inputs(2018), "2018-02-01T00:00Z", "2018-02-04T00:00Z")


def test_scores_against_what_was_then_measured(inputs: pd.DataFrame) -> None:
    site = read_site(ROOT / "config" / "demo.toml")
    scores = ForecastScores(site)
    start = pd.Timestamp("2018-02-02T00:00Z")
    truth = site_values_frame(site, inputs)
    for k in range(8):  # eight plans, each with a forecast 10 % high and a band of +-20 %
        step = start + k * Q
        raw = inputs.loc[[step]].copy()
        cols = ["load_w_per_mwh_a", "pv_w_per_kwp", "heat_w_per_mwh_a"]
        raw[cols] *= 1.1
        band = {c: np.vstack([raw[c] * 0.8, raw[c], raw[c] * 1.2]) for c in cols}
        scores.observe(inputs[inputs.index < step], step)
        scores.expect(raw, bands_frame(pd.DatetimeIndex(raw.index), band))
    got = scores.summary()
    assert got["heat"]["steps"] == 7.0  # the last plan's quarter hour is not measured yet
    heat = truth["heat_demand_th_w"].loc[start : start + 6 * Q].to_numpy()
    assert got["heat"]["mae_w"] == pytest.approx(0.1 * heat.mean())
    # 1.1 y forecast, truth y: pinball 0.9 * 0.1y (P10 at 0.88 y: truth above: 0.1 * 0.12 y),
    # P50 0.5 * 0.1 y, P90 (1.32 y) 0.1 * 0.32 y: mean (0.012 + 0.05 + 0.032) / 3 y.
    assert got["heat"]["pinball_w"] == pytest.approx((0.012 + 0.05 + 0.032) / 3 * heat.mean())
    assert got["heat"]["coverage_ratio"] == 1.0
    # The night has no PV: a perfect zero forecast.
    assert got["pv"]["mae_w"] == 0.0
    # A day later the scores have left the window.
    later = start + timedelta(days=1, hours=3)
    scores.observe(inputs[inputs.index < later], later)
    assert scores.summary() == {}


def test_co2_intensity_scored_where_it_was_measured(inputs: pd.DataFrame) -> None:
    """The CO2 intensity forecast (a point forecast, g/kWh) against the measured intensity:
    MAE and bias over the scored quarter hours; a quarter hour without a measured intensity
    (zero in the inputs) is not scored; the window forgets them as the other scores."""
    site = read_site(ROOT / "config" / "demo.toml")
    scores = ForecastScores(site)
    start = pd.Timestamp("2018-02-02T00:00Z")
    known = inputs.copy()
    known.loc[start + 2 * Q, "co2_g_per_kwh"] = 0.0  # no measured intensity here
    for k in range(6):
        step = start + k * Q
        raw = inputs.loc[[step]].copy()
        raw["co2_g_per_kwh"] *= 1.1
        scores.observe(known[known.index < step], step)
        scores.expect(raw, None)
    truth = inputs["co2_g_per_kwh"].loc[[start + k * Q for k in (0, 1, 3, 4)]].to_numpy()
    assert truth.min() > 0
    got = scores.co2()
    assert got["steps"] == 4.0  # the last quarter hour is not measured yet, one had none
    assert got["mae_gkwh"] == pytest.approx(0.1 * truth.mean())
    assert got["bias_gkwh"] == pytest.approx(0.1 * truth.mean())
    later = start + timedelta(days=1, hours=3)
    scores.observe(known[known.index < later], later)
    assert scores.co2() == {}


def test_rule_forecasts_have_no_coverage(inputs: pd.DataFrame) -> None:
    site = read_site(ROOT / "config" / "demo.toml")
    scores = ForecastScores(site)
    step = pd.Timestamp("2018-02-02T10:00Z")
    scores.expect(inputs.loc[[step]] * 0.5, None)
    scores.observe(inputs[inputs.index <= step], step + Q)
    got = scores.summary()
    assert math.isnan(got["heat"]["coverage_ratio"])
    heat = float(site_values_frame(site, inputs.loc[[step]])["heat_demand_th_w"].iloc[0])
    assert got["heat"]["mae_w"] == pytest.approx(0.5 * heat)
    # A point forecast: pinball over the three quantiles is (0.1 + 0.5 + 0.9) / 3 of the error.
    assert got["heat"]["pinball_w"] == pytest.approx(0.5 * 0.5 * heat)


def test_vpp_run_metrics_score_the_forecasts_the_plans_used() -> None:
    """The controller with a metrics collector (as vpp run builds it) and learned forecasts,
    stepped over two hours of a February day: the scraped MAE of the heat forecast is the
    mean over the scored quarter hours of |planned - what the plant then had|, and the
    P10-P90 coverage is exported."""
    from datetime import date

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from tests.vpp.replay.conftest import small_site
    from vpp.metrics import Metrics
    from vpp.replay import plant as k
    from vpp.replay.data import read_replay_inputs
    from vpp.replay.drive import day_trace, run_controller
    from vpp.replay.layout import plant_inputs, plant_params
    from vpp.replay.runner import day_index
    from vpp.replay.trace import PLANNED_COLUMNS

    site = small_site()
    site = site.model_copy(
        update={"forecast": site.forecast.model_copy(update={"method": "learned"})}
    )
    day, steps = date(2018, 2, 14), 8
    raw = read_replay_inputs(site, day, day)
    truth = plant_inputs(site, raw.loc[day_index(site, day)[:steps]])
    registry = CollectorRegistry()
    made: list[Metrics] = []

    def metrics(state, clock):  # type: ignore[no-untyped-def]
        made.append(Metrics(state, registry, clock))
        return made[-1]

    trace, journal, _ = run_controller(
        site, plant_params(site), truth, raw, "asof", metrics=metrics
    )
    part = day_trace(trace, journal, slice(0, steps))
    planned = part.planned[:, PLANNED_COLUMNS.index("heat_demand_th_w")]
    actual = part.out[:, k.OUTPUT_COLUMNS.index("heat_demand_th_w")]
    samples = {
        (s.name, s.labels.get("quantity")): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    scored = int(samples[("vpp_forecast_scored_steps", "heat")])
    assert 5 <= scored <= steps  # the last one is scored by a plan made at the end, if any
    expected = np.abs(planned[:scored] - actual[:scored]).mean()
    assert samples[("vpp_forecast_mae_watts", "heat")] == pytest.approx(expected, rel=1e-9)
    assert 0.0 <= samples[("vpp_forecast_coverage_ratio", "heat")] <= 1.0
    assert samples[("vpp_forecast_pinball_watts", "heat")] > 0.0
    # The CO2 intensity, measured in every quarter hour of the day: scored as the heat.
    co2_planned = part.planned[:, PLANNED_COLUMNS.index("co2_g_per_kwh")]
    co2_truth = truth.inp[:steps, k.I_CO2]
    assert co2_truth.min() > 0
    co2_error = np.abs(co2_planned[:scored] - co2_truth[:scored]).mean()
    assert samples[("vpp_forecast_co2_mae_grams_per_kilowatt_hour", None)] == pytest.approx(
        co2_error
    )
