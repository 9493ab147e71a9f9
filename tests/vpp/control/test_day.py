"""End to end: the controller runs a simulated plant over a day on a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.sim.battery import BatteryState
from adapters.sim.meter import MeterState
from vpp.control.runner import step
from vpp.core.site import Site
from vpp.testing.harness import demo_site, plant, small_site

START = datetime(2026, 6, 21, 0, 0, tzinfo=UTC)


@pytest.mark.slow
@pytest.mark.parametrize(
    "site",
    [
        pytest.param(small_site(), id="small-site-poll-60s"),
        pytest.param(
            demo_site(
                poll={"interval_s": 300.0},
                run={"correction_interval_s": 300.0, "correction_deadband_w": 10_000.0},
            ),
            id="demo-district-poll-300s",
        ),
    ],
)
async def test_a_day_of_control(site: Site) -> None:
    grid_seen: list[float] = []
    follow_errors: list[float] = []
    async with plant(site, START) as p:
        meter = p.fleet.device(site.grid.meter)
        await p.ctl.run_job("poll")
        await p.ctl.run_job("plan")
        await p.ctl.run_job("dispatch")

        def advance(now: datetime) -> None:
            p.fleet.step()
            state = meter.state
            assert isinstance(state, MeterState)
            grid_seen.append(state.grid_w)
            for bat in site.batteries:
                sim = p.fleet.device(bat.id).state
                assert isinstance(sim, BatteryState)
                sp = p.ctl.state.setpoints.get(bat.id)
                soc_ok = bat.soc_min_pct + 1 < sim.soc_pct < bat.soc_max_pct - 1
                if sp is not None and sp.ok and soc_ok:
                    follow_errors.append(abs(sim.power_w - sp.requested_w))

        await step(p.ctl, p.clock, START + timedelta(days=1), before_jobs=advance)
        st = p.ctl.state
        assert st.plans_total >= 96
        assert st.fallbacks_total == 0
        runs = {name: st.job(name).runs for name in ("poll", "plan", "dispatch")}
        assert runs["dispatch"] >= 96 and runs["poll"] >= 86400 / site.poll.interval_s
        assert all(st.job(n).failures == 0 for n in st.jobs), {
            n: j.last_error for n, j in st.jobs.items()
        }
        written = [s for s in st.setpoints.values() if s.written_w is not None]
        assert len(written) == len(site.batteries) + len(site.pv) + 1
        assert all(s.ok for s in written), [s.message for s in written if not s.ok]
        assert not st.readback_mismatches_total
    # Batteries follow their setpoints (within the SoC window) and the grid stays in limits.
    assert follow_errors and max(follow_errors) < 50.0
    assert max(grid_seen) <= site.grid.import_limit_w + 1.0
    assert min(grid_seen) >= -site.grid.export_limit_w - 1.0
