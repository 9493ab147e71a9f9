"""Replay does not depend on how busy the machine is.

Live planning gives HiGHS a wall-clock limit: a slow solve falls back to the rule plan. In
replay the same limit would make a replayed day's plans, and its figures, depend on the
machine's load. Replay therefore plans without a wall-clock limit and with a work limit
instead (``optimizer.params.DETERMINISTIC``: simplex iterations), which gives the same answer
on any machine.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

from optimizer.inputs import State
from optimizer.params import DETERMINISTIC, SolveOptions
from optimizer.planner import Planner
from tests.vpp.replay.conftest import SAMPLE_DAYS, small_site
from vpp.control.world import truth_frame
from vpp.replay.baselines import CONTROLLER, ORACLE
from vpp.replay.parallel import make_jobs, run_jobs
from vpp.replay.runner import DayResult, ReplayOptions, day_index

#: Far below what any solve takes: a wall-clock limit this small cuts every live solve.
TINY_S = 1e-9
STEPS = 8


def _replay(time_limit_s: float, data: pd.DataFrame, day: date) -> DayResult:
    site = small_site(time_limit_s=time_limit_s)
    options = ReplayOptions(max_steps=STEPS, keep_traces=True)
    return run_jobs(make_jobs(site, data, [day], options), workers=1)[0]


def test_a_replay_under_a_tiny_wall_clock_budget_gives_the_same_result(
    data: pd.DataFrame,
) -> None:
    """The site's time limit cut to a nanosecond changes nothing in a replay: the same
    plans (none a fallback), the same setpoints, the same figures."""
    day = SAMPLE_DAYS[0]
    roomy = _replay(60.0, data, day)
    tiny = _replay(TINY_S, data, day)
    for result in (roomy, tiny):
        for strategy in (CONTROLLER, ORACLE):
            assert result.kpis[strategy]["plans"] >= 1
            assert result.kpis[strategy]["fallback_plans"] == 0
    np.testing.assert_equal(tiny.kpis, roomy.kpis)
    for name, frame in roomy.frames.items():
        pd.testing.assert_frame_equal(tiny.frames[name], frame)


def _forecast(data: pd.DataFrame, day: date) -> tuple[pd.Timestamp, pd.DataFrame]:
    site = small_site()
    start = day_index(site, day)[0]
    window = data[(data.index >= start) & (data.index < start + pd.Timedelta(hours=30))]
    return start, truth_frame(site, window)


def test_the_same_budget_cuts_a_live_plan(data: pd.DataFrame) -> None:
    """What the replay above is immune to: a live planner with that budget falls back."""
    start, forecast = _forecast(data, SAMPLE_DAYS[0])
    site = small_site(time_limit_s=TINY_S)
    plan = Planner(site).plan(State.from_site(site), forecast, start)
    assert plan.info.status == "fallback"
    assert "time limit" in (plan.info.fallback_reason or "")
    replayed = Planner(site, options=DETERMINISTIC).plan(State.from_site(site), forecast, start)
    assert replayed.info.status == "optimal"


def test_the_work_limit_cuts_a_solve_the_same_way_every_time(data: pd.DataFrame) -> None:
    """A work limit too small for the LP fails the solve by iterations, not by time, and
    gives the same fallback plan each time."""
    start, forecast = _forecast(data, SAMPLE_DAYS[0])
    site = small_site()
    options = SolveOptions(time_limit_s=math.inf, iteration_limit=1)
    plans = [Planner(site, options=options).plan(State.from_site(site), forecast, start)]
    plans.append(Planner(site, options=options).plan(State.from_site(site), forecast, start))
    for plan in plans:
        assert plan.info.status == "fallback"
        assert plan.info.fallback_reason == "iteration limit of 1 reached"
    pd.testing.assert_frame_equal(plans[0].frame, plans[1].frame)
    # The limit is per call: the next solve without it is optimal again.
    planner = Planner(site, options=options)
    planner.plan(State.from_site(site), forecast, start)
    again = planner.plan(State.from_site(site), forecast, start, DETERMINISTIC)
    assert again.info.status == "optimal"
