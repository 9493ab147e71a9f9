"""Dry-run (shadow mode) and a failing input source: the controller plans on regardless."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from adapters.sim.battery import BatteryState
from vpp.sources import ResilientSource
from vpp.testing.harness import plant, small_site

START = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


async def test_dry_run_computes_and_records_but_writes_nothing() -> None:
    site = small_site()
    async with plant(site, START) as p:
        p.ctl.state.dry_run = True
        for job in ("poll", "plan", "dispatch"):
            assert await p.ctl.run_job(job)
        statuses = p.ctl.state.setpoints
        assert set(statuses) >= {b.id for b in site.batteries}
        assert all(s.dry_run and s.written_w is None for s in statuses.values())
        # The devices never saw a write: no storage mode, no PV limit enabled.
        for bat in site.batteries:
            sim = p.fleet.device(bat.id)
            assert isinstance(sim.state, BatteryState) and not sim.state.remote
            assert not sim.writes
        assert not any(p.fleet.device(pv.id).writes for pv in site.pv)


class _FlakySource:
    """A real source whose fetches start failing after the first one."""

    def __init__(self, inner: ResilientSource) -> None:
        self.inner, self.calls = inner.inner, 0
        self.name, self.columns = "prices", inner.inner.columns

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("transparency platform unreachable")
        return self.inner.fetch(start, end, now)


async def test_failing_source_keeps_last_good_data_and_the_plan_goes_on() -> None:
    site = small_site()
    async with plant(site, START) as p:
        provider = p.ctl.inputs
        wrapped = provider.sources[0]
        provider.sources[0] = ResilientSource(_FlakySource(wrapped), events=provider._on_event)
        await p.ctl.run_job("poll")
        assert await p.ctl.run_job("plan")
        first = p.ctl.state.plan
        p.clock.advance(900)
        assert await p.ctl.run_job("plan")
        st = p.ctl.state
        assert st.plan is not first and st.plan.info.status == "optimal"
        status = st.sources["prices"]
        assert status.stale and status.failures == 1 and "unreachable" in (status.last_error or "")
        events = [e for e in st.events if e.kind == "source_failed"]
        assert len(events) == 1 and "unreachable" in events[0].message
        # The plan used the kept prices: the overlapping steps price the same.
        common = first.frame.index.intersection(st.plan.frame.index)
        assert len(common) > 80
        col = "price_import_eur_per_mwh"
        assert (first.frame.loc[common, col] == st.plan.frame.loc[common, col]).all()
        assert st.plan.frame.index[-1] - st.plan.frame.index[0] >= timedelta(hours=20)
