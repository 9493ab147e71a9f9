"""Chains of days: each strategy starts a day where it ended the day before, a chain's first
day is the day on its own, and the stored energy's values over a chain add up."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from vpp.core.site import Site
from vpp.replay import plant as k
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


def test_first_day_of_a_chain_is_the_day_on_its_own(
    chained: list[DayResult], sample: dict[date, DayResult]
) -> None:
    np.testing.assert_equal(chained[0].kpis, sample[FIRST].kpis)


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
