"""The top-line state, over random controller states (hypothesis): the rules of
:mod:`vpp.control.health` hold whatever combination of comms, freshness and plan comes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.snapshot import CommsHealth, DeviceState, Snapshot
from vpp.control.health import CONTROLLABLE, PLAN_STALE_S, assess
from vpp.control.state import ControllerState, SourceStatus
from vpp.testing.harness import small_site

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
)
def test_health_rules(
    online: set[str],
    snapshot_age_s: float | None,
    plan: str,
    plan_age_s: float,
    dry_run: bool,
    stale_source: bool,
) -> None:
    state = ControllerState(site=SITE, started_at=NOW - timedelta(hours=1), dry_run=dry_run)
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
    weak = bool(set(IDS) - online) or plan in ("fallback", "restored") or stale_source
    expected = "not_controlling" if cannot else "degraded" if weak else "ok"
    assert health.state == expected, health
    assert (health.state == "ok") == (health.reasons == ())
    assert health.plan_source == {"none": "none", "optimal": "optimizer"}.get(plan, plan)
    if snapshot_age_s is not None:
        assert health.online == len(online)
        assert health.offline == len(IDS) - len(online)
