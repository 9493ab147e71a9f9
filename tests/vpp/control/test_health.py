"""The top-line state, over random controller states (hypothesis): the rules of
:mod:`vpp.control.health` hold whatever combination of comms, freshness and plan comes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.snapshot import CommsHealth, DeviceState, Snapshot
from vpp.control.health import CONTROLLABLE, PLAN_STALE_S, REFUSED_WRITES, assess
from vpp.control.state import ControllerState, SourceStatus
from vpp.testing.harness import plant, small_site
from vpp.web.views import devices_view, health_view

SITE = small_site()
NOW = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
IDS = [d.id for d in SITE.devices]
STALE_S = SITE.poll.interval_s * SITE.run.stale_polls


def _plan(kind: str) -> object | None:
    if kind == "none":
        return None
    info = SimpleNamespace(status="fallback" if kind == "fallback" else "optimal",
                           fallback_reason="time limit")  # fmt: skip
    return SimpleNamespace(frame=None, info=info, restored=kind == "restored")


@settings(max_examples=300, deadline=None)
@given(
    online=st.sets(st.sampled_from(IDS)),
    snapshot_age_s=st.one_of(st.none(), st.floats(0, 3 * STALE_S)),
    plan=st.sampled_from(["none", "optimal", "fallback", "restored"]),
    plan_age_s=st.floats(0, 2 * PLAN_STALE_S),
    dry_run=st.booleans(),
    stale_source=st.booleans(),
    refused=st.dictionaries(st.sampled_from(IDS), st.integers(0, 2 * REFUSED_WRITES)),
)
def test_health_rules(
    online: set[str],
    snapshot_age_s: float | None,
    plan: str,
    plan_age_s: float,
    dry_run: bool,
    stale_source: bool,
    refused: dict[str, int],
) -> None:
    state = ControllerState(site=SITE, started_at=NOW - timedelta(hours=1), dry_run=dry_run)
    state.write_failures = dict(refused)
    if snapshot_age_s is not None:
        at = NOW - timedelta(seconds=snapshot_age_s)
        state.snapshot = Snapshot(
            at,
            {
                d.id: DeviceState(
                    d.id,
                    str(d.kind),
                    None,
                    CommsHealth(last_success=at)
                    if d.id in online
                    else CommsHealth(consecutive_failures=3, last_error="no answer"),
                )
                for d in SITE.devices
            },
        )
    state.plan = _plan(plan)  # type: ignore[assignment]
    state.plan_created_at = NOW - timedelta(seconds=plan_age_s) if plan != "none" else None
    if stale_source:
        state.sources = {"prices": SourceStatus("prices", stale=True)}
    health = assess(state, NOW)

    controllable = {d.id for d in SITE.devices if str(d.kind) in CONTROLLABLE}
    cannot = (
        snapshot_age_s is None
        or snapshot_age_s > STALE_S
        or not (online & controllable)
        or dry_run
        or plan == "none"
        or plan_age_s > PLAN_STALE_S
    )
    # a device that answers but refused its last writes does not follow the plan
    refusing = (
        sorted(d for d, n in refused.items() if n >= REFUSED_WRITES and d in online)
        if snapshot_age_s is not None
        else []
    )
    assert list(health.refusing) == refusing
    if refusing:
        (line,) = [r for r in health.reasons if "accept no setpoint" in r]
        assert all(d in line for d in refusing[:5])
    weak = bool(set(IDS) - online) or plan in ("fallback", "restored") or stale_source
    weak = weak or bool(refusing)
    expected = "not_controlling" if cannot else "degraded" if weak else "ok"
    assert health.state == expected, health
    assert (health.state == "ok") == (health.reasons == ())
    assert health.plan_source == {"none": "none", "optimal": "optimizer"}.get(plan, plan)
    if snapshot_age_s is not None:
        assert health.online == len(online)
        assert health.offline == len(IDS) - len(online)


async def test_a_device_that_refuses_every_setpoint_degrades_health() -> None:
    """A battery that answers reads but refuses every write (simulated on loopback): after
    three refused writes in a row health is degraded and names it; once it accepts writes
    again, it is ok."""
    site = small_site()
    start = datetime(2018, 6, 21, 8, 1, tzinfo=UTC)
    async with plant(site, start) as p:
        p.fleet.device("bat-002").fault = "refuse_writes"
        for job in ("poll", "plan", "dispatch"):
            assert await p.ctl.run_job(job)
        assert p.ctl.state.write_failures.get("bat-002") == 1
        assert "bat-002" not in assess(p.ctl.state, p.clock.now()).refusing
        for _ in range(REFUSED_WRITES - 1):
            p.clock.advance(60.0)
            assert await p.ctl.run_job("poll")
            assert await p.ctl.run_job("dispatch")
        state = p.ctl.state
        assert state.write_failures == {"bat-002": REFUSED_WRITES}  # the others accept
        health = assess(state, p.clock.now())
        assert health.state == "degraded" and health.refusing == ("bat-002",)
        assert any(r.startswith("1 device(s) accept no setpoint (bat-002)") for r in health.reasons)
        assert health_view(health)["refusing_setpoints"] == ["bat-002"]
        rows = {r["id"]: r for r in devices_view(state, p.clock.now())["devices"]}
        assert rows["bat-002"]["failed_writes"] == REFUSED_WRITES
        assert rows["bat-001"]["failed_writes"] == 0
        p.fleet.device("bat-002").fault = "none"
        assert await p.ctl.run_job("dispatch")
        assert "bat-002" not in state.write_failures
        assert assess(state, p.clock.now()).refusing == ()
