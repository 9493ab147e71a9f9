"""Recovering from faults, on the replay plant: records wait for a recorder that cannot
store them, a fallback plan is retried out of turn, and a restored plan is written before
the first new plan is solved."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest

from tests.vpp.control.test_gate import controller, world  # noqa: F401  (fixture)
from vpp.control import cycle
from vpp.control.runner import start_jobs
from vpp.core.site import Site


async def test_records_wait_for_the_recorder_and_none_is_lost(
    world: tuple[Site, pd.DataFrame],  # noqa: F811
) -> None:
    site, raw = world
    ctl = controller(site, raw)
    stored: list[int] = []
    full = {"disk": True}

    def store(n: int) -> None:
        if full["disk"]:
            raise OSError("database or disk is full")
        stored.append(n)

    for n in range(5):
        ctl._record("snapshot", store, n)
    assert stored == [] and ctl.state.recorder_pending == 5
    assert ctl.state.recorder_errors_total == 5
    full["disk"] = False
    ctl._record("snapshot", store, 5)
    assert stored == [0, 1, 2, 3, 4, 5]
    assert ctl.state.recorder_pending == 0 and ctl.state.recorder_dropped_total == 0


async def test_a_fallback_plan_is_retried_after_a_minute(
    world: tuple[Site, pd.DataFrame],  # noqa: F811
) -> None:
    site, raw = world
    ctl = controller(site, raw)
    assert await ctl.run_job("poll") and await ctl.run_job("plan")
    plan, made = ctl.state.plan, ctl.state.plan_created_at
    assert plan is not None and made is not None and plan.info.status == "optimal"
    now = ctl.clock.now()
    assert not cycle.replan_due(plan, made, now + timedelta(hours=1))
    fallback = replace(plan, info=replace(plan.info, status="fallback"))
    assert not cycle.replan_due(fallback, made, made + timedelta(seconds=59))
    assert cycle.replan_due(fallback, made, made + timedelta(seconds=60))
    # The watchdog takes it: a new optimal plan replaces the fallback, and is dispatched.
    ctl.state.plan = fallback
    ctl.clock.advance(60)
    assert await ctl.run_job("watchdog")
    assert ctl.state.plan is not fallback and ctl.state.plan.info.status == "optimal"
    kinds = [e.kind for e in ctl.state.events]
    assert "plan_recovered" in kinds and ctl.state.setpoints


@pytest.mark.timeout(60)
async def test_a_restored_plan_is_dispatched_before_the_first_new_plan(
    world: tuple[Site, pd.DataFrame],  # noqa: F811
) -> None:
    site, raw = world
    earlier = controller(site, raw)
    assert await earlier.run_job("poll") and await earlier.run_job("plan")
    ctl = controller(site, raw)
    ctl.state.plan, ctl.state.plan_created_at = earlier.state.plan, earlier.clock.now()
    order: list[tuple[str, int]] = []
    ctl.listener = lambda source, _statuses: order.append((source, ctl.state.plans_total))
    scheduler = await start_jobs(ctl)
    scheduler.shutdown(wait=False)
    assert order[0] == ("dispatch", 0)  # written from the restored plan, before any solve
    assert ("dispatch", 1) in order  # and again from the first new plan
