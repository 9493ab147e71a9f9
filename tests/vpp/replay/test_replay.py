"""Replayed sample days: energy closes in every step, strategies rank as they must, the same
inputs give the same figures, and nothing decided at ``t`` depends on data after ``t``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from optimizer.params import DETERMINISTIC, OptimizerParams
from optimizer.planner import Planner
from vpp.core.site import Site
from vpp.forecast import PV_COLUMN, Mode, price_known_until
from vpp.replay import plant as k
from vpp.replay.baselines import (
    BOUND,
    CONTROLLER,
    NO_CONTROL,
    ORACLE,
    STRATEGIES,
    run_oracle,
    signal_caps,
)
from vpp.replay.bound import Bound, pv_interval_w
from vpp.replay.drive import day_trace, run_controller
from vpp.replay.kpi import strategy_kpis
from vpp.replay.layout import plant_inputs, plant_params
from vpp.replay.parallel import make_jobs, run_jobs
from vpp.replay.runner import DayResult, ReplayOptions, day_index, raw_window
from vpp.replay.trace import Trace
from vpp.weather import ForecastSpec, SyntheticSolarForecast, SyntheticTemperatureForecast

from .conftest import SAMPLE_DAYS

TOL_W = 1e-6


def _col(out: np.ndarray, name: str) -> np.ndarray:
    return out[:, k.OUTPUT_COLUMNS.index(name)]


@pytest.mark.parametrize("day", SAMPLE_DAYS)
def test_energy_balances_close_in_every_step(
    sample: dict[date, DayResult], site: Site, day: date
) -> None:
    params = plant_params(site)
    dt = params.dt_h
    traces = sample[day].traces
    assert traces is not None and sample[day].inputs is not None
    avail = sample[day].inputs.pv_avail_w
    for name, tr in traces.items():
        o = tr.out
        electric = (
            _col(o, "load_w")
            + _col(o, "heat_pump_el_w")
            + _col(o, "dry_cooler_el_w")
            - tr.pv_w.sum(axis=1)
            - tr.bat_w.sum(axis=1)
        )
        np.testing.assert_allclose(_col(o, "grid_w"), electric, atol=TOL_W, err_msg=name)
        heat_in = (
            _col(o, "heat_pump_th_w")
            + _col(o, "store_discharge_th_w")
            - _col(o, "store_charge_th_w")
            + _col(o, "boiler_th_w")
            + _col(o, "unmet_heat_th_w")
        )
        np.testing.assert_allclose(heat_in, _col(o, "heat_demand_th_w"), atol=TOL_W)
        store = np.concatenate([[params.store0_wh], _col(o, "store_wh")])
        expected = (
            params.heat[k.H_KEEP] * store[:-1]
            + (_col(o, "store_charge_th_w") - _col(o, "store_discharge_th_w")) * dt
        )
        np.testing.assert_allclose(store[1:], expected, atol=1e-3, err_msg=name)
        soc = np.vstack([params.soc0_wh, tr.bat_soc_wh])
        eta_c, eta_d = params.bat[:, k.B_ETA_C], params.bat[:, k.B_ETA_D]
        # Mean discharge and charge (a battery corrected within a step may do both).
        step = -tr.bat_dis_w * dt / eta_d + tr.bat_ch_w * dt * eta_c
        np.testing.assert_allclose(soc[1:], soc[:-1] + step, atol=1e-6, err_msg=name)
        assert (tr.bat_soc_wh <= params.bat[:, k.B_SOC_MAX] + 1e-6).all()
        assert (
            tr.bat_soc_wh >= np.minimum(params.bat[:, k.B_SOC_MIN], params.soc0_wh) - 1e-6
        ).all()
        assert (tr.pv_w <= avail[: tr.steps] + TOL_W).all()
        waste = _col(o, "waste_heat_th_w")
        np.testing.assert_allclose(
            _col(o, "waste_heat_used_th_w") + _col(o, "dry_cooler_th_w"), waste, atol=TOL_W
        )
        assert (_col(o, "unmet_heat_th_w") <= TOL_W).all()


@pytest.mark.parametrize("day", SAMPLE_DAYS)
def test_cost_ordering(sample: dict[date, DayResult], day: date) -> None:
    """bound <= controller <= no control.

    Each strategy costs at least the bound ending where it ended (its regret is >= 0), and
    the controller loses less to the bound than no control does. (Self-consumption need not:
    on a day on its own its round trips can cost more than they save.) No
    valuation of stored energy enters. The tolerance is the solvers': how far the bound's
    optimum lies above its certified dual bound (vpp.replay.bound), plus what the
    controller's own plans may leave undone, flows below ``OptimizerParams.tolerance_w``
    (1 W) over the day at the day's dearest import; together about a cent, far below a
    day's savings. On a day where doing nothing is optimal (January: the heat pump at
    full power all day, no PV surplus) the controller must do as well as doing nothing."""
    kpis = sample[day].kpis
    frame = sample[day].frames[CONTROLLER]
    gap = max(row["bound_gap_eur"] for row in kpis.values())
    dearest = float(frame["price_import_eur_per_mwh"].abs().max())
    hours = len(frame) * 0.25
    tol = gap + OptimizerParams().tolerance_w * hours * dearest / 1e6
    tol += 1e-9 * max(abs(row["cost_eur"]) for row in kpis.values())
    for name in (*STRATEGIES, BOUND):
        assert kpis[name]["regret_eur"] >= -tol, (name, kpis[name]["regret_eur"])
    assert kpis[BOUND]["cost_eur"] <= kpis[CONTROLLER]["cost_eur"] + tol
    regret = {name: kpis[name]["regret_eur"] for name in STRATEGIES}
    assert regret[CONTROLLER] <= regret[NO_CONTROL] + tol, (regret, tol)
    assert tol < 0.05


def _oracle_regret(site: Site, data: pd.DataFrame, day: date) -> tuple[float, float]:
    """The oracle's day on its own as the replay runs it, and its regret against the bound
    ending where it ended, with the bound's solver gap [EUR]."""
    params = plant_params(site)
    inputs = plant_inputs(site, data.loc[day_index(site, day)])
    caps = signal_caps(site, params, inputs)
    planner = Planner(site, options=DETERMINISTIC)
    trace = run_oracle(site, params, inputs, data, planner, caps=caps)
    cost = strategy_kpis(trace, site, params, inputs)["cost_eur"]
    lenient = signal_caps(site, params, inputs, lenient=True)
    pv = pv_interval_w(site, params, inputs, lenient.pv_w)
    bound = Bound(site, params, inputs, pv, lenient)
    solve = bound.solve(trace.bat_soc_wh[-1], float(trace.out[-1, k.O_STORE]))
    return cost - solve.cost_eur, solve.gap_eur


