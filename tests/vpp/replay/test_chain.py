"""Chains of days: each strategy starts a day where it ended the day before, a chain's first
day is the day on its own, and the stored energy's values over a chain add up."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from optimizer.params import OptimizerParams
from vpp.core.site import Site
from vpp.replay import plant as k
from vpp.replay.baselines import BOUND, CONTROLLER, NO_CONTROL, STRATEGIES
from vpp.replay.data import read_replay_inputs
from vpp.replay.kpi import storage_prices
from vpp.replay.layout import plant_params
from vpp.replay.parallel import chains, make_jobs, run_jobs
from vpp.replay.runner import DayJob, DayResult, ReplayOptions

from .conftest import SAMPLE_DAYS

FIRST = SAMPLE_DAYS[0]
CHAIN = (FIRST, FIRST + timedelta(days=1))


@pytest.fixture(scope="module")
def chained(site: Site) -> list[DayResult]:
    """Two whole days in one chain, traces kept."""
    data = read_replay_inputs(site, CHAIN[0], CHAIN[-1])
    options = ReplayOptions(keep_traces=True, chain_days=2)
    return run_jobs(make_jobs(site, data, CHAIN, options), workers=1)


def test_chains_group_consecutive_days_up_to_the_length(site: Site) -> None:
    empty = pd.DataFrame()
    first = date(2018, 3, 1)
    days = [first + timedelta(days=i) for i in (0, 1, 2, 3, 4, 6, 7, 9)]
    jobs = [DayJob(site, d, empty, ReplayOptions(chain_days=3)) for d in reversed(days)]
    got = [[j.day.day for j in chain] for chain in chains(jobs)]
    assert got == [[1, 2, 3], [4, 5], [7, 8], [10]]
    alone = [DayJob(site, d, empty, ReplayOptions(chain_days=1)) for d in days]
    assert [len(c) for c in chains(alone)] == [1] * len(days)
    with pytest.raises(ValueError, match="chain_days"):
        ReplayOptions(chain_days=0)


def test_month_chains_start_again_on_the_first(site: Site) -> None:
    empty = pd.DataFrame()
    days = [date(2018, 1, 22) + timedelta(days=i) for i in range(18)]  # to 8 February
    options = ReplayOptions(chain_days=7, month_chains=True)
    jobs = [DayJob(site, d, empty, options) for d in days]
    got = [[j.day.isoformat() for j in c] for c in chains(jobs)]
    assert [(c[0], c[-1]) for c in got] == [
        ("2018-01-22", "2018-01-28"),
        ("2018-01-29", "2018-01-31"),
        ("2018-02-01", "2018-02-07"),
        ("2018-02-08", "2018-02-08"),
    ]
    across = [DayJob(site, d, empty, ReplayOptions(chain_days=7)) for d in days]
    assert [len(c) for c in chains(across)] == [7, 7, 4]


#: Figures that depend on the whole chain: the bound is solved over it at once.
CHAIN_WIDE = (
    "bound_cost_eur",
    "regret_eur",
    "bound_gap_eur",
    "grid_limits_eur",
    "share_vs_no_control_pct",
    "share_vs_self_consumption_pct",
)


def _own(kpis: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        name: {c: v for c, v in row.items() if c not in CHAIN_WIDE}
        for name, row in kpis.items()
        if name != BOUND
    }


def test_first_day_of_a_chain_is_the_day_on_its_own(
    chained: list[DayResult], sample: dict[date, DayResult]
) -> None:
    """Every strategy's own figures; the bound's depend on the whole chain."""
    np.testing.assert_equal(_own(chained[0].kpis), _own(sample[FIRST].kpis))


def test_the_bound_holds_over_the_chain(chained: list[DayResult]) -> None:
    """Over the chain, solved at once: every strategy costs at least the bound ending where
    it ended, the controller loses less to it than no control, and the bound's days add up
    to its one solve."""
    rows = {
        name: {c: sum(d.kpis[name][c] for d in chained) for c in ("cost_eur", "regret_eur")}
        for name in (*STRATEGIES, BOUND)
    }
    gap = max(d.kpis[n]["bound_gap_eur"] for d in chained for n in (*STRATEGIES, BOUND))
    assert gap < 0.01
    # The solvers' tolerances, as in test_replay.test_cost_ordering: the bound's certified
    # gap and the controller's 1 W flows over the chain at its dearest import.
    frames = [d.frames[CONTROLLER] for d in chained]
    dearest = max(float(f["price_import_eur_per_mwh"].abs().max()) for f in frames)
    hours = sum(len(f) for f in frames) * 0.25
    tol = gap + OptimizerParams().tolerance_w * hours * dearest / 1e6 + 1e-6
    for name, row in rows.items():
        assert row["regret_eur"] >= -tol, (name, row)
    assert rows[CONTROLLER]["regret_eur"] <= rows[NO_CONTROL]["regret_eur"] + tol, rows
    # Held to the site's grid limits (widened to the controller's exchange), the bound
    # costs no less, and no more than the controller (its own certificate's cent added).
    limits = sum(d.kpis[CONTROLLER]["grid_limits_eur"] for d in chained)
    assert limits >= -tol - 0.01
    assert rows[CONTROLLER]["regret_eur"] - limits >= -tol - 0.01, (limits, rows)
    assert rows[BOUND]["cost_eur"] == pytest.approx(
        sum(d.kpis[CONTROLLER]["bound_cost_eur"] for d in chained), rel=1e-12
    )
    # The chain's bound sees both days: it is not the sum of the days' own bounds.
    assert chained[0].kpis[BOUND]["regret_eur"] == 0.0


def test_next_day_starts_where_the_day_before_ended(chained: list[DayResult], site: Site) -> None:
    params = plant_params(site)
    one, two = chained
    assert one.traces is not None and two.traces is not None
    for name, tr in two.traces.items():
        before = one.traces[name]
        soc0, store0 = before.bat_soc_wh[-1], float(before.out[-1, k.O_STORE])
        np.testing.assert_array_equal(one.ends[name].soc_wh, soc0)
        # The day's first step moves on from the last day's end: store and every battery.
        store = np.concatenate([[store0], tr.out[:, k.O_STORE]])
        inflow = (tr.out[:, k.O_STORE_CH] - tr.out[:, k.O_STORE_DIS]) * params.dt_h
        np.testing.assert_allclose(
            store[1:], params.heat[k.H_KEEP] * store[:-1] + inflow, atol=1e-3, err_msg=name
        )
        soc = np.vstack([soc0, tr.bat_soc_wh])
        eta_c, eta_d = params.bat[:, k.B_ETA_C], params.bat[:, k.B_ETA_D]
        step = (tr.bat_ch_w * eta_c - tr.bat_dis_w / eta_d) * params.dt_h
        np.testing.assert_allclose(soc[1:], soc[:-1] + step, atol=1e-6, err_msg=name)
    # Not the site file's initial state: the chain carried something else.
    assert not np.allclose(one.ends["controller"].soc_wh, params.soc0_wh)


def test_storage_values_of_a_chain_add_up(chained: list[DayResult], site: Site) -> None:
    params = plant_params(site)
    for name in chained[0].kpis:
        first, last = chained[0], chained[-1]
        assert first.inputs is not None and last.inputs is not None
        opening = storage_prices(site, params, first.inputs).value_eur(
            params.soc0_wh, params.store0_wh
        )
        end = last.ends[name]
        closing = storage_prices(site, params, last.inputs).value_eur(end.soc_wh, end.store_wh)
        total = sum(r.kpis[name]["storage_value_eur"] for r in chained)
        assert total == pytest.approx(closing - opening, abs=1e-9), name
