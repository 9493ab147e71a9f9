"""The plan job stages the next quarter hour's battery setpoints on 124 batteries in their own
mode: the simulated batteries do nothing with the staged rates, and at the quarter hour the
dispatch takes one request per battery (the mode with its read-back) and the batteries hold
the dispatch's checked setpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.sim.battery import BatteryState
from adapters.sim.synthetic import synthetic_site
from tests.conftest import free_ports
from vpp.control.dispatch import plan_row
from vpp.control.safety import Setpoint
from vpp.core.site import DeviceKind
from vpp.testing.harness import Plant, plant

#: A minute before a quarter hour: the plan made now (60 s ahead) is the next quarter's.
BEFORE = datetime(2026, 6, 21, 12, 29, tzinfo=UTC)


def battery_states(p: Plant, ids: list[str]) -> dict[str, BatteryState]:
    out = {}
    for device_id in ids:
        state = p.fleet.device(device_id).state
        assert isinstance(state, BatteryState)
        out[device_id] = state
    return out


async def test_plan_stages_inactive_rates_and_the_dispatch_then_sets_the_mode_alone() -> None:
    (port,) = free_ports(1)
    site = synthetic_site(10, 4, port)  # PV enough for the batteries to charge at noon
    bats = [d.id for d in site.batteries]
    async with plant(site, BEFORE) as p:
        assert await p.ctl.run_job("poll")
        p.ctl.plan_lead_s = 60.0
        before = {d: p.fleet.device(d).requests for d in bats}
        assert await p.ctl.run_job("plan")
        st = p.ctl.state
        assert st.plan is not None
        # One request per battery (function code 23: the rates with their read-back), and
        # every battery still in its own mode: idle, no remote setpoint.
        assert {d: p.fleet.device(d).requests - before[d] for d in bats} == dict.fromkeys(bats, 1)
        assert st.setpoints_staged_total == len(bats)
        assert not st.setpoints  # nothing is active: staging is not a setpoint
        for state in battery_states(p, bats).values():
            assert not state.remote and state.setpoint_w == 0.0
        p.clock.advance(60)
        p.fleet.step()
        row = plan_row(st.plan.frame, BEFORE + timedelta(minutes=1))
        assert row is not None
        before = {d: p.fleet.device(d).requests for d in bats}
        assert await p.ctl.run_job("dispatch")
        used = {d: p.fleet.device(d).requests - before[d] for d in bats}
        states = battery_states(p, bats)
        planned = {d: float(row[f"{d}.battery_w"]) for d in bats}
    assert used == dict.fromkeys(bats, 1)  # the mode and its read-back
    assert any(abs(w) > 100.0 for w in planned.values())  # the plan does move them
    for d in bats:
        status = st.setpoints[d]
        assert status.ok, status.message
        assert status.requested_w == pytest.approx(planned[d], abs=1.0)
        assert states[d].remote
        assert states[d].setpoint_w == pytest.approx(status.requested_w, abs=50.0)
    assert not st.readback_mismatches_total


async def test_a_battery_under_control_or_changed_since_is_written_in_full() -> None:
    """Staging leaves a battery under control alone (its rates act), and a dispatch whose
    setpoint differs from the staged one writes rates and mode, as without staging."""
    (port,) = free_ports(1)
    site = synthetic_site(0, 2, port)
    first, second = (d.id for d in site.batteries)
    async with plant(site, BEFORE) as p:
        assert await p.ctl.run_job("poll")
        p.ctl.plan_lead_s = 60.0
        # The first battery under control already, at 300 W.
        (held,) = await p.ctl.apply([Setpoint(first, DeviceKind.BATTERY, 300.0, 300.0)], "operator")
        assert held.ok
        before = p.fleet.device(first).requests
        assert await p.ctl.run_job("plan")
        assert p.fleet.device(first).requests == before  # not staged
        assert p.ctl.state.setpoints_staged_total == 1  # the second battery
        assert battery_states(p, [first])[first].setpoint_w == pytest.approx(300.0, abs=50.0)
        p.clock.advance(60)
        # A setpoint other than the staged one at the quarter hour: rates and mode.
        before = p.fleet.device(second).requests
        (other,) = await p.ctl.apply(
            [Setpoint(second, DeviceKind.BATTERY, -700.0, -700.0)], "operator"
        )
        assert p.fleet.device(second).requests - before == 2
        assert other.ok and battery_states(p, [second])[second].setpoint_w == pytest.approx(
            -700.0, abs=50.0
        )


async def test_dry_run_and_a_plan_for_the_current_quarter_stage_nothing() -> None:
    (port,) = free_ports(1)
    site = synthetic_site(0, 2, port)
    async with plant(site, BEFORE) as p:
        assert await p.ctl.run_job("poll")
        p.ctl.plan_lead_s = 0.0  # as at start-up: the plan covers the quarter hour now
        before = {d.id: p.fleet.device(d.id).requests for d in site.batteries}
        assert await p.ctl.run_job("plan")
        p.ctl.state.dry_run = True
        p.ctl.plan_lead_s = 60.0
        assert await p.ctl.run_job("plan")
        after = {d.id: p.fleet.device(d.id).requests for d in site.batteries}
    assert after == before and p.ctl.state.setpoints_staged_total == 0


async def test_a_staging_that_fails_leaves_the_plan_and_says_so() -> None:
    (port,) = free_ports(1)
    site = synthetic_site(0, 2, port)
    async with plant(site, BEFORE) as p:
        assert await p.ctl.run_job("poll")
        p.ctl.plan_lead_s = 60.0

        async def broken(setpoints: object) -> list[object]:
            raise RuntimeError("gateway gone")

        p.ctl.plant.stage = broken  # type: ignore[method-assign]
        assert await p.ctl.run_job("plan")  # the plan job itself succeeded
        st = p.ctl.state
        assert st.plan is not None and st.job("plan").failures == 0
        events = [e for e in st.events if e.kind == "stage_failed"]
        assert events and "gateway gone" in events[-1].message
