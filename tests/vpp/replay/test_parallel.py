"""Days replayed on a Dask distributed cluster give what local processes give, chains
included."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vpp.core.site import Site
from vpp.replay.parallel import days_between, make_jobs, replay, run_jobs
from vpp.replay.runner import ReplayOptions

#: Two chains: the 16th and 17th, then the 18th.
DAYS = (date(2018, 5, 16), date(2018, 5, 17), date(2018, 5, 18))


def test_dask_local_cluster_equals_local_processes(site: Site) -> None:
    distributed = pytest.importorskip("distributed")
    from vpp.replay.data import read_replay_inputs

    data = read_replay_inputs(site, DAYS[0], DAYS[-1])
    options = ReplayOptions(max_steps=8, chain_days=2)
    local = run_jobs(make_jobs(site, data, DAYS, options), workers=2)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = replay(site, data, DAYS[0], DAYS[-1], options, dask=cluster.scheduler_address)
    assert [r.day for r in remote.days] == list(DAYS)
    for mine, theirs in zip(local, remote.days, strict=True):
        np.testing.assert_equal(theirs.kpis, mine.kpis)  # NaN == NaN here
        for name, frame in mine.frames.items():
            pd.testing.assert_frame_equal(theirs.frames[name], frame)
    assert remote.engine.startswith("dask")


def test_days_between() -> None:
    assert days_between(date(2018, 3, 24), date(2018, 3, 26)) == [
        date(2018, 3, 24),
        date(2018, 3, 25),
        date(2018, 3, 26),
    ]
    with pytest.raises(ValueError, match="before"):
        days_between(date(2018, 3, 26), date(2018, 3, 24))
