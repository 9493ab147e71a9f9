"""The controller with learned forecasts, replayed: its plans take the learned P50, the
report gets pinball loss and coverage, and the rules stay where history is short."""

from __future__ import annotations

from datetime import date

import numpy as np

from tests.vpp.replay.conftest import small_site
from vpp.replay.baselines import CONTROLLER
from vpp.replay.data import read_replay_inputs
from vpp.replay.parallel import make_jobs, run_jobs
from vpp.replay.runner import DayResult, ReplayOptions

DAY = date(2018, 2, 14)
STEPS = 8


def replay(method: str, day: date = DAY, steps: int = STEPS) -> DayResult:
    site = small_site()
    site = site.model_copy(update={"forecast": site.forecast.model_copy(update={"method": method})})
    data = read_replay_inputs(site, day, day)
    jobs = make_jobs(site, data, [day], ReplayOptions(max_steps=steps, chain_days=1))
    return run_jobs(jobs, workers=1)[0]


def test_learned_plans_use_p50_and_the_report_has_their_spread() -> None:
    rules, learned = replay("rules"), replay("learned")
    ctl, base = learned.kpis[CONTROLLER], rules.kpis[CONTROLLER]
    assert ctl["forecast_steps"] == base["forecast_steps"] == STEPS
    assert ctl["forecast_band_steps"] == STEPS and base["forecast_band_steps"] == 0
    for quantity in ("load", "pv", "heat"):
        assert 0 <= ctl[f"{quantity}_forecast_covered_steps"] <= STEPS
        assert ctl[f"{quantity}_forecast_pinball_mwh"] >= 0
    frame, ruled = learned.frames[CONTROLLER], rules.frames[CONTROLLER]
    # Load plans with the learned P50 (PV too where no issued PV forecast is weighed in:
    # see the next test).
    assert not np.allclose(frame["planned_load_w"], ruled["planned_load_w"])
    # The heat demand's median is the forecast from the issued temperatures through the
    # model the shipped profile is made with (it knows the weather ahead, the learned model
    # does not); the learned band is laid around it (tests/vpp/test_learned.py).
    heat = "planned_heat_demand_th_w"
    np.testing.assert_allclose(frame[heat], ruled[heat], rtol=1e-9)
    assert ctl["heat_forecast_abs_error_mwh"] == base["heat_forecast_abs_error_mwh"]
    # The shipped heat demand is a smooth profile: the median is close to it.
    truth = frame["heat_demand_th_w"]
    assert np.abs(frame[heat] - truth).mean() < 0.1 * truth.mean()


def test_short_history_keeps_the_rules() -> None:
    """Ten days into the file: no learned models yet, plans as with the rules."""
    day = date(2018, 1, 11)
    learned, rules = replay("learned", day), replay("rules", day)
    assert learned.kpis[CONTROLLER]["forecast_band_steps"] == 0
    for name in ("load", "pv", "heat"):
        key = f"{name}_forecast_abs_error_mwh"
        assert learned.kpis[CONTROLLER][key] == rules.kpis[CONTROLLER][key]


def test_with_issued_pv_forecasts_the_learned_pv_band_is_laid_around_them() -> None:
    """A June morning (to 11:00 local): with issued PV forecasts weighed in (the default)
    the plans' PV is the rules' forecast with them, the learned PV band lies around it; the
    load still plans with the learned P50."""
    day, steps = date(2018, 6, 14), 44
    rules, learned = replay("rules", day, steps), replay("learned", day, steps)
    frame, ruled = learned.frames[CONTROLLER], rules.frames[CONTROLLER]
    pv = "planned_pv_available_w"
    assert (ruled[pv] > 0).sum() >= 16
    # Equal but where the learned model holds a dawn quarter hour dark (its clear sky is
    # zero there, the rules' persistence of the days before is not).
    differ = ~np.isclose(frame[pv], ruled[pv], rtol=1e-9)
    assert differ.sum() <= 2 and (frame[pv][differ] == 0.0).all(), frame[pv][differ]
    assert learned.kpis[CONTROLLER]["forecast_band_steps"] == steps
    assert not np.allclose(frame["planned_load_w"], ruled["planned_load_w"])
