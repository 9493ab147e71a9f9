"""The controller keeps going when devices fail, hang or the solver gives up."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from optimizer.params import SolveOptions
from vpp.control.runner import step
from vpp.testing.harness import plant, small_site

START = datetime(2026, 6, 21, 8, 0, tzinfo=UTC)


def _plan_devices(frame_columns: list[str]) -> set[str]:
    return {c.split(".")[0] for c in frame_columns if "." in c}


async def test_dead_gateway_is_excluded_and_comes_back() -> None:
    site = small_site()
    async with plant(site, START) as p:
        for job in ("poll", "plan", "dispatch"):
            await p.ctl.run_job(job)
        bat_port = site.batteries[0].modbus.port
        dead = {b.id for b in site.batteries}
        assert dead <= _plan_devices(list(p.ctl.state.plan.frame.columns))
        await p.fleet.stop_port(bat_port)
        await step(
            p.ctl, p.clock, START + timedelta(minutes=35), before_jobs=lambda _: p.fleet.step()
        )
        st = p.ctl.state
        assert {d.id for d in st.snapshot.offline()} == dead
        kinds = [(e.kind, e.device) for e in st.events]
        assert all(("device_offline", d) in kinds for d in dead)
        # Re-planned without them, and the rest of the fleet is still polled and controlled.
        assert not dead & _plan_devices(list(st.plan.frame.columns))
        assert all(d.health.online for d in st.snapshot.devices.values() if d.id not in dead)
        assert all(st.job(n).failures == 0 for n in st.jobs)
        await p.fleet.start_port(bat_port)
        await step(
            p.ctl, p.clock, START + timedelta(minutes=35 + 20), before_jobs=lambda _: p.fleet.step()
        )
        assert not st.snapshot.offline()
        assert dead <= _plan_devices(list(st.plan.frame.columns))
        assert all(("device_online", d) in [(e.kind, e.device) for e in st.events] for d in dead)
        assert all(st.setpoints[d].ok for d in dead)


async def test_a_hanging_device_costs_only_its_own_timeout() -> None:
    site = small_site()
    async with plant(site, START) as p:
        await p.ctl.run_job("poll")
        hung = site.pv[0]
        p.fleet.device(hung.id).fault = "silent"
        started = time.perf_counter()
        await p.ctl.run_job("poll")
        elapsed = time.perf_counter() - started
        snap = p.ctl.state.snapshot
        assert not snap.devices[hung.id].health.online
        assert "no answer within 0.5 s" in (snap.devices[hung.id].health.last_error or "")
        assert all(d.health.online for d in snap.devices.values() if d.id != hung.id)
        # Each attempt waits at most its timeout (0.5 s), retried once with backoff.
        assert elapsed < 3 * (hung.modbus.timeout_s + 0.5)
        await p.ctl.run_job("plan")
        await p.ctl.run_job("dispatch")
        assert hung.id not in p.ctl.state.setpoints
        p.fleet.device(hung.id).fault = "none"


async def test_solver_time_out_gives_a_safe_fallback_plan_and_control_goes_on() -> None:
    site = small_site()
    async with plant(site, START, options=SolveOptions(time_limit_s=1e-6)) as p:
        for job in ("poll", "plan", "dispatch"):
            assert await p.ctl.run_job(job)
        st = p.ctl.state
        assert st.plan.info.status == "fallback"
        assert "time limit" in (st.plan.info.fallback_reason or "")
        assert st.fallbacks_total == 1
        assert any(e.kind == "fallback_plan" for e in st.events)
        frame = st.plan.frame
        assert (frame["grid_import_w"] <= site.grid.import_limit_w + 1).all()
        assert all(s.ok for s in st.setpoints.values())