@pytest.mark.parametrize("day", SAMPLE_DAYS)
def test_a_perfect_plan_of_the_whole_day_meets_the_bound(
    site: Site, data: pd.DataFrame, day: date
) -> None:
    """The oracle plans the whole day at once (the test site's horizon is 24 h) with perfect
    foresight and the plant follows it exactly, so no operation ending where it ended is
    cheaper: its regret is zero, to the solver's tolerance. The bound and the plant are the
    same physics.

    The plan's LP relaxes the heat pump's minimum part load, as the bound does; where a plan
    leaves it between 0 and that load the plant raises it, and the plant no longer follows
    the plan (16 May: 9 quarter hours at 6 kW instead of 0.3-2.3 kW, 0.09 EUR). So the heat
    pump here has none, and the plant can follow every plan."""
    spec = site.model_dump(mode="json")
    for device in spec["devices"]:
        if device["kind"] == "heat_pump":
            device["min_part_load_pct"] = 0.0
    regret, gap = _oracle_regret(Site.model_validate(spec), data, day)
    assert abs(regret) <= 1e-3 + gap, regret


def test_every_quarter_hour_is_planned(sample: dict[date, DayResult]) -> None:
    for result in sample.values():
        ctl = result.kpis[CONTROLLER]
        assert ctl["plans"] == ctl["steps"] == 96
        assert ctl["unplanned_steps"] == ctl["failed_plans"] == 0
        assert result.kpis[ORACLE]["plans"] == 1
        assert result.kpis[ORACLE]["capture_pct"] == pytest.approx(100.0)


def test_same_inputs_same_figures(
    sample: dict[date, DayResult], site: Site, data: pd.DataFrame
) -> None:
    """Replayed again in this process, a day gives exactly what a worker process gave."""
    day = SAMPLE_DAYS[0]
    again = run_jobs(make_jobs(site, data, [day], ReplayOptions()), workers=1)[0]
    np.testing.assert_equal(again.kpis, sample[day].kpis)
    for name, frame in sample[day].frames.items():
        pd.testing.assert_frame_equal(again.frames[name], frame)


