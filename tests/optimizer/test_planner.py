"""Re-planning with the built model: same answers as a fresh build, less time."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner, plan
from optimizer.synthetic import synthetic_forecast, synthetic_site

START = pd.Timestamp("2024-03-04T00:00Z")


@pytest.fixture(scope="module")
def site() -> object:
    s = synthetic_site(10, 10, feeders=2, seed=8)
    return s.model_copy(update={"optimizer": s.optimizer.model_copy(update={"horizon_h": 12})})


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_replan_reuses_the_model_and_matches_a_fresh_build(site: object, builder: str) -> None:
    options = SolveOptions(builder=builder)  # type: ignore[arg-type]
    planner = Planner(site, options=options)
    state = State.from_site(site)
    first = planner.plan(state, synthetic_forecast(site, START, 80, seed=1), START)
    assert not first.info.reused_model
    later = START + pd.Timedelta(minutes=15)
    forecast = synthetic_forecast(site, START, 80, seed=2)
    socs = {k: v * 0.9 for k, v in state.battery_soc_wh.items()}
    moved = State(battery_soc_wh=socs, store_wh=1.5e6)
    again = planner.plan(moved, forecast, later)
    fresh = plan(site, moved, forecast, later, options)
    assert again.info.reused_model and not fresh.info.reused_model
    assert again.info.objective_eur == pytest.approx(fresh.info.objective_eur, rel=1e-7)
    pd.testing.assert_index_equal(again.frame.index, fresh.frame.index)


def test_structure_change_rebuilds(site: object) -> None:
    planner = Planner(site)
    forecast = synthetic_forecast(site, START, 80, seed=1)
    planner.plan(State.from_site(site), forecast, START)
    every_battery = frozenset(b.id for b in site.batteries)
    gone = planner.plan(State(offline=every_battery), forecast, START)
    assert not gone.info.reused_model
    assert gone.info.n_units["battery"] == 0
    back = planner.plan(State.from_site(site), forecast, START)
    assert not back.info.reused_model and back.info.status == "optimal"


def test_planning_writes_nothing_to_the_console(
    site: object,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """HiGHS runs silently and the process's stdout/stderr are never redirected, so a
    controller's log lines from other threads are not lost while a plan is made."""
    Planner(site).plan(State.from_site(site), synthetic_forecast(site, START, 80, seed=3), START)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
