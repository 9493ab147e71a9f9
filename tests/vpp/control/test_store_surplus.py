"""The correct job tells the value correction what the plan in force does with its surplus
over the next hours (``run.store_surplus_first``), looked up from the plan once per quarter
hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vpp.control.dispatch import export_ahead
from vpp.core.clock import floor_quarter
from vpp.testing.harness import plant, small_site

#: A June morning: the small site's plan exports around noon.
MORNING = datetime(2026, 6, 21, 7, 5, tzinfo=UTC)


async def test_the_correct_job_passes_the_plans_export_ahead() -> None:
    site = small_site()
    async with plant(site, MORNING) as p:
        assert p.ctl.export_ahead() is None  # no plan yet
        for job in ("poll", "plan"):
            assert await p.ctl.run_job(job), job
        plan = p.ctl.state.plan
        assert plan is not None
        now = floor_quarter(p.clock.now())
        expected = export_ahead(plan.frame, now)
        assert expected.export_wh > 0.0, "the plan exports later this day"
        assert p.ctl.export_ahead() == expected
        p.clock.advance(timedelta(minutes=15).total_seconds())
        later = export_ahead(plan.frame, now + timedelta(minutes=15))
        assert later != expected
        assert p.ctl.export_ahead() == later
        off = site.model_copy(
            update={"run": site.run.model_copy(update={"store_surplus_first": False})}
        )
        p.ctl.site = off
        assert p.ctl.export_ahead() is None