def _perturb(raw: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    """Every value not yet known at ``t`` changed: measured series from ``t`` on, prices
    from the end of what was published at ``t``."""
    out = raw.copy()
    rng = np.random.default_rng(7)
    later = out.index >= t
    for col in out.columns:
        if col == "price_eur_per_mwh":
            mask = out.index >= price_known_until(t.to_pydatetime())
            out.loc[mask, col] = rng.uniform(-50, 300, int(mask.sum()))
        else:
            factor = rng.uniform(0.3, 1.0, int(later.sum()))
            out.loc[later, col] = out.loc[later, col] * factor
    return out


def _controller(
    site: Site, raw: pd.DataFrame, day: date, steps: int, mode: Mode, **issues: Any
) -> Trace:
    """The live controller over the day's first ``steps`` quarter hours (``issues``: issued
    ``weather`` and ``solar`` forecasts given to it, see :func:`run_controller`)."""
    truth = plant_inputs(site, raw.loc[day_index(site, day)[:steps]])
    trace, journal, _ = run_controller(site, plant_params(site), truth, raw, mode, **issues)
    return day_trace(trace, journal, slice(0, steps))


def _setpoints(
    site: Site, raw: pd.DataFrame, day: date, steps: int, mode: Mode, **issues: Any
) -> np.ndarray:
    return _controller(site, raw, day, steps, mode, **issues).setpoints


class _Scaled:
    """Issued forecasts times ``factor``."""

    def __init__(self, issues: SyntheticSolarForecast, factor: float) -> None:
        self.issues, self.factor = issues, factor

    def at(self, now: pd.Timestamp, index: pd.DatetimeIndex) -> np.ndarray:
        return self.factor * self.issues.at(now, index)


def test_no_peeking(site: Site, data: pd.DataFrame) -> None:
    """asof: changing the data from quarter hour ``t`` on changes no setpoint decided before
    ``t``'s quarter hour began to be felt (and the same change does move a perfect-foresight
    controller, so the test can tell).

    ``t`` is 09:00 local on a May day, so the setpoints compared span the sunrise and the
    morning's PV. The issued temperature and PV forecasts are what a weather service issued
    before ``t`` (made once from the unchanged data and given to both runs): in replay they
    are made from the data ahead, so changing the data would otherwise change issues that
    were delivered before ``t``. That the given PV issues are read is checked too: the same
    run with them halved decides other setpoints before ``t``.

    The plant's minutes interpolate between neighbouring quarter hours, so new data at ``t``
    already shapes the second half of the quarter hour before it: the setpoints compared are
    those in force at the start of every quarter hour up to that one."""
    day = SAMPLE_DAYS[0]
    start, end = raw_window(site, day, day)
    raw = data[(data.index >= start) & (data.index < end)]
    steps = 37
    t = day_index(site, day)[steps - 1]
    assert t.tz_convert("Europe/Berlin").hour == 9
    spec = ForecastSpec(seed=site.forecast.weather_seed)
    solar = SyntheticSolarForecast(raw[PV_COLUMN], spec)
    issues = {"weather": SyntheticTemperatureForecast(raw["outdoor_temp_c"], spec), "solar": solar}
    changed = _perturb(raw, t)
    before = _setpoints(site, raw, day, steps, "asof", **issues)
    after = _setpoints(site, changed, day, steps, "asof", **issues)
    np.testing.assert_array_equal(before[: steps - 1], after[: steps - 1])
    halved = _setpoints(site, raw, day, steps, "asof", **{**issues, "solar": _Scaled(solar, 0.5)})
    assert not np.array_equal(before[: steps - 1], halved[: steps - 1])
    oracle_before = _setpoints(site, raw, day, steps, "perfect")
    oracle_after = _setpoints(site, changed, day, steps, "perfect")
    assert not np.array_equal(oracle_before[: steps - 1], oracle_after[: steps - 1])
    assert t - day_index(site, day)[0] == timedelta(minutes=15 * (steps - 1))


def test_schedule_correction_holds_the_planned_exchange_within_the_quarter(
    site: Site, data: pd.DataFrame
) -> None:
    """With ``run.correction = "schedule"`` the correction every minute pulls the grid
    towards the plan; energy still closes per battery (a corrected battery may discharge and
    charge in one step)."""
    day, steps = SAMPLE_DAYS[0], 60
    start, end = raw_window(site, day, day)
    raw = data[(data.index >= start) & (data.index < end)]

    def replay(interval_s: float) -> tuple[Trace, float]:
        run = site.run.model_copy(
            update={
                "correction": "schedule",
                "correction_interval_s": interval_s,
                "correction_deadband_w": 200.0,
            }
        )
        s = site.model_copy(update={"run": run})
        trace = _controller(s, raw, day, steps, "asof")
        planned = trace.planned[:, 0]
        return trace, float(np.mean(np.abs(trace.out[:, k.O_GRID] - planned)))

    corrected, off_plan = replay(60.0)
    uncorrected, off_plan_before = replay(86_400.0)
    assert uncorrected.stats["corrected_steps"] == 0
    assert corrected.stats["corrected_steps"] >= 5
    assert off_plan < 0.5 * off_plan_before, (off_plan, off_plan_before)
    params = plant_params(site)
    dt = params.dt_h
    eta_c, eta_d = params.bat[:, k.B_ETA_C], params.bat[:, k.B_ETA_D]
    soc = np.vstack([params.soc0_wh, corrected.bat_soc_wh])
    step = -corrected.bat_dis_w * dt / eta_d + corrected.bat_ch_w * dt * eta_c
    np.testing.assert_allclose(soc[1:], soc[:-1] + step, atol=1e-6)
    assert (corrected.bat_ch_w >= 0).all() and (corrected.bat_dis_w >= -1e-9).all()
    grid = (
        _col(corrected.out, "load_w")
        + _col(corrected.out, "heat_pump_el_w")
        + _col(corrected.out, "dry_cooler_el_w")
        - corrected.pv_w.sum(axis=1)
        - corrected.bat_w.sum(axis=1)
    )
    np.testing.assert_allclose(_col(corrected.out, "grid_w"), grid, atol=TOL_W)
