"""A fast demo stretches the short job intervals to a wall-time floor, and the freshness
limits follow the poll period that results, the corrections' horizon the correction period
(vpp.control.schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.control.health import assess
from vpp.control.runner import step
from vpp.control.schedule import (
    PLAN_LEAD_S,
    QUARTER_S,
    WALL_FLOOR_S,
    correction_period_s,
    job_specs,
    poll_period_s,
)
from vpp.testing.harness import plant, small_site

SITE = small_site(poll={"interval_s": 10.0})
REAL = {s.name: s.period_s for s in job_specs(SITE, PLAN_LEAD_S, signals=True)}


@settings(max_examples=200, deadline=None)
@given(speed=st.floats(1.0, 2000.0))
def test_short_intervals_stretch_to_the_wall_floor(speed: float) -> None:
    specs = {s.name: s for s in job_specs(SITE, PLAN_LEAD_S, signals=True, speed=speed)}
    for name, spec in specs.items():
        assert spec.period_s >= REAL[name]  # never more often than the site asks
        if name in WALL_FLOOR_S and speed > 1.0:
            assert spec.period_s / speed >= WALL_FLOOR_S[name] - 1e-9, name
            # ...and no longer than the floor needs
            assert spec.period_s <= max(REAL[name], WALL_FLOOR_S[name] * speed) + 1e-9
    # the quarter-hour grid and the keep-alive (within the revert timer) do not move
    assert specs["plan"].period_s == specs["dispatch"].period_s == QUARTER_S
    assert specs["keepalive"].period_s == REAL["keepalive"] < SITE.poll.revert_s
    assert poll_period_s(SITE, speed) == specs["poll"].period_s
    # the corrections look as far ahead as the next correction
    assert correction_period_s(SITE, speed) == specs["correct"].period_s


def test_real_time_keeps_the_site_intervals() -> None:
    specs = {s.name: s.period_s for s in job_specs(SITE, PLAN_LEAD_S, signals=True, speed=1.0)}
    assert specs["poll"] == 10.0 and specs["signals"] == 1.0
    assert specs["correct"] == SITE.run.correction_interval_s and specs["watchdog"] == 30.0
    # at 60x a 10 s poll would come every 0.17 s of wall time: it runs every two wall seconds
    assert poll_period_s(SITE, 60.0) == 120.0


async def test_a_fast_demo_polls_less_often_and_stays_fresh() -> None:
    """Stepped as ``vpp run --speed 60`` runs it (manual clock): one poll every two minutes
    of controller time instead of twelve, and the health and watchdog judge freshness by
    that period, so the snapshot between two polls (120 s, beyond the 30 s of three 10 s
    polls) is fresh and no stale-snapshot alarm is raised."""
    start = datetime(2018, 6, 21, 8, 1, tzinfo=UTC)
    ages: list[float] = []
    states: list[str] = []
    async with plant(SITE, start) as p:

        def look(now: datetime) -> None:
            snap = p.ctl.state.snapshot
            if snap is not None:
                ages.append((now - snap.time).total_seconds())
                health = assess(p.ctl.state, now)
                states.append(health.state)
                assert not any("fresh poll" in r for r in health.reasons), health.reasons

        for job in ("poll", "plan", "dispatch"):  # as vpp run starts
            assert await p.ctl.run_job(job)
        await step(
            p.ctl, p.clock, start + timedelta(minutes=12), tick_s=10.0, before_jobs=look, speed=60
        )
        polls = p.ctl.state.job("poll").runs
        events = [e.kind for e in p.ctl.state.events]
    assert p.ctl.state.stale_after_s() == 360.0
    assert 6 <= polls <= 7  # 12 minutes at one poll every 2 minutes (72 at 10 s)
    assert max(ages) == 120.0  # older than three 10 s polls, fresh at the stretched period
    assert "stale_snapshot" not in events
    assert p.ctl.state.job("watchdog").runs >= 11
    assert set(states) <= {"ok", "degraded"}
