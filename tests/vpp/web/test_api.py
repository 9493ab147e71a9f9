"""Operator actions over the JSON API, against a real controller.

Writes are checked against the token rules (403 without a configured token, 401 with a wrong
one), input validation (400 naming the field), the events they record and their effect: a cap
reaches the next plan's import limit, pause stops writes, re-plans never overlap.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.vpp.web.live import demo_site
from tests.vpp.web.plant import NOON, TOKEN, Plant, call, cap_body, operator_events, start_plant
from vpp.control.state import ControllerState
from vpp.core.clock import ManualClock
from vpp.web import make_app, serve

# -- who may write ------------------------------------------------------------------------------


def writes(url: str, now: datetime) -> list[tuple[str, str, Any]]:
    return [
        ("POST", f"{url}/api/caps", cap_body(now)),
        ("DELETE", f"{url}/api/caps/0123456789ab", None),
        ("POST", f"{url}/api/pause", {"dry_run": True}),
        ("POST", f"{url}/api/replan", {}),
    ]


async def test_every_write_is_refused_without_a_configured_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    monkeypatch.delenv("VPP_API_TOKEN", raising=False)
    async with start_plant(tmp_path, token=None) as p:
        plans = p.state.plans_total
        for method, url, body in writes(p.url, p.clock.now()):
            for token in (None, "anything", ""):
                status, reply = await call(http, method, url, body, token=token)
                assert status == 403, (method, url)
                assert "no API token is configured" in reply["error"]
                assert "VPP_API_TOKEN" in reply["error"]
        _, view = await call(http, "GET", f"{p.url}/api/status")
        assert view["writes_enabled"] is False
        assert p.state.caps == [] and p.state.dry_run is False
        assert p.state.plans_total == plans and operator_events(p.state) == []


async def test_a_missing_or_wrong_token_gets_401(plant: Plant, http: aiohttp.ClientSession) -> None:
    for method, url, body in writes(plant.url, plant.clock.now()):
        for token in (None, "wrong", TOKEN + "x", ""):
            status, reply = await call(http, method, url, body, token=token)
            assert status == 401, (method, url, token)
            assert "token" in reply["error"]
        async with http.request(
            method, url, json=body, headers={"Authorization": f"Basic {TOKEN}"}
        ) as resp:
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert plant.state.caps == [] and not plant.state.dry_run
    assert operator_events(plant.state) == []


async def test_the_environment_token_wins_over_the_site_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    monkeypatch.setenv("VPP_API_TOKEN", "from-env")
    async with start_plant(tmp_path, token=TOKEN) as p:
        status, _ = await call(http, "POST", f"{p.url}/api/pause", {"dry_run": True})
        assert status == 401
        status, reply = await call(
            http, "POST", f"{p.url}/api/pause", {"dry_run": True}, token="from-env"
        )
        assert status == 200 and reply == {"dry_run": True} and p.state.dry_run


# -- input validation ---------------------------------------------------------------------------


def invalid_caps(now: datetime) -> list[tuple[dict[str, Any], str]]:
    naive = now.replace(tzinfo=None).isoformat()
    return [
        (cap_body(now, direction="both"), "direction"),
        (cap_body(now, limit_w=-1), "limit_w"),
        (cap_body(now, limit_w="100000"), "limit_w"),
        (cap_body(now, limit_w=None), "limit_w"),
        ({k: v for k, v in cap_body(now).items() if k != "limit_w"}, "limit_w"),
        (cap_body(now, start=naive), "start"),
        (cap_body(now, start="tomorrow"), "start"),
        (cap_body(now, end=now.isoformat()), "end"),
        (cap_body(now, end=(now - timedelta(hours=1)).isoformat()), "end"),
        (cap_body(now, end=(now + timedelta(days=7, minutes=1)).isoformat()), "end"),
        (
            cap_body(
                now,
                start=(now - timedelta(hours=3)).isoformat(),
                end=(now - timedelta(hours=1)).isoformat(),
            ),
            "end",
        ),
        (cap_body(now, reason=""), "reason"),
        (cap_body(now, reason="   "), "reason"),
        (cap_body(now, reason="x" * 201), "reason"),
        (cap_body(now, reason="line\nbreak"), "reason"),
        (cap_body(now, priority=1), "priority"),
    ]


async def test_invalid_inputs_give_400_naming_the_field(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    url, now = plant.url, plant.clock.now()
    for body, field in invalid_caps(now):
        status, reply = await call(http, "POST", f"{url}/api/caps", body)
        assert (status, reply.get("field")) == (400, field), (body, reply)
        assert field in reply["error"]
    cases: list[tuple[str, str, bytes, str]] = [
        ("POST", "/api/caps", b"{not json", "body"),
        ("POST", "/api/caps", b"", "body"),
        ("POST", "/api/caps", b"[]", "body"),
        ("POST", "/api/pause", b'{"dry_run": "yes"}', "dry_run"),
        ("POST", "/api/pause", b'{"dry_run": 1}', "dry_run"),
        ("POST", "/api/pause", b"{}", "dry_run"),
        ("POST", "/api/replan", json.dumps({"reason": "x" * 201}).encode(), "reason"),
        ("POST", "/api/replan", b'{"now": true}', "now"),
        ("DELETE", "/api/caps/..%2Fetc", b"", "id"),
    ]
    for method, path, raw, field in cases:
        status, reply = await call(http, method, f"{url}{path}", raw=raw)
        assert (status, reply.get("field")) == (400, field), (path, raw, reply)
    status, reply = await call(http, "DELETE", f"{url}/api/caps/0123456789ab")
    assert (status, reply["field"]) == (404, "id")
    status, reply = await call(http, "GET", f"{url}/api/devices?limit=ten", token=None)
    assert (status, reply["field"]) == (400, "limit")
    assert plant.state.caps == [] and not plant.state.dry_run
    assert operator_events(plant.state) == []


# -- effects ------------------------------------------------------------------------------------


async def test_a_cap_reaches_the_next_plan_and_is_recorded(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    state, now = plant.state, plant.clock.now()
    plans = state.plans_total
    start, end = now + timedelta(minutes=30), now + timedelta(hours=2)
    body = cap_body(
        now, limit_w=120_000.0, start=start.astimezone().isoformat(), end=end.isoformat()
    )
    status, reply = await call(http, "POST", f"{plant.url}/api/caps", body)
    assert status == 201 and reply["replan"] == "started"
    [cap] = state.caps
    assert (cap.direction, cap.limit_w, cap.start, cap.end) == ("import", 120_000.0, start, end)
    assert cap.start.tzinfo is UTC and cap.created_at == now
    assert reply["cap"]["id"] and reply["cap"]["active"] is False

    await plant.replans_done()
    assert state.plans_total == plans + 1
    assert state.plan is not None
    frame = state.plan.frame
    window = (frame.index >= start) & (frame.index < end)
    assert window.sum() == 6
    assert (frame.loc[window, "import_cap_w"] == 120_000.0).all()
    assert (frame.loc[~window, "import_cap_w"] == state.site.grid.import_limit_w).all()
    assert (frame.loc[window, "grid_import_w"] <= 120_000.0 + 1e-3).all()

    assert operator_events(state) == ["cap_set"]
    recorded = plant.ctl.recorder.events()
    row = recorded[recorded["kind"] == "cap_set"].iloc[-1]
    assert row["source"] == "operator" and "120.0 kW" in row["message"]
    assert "feeder F2 maintenance" in row["message"]

    _, listed = await call(http, "GET", f"{plant.url}/api/caps", token=None)
    assert [c["id"] for c in listed["caps"]] == [reply["cap"]["id"]]
    status, removed = await call(http, "DELETE", f"{plant.url}/api/caps/{reply['cap']['id']}")
    assert status == 200 and removed["removed"]["limit_w"] == 120_000.0
    await plant.replans_done()
    assert state.caps == [] and operator_events(state) == ["cap_set", "cap_removed"]
    assert state.plan is not None
    assert (state.plan.frame["import_cap_w"] == state.site.grid.import_limit_w).all()


async def test_pause_and_replan(plant: Plant, http: aiohttp.ClientSession) -> None:
    state = plant.state
    status, reply = await call(http, "POST", f"{plant.url}/api/pause", {"dry_run": True})
    assert (status, reply, state.dry_run) == (200, {"dry_run": True}, True)
    plant.clock.advance(15 * 60)
    await plant.ctl.run_job("dispatch")
    assert state.setpoints and all(
        s.dry_run and s.written is None for s in state.setpoints.values()
    )
    _, view = await call(http, "GET", f"{plant.url}/api/status")
    assert view["dry_run"] is True

    plans = state.plans_total
    first = await call(http, "POST", f"{plant.url}/api/replan", raw=b"")
    second = await call(http, "POST", f"{plant.url}/api/replan", {"reason": "new forecast"})
    assert first == (202, {"replan": "started"}) and second == (202, {"replan": "queued"})
    await plant.replans_done()
    assert state.plans_total == plans + 2  # the second request ran after the first, not beside it
    assert state.jobs["dispatch"].runs >= 3

    status, reply = await call(http, "POST", f"{plant.url}/api/pause", {"dry_run": False})
    assert (status, reply, state.dry_run) == (200, {"dry_run": False}, False)
    assert operator_events(state) == [
        "control_paused",
        "replan_requested",
        "replan_requested",
        "control_resumed",
    ]
    messages = [e.message for e in state.events if e.source == "operator"]
    assert "new forecast" in messages[2] and "127.0.0.1" in messages[0]


async def test_without_a_controller_actions_change_the_state_only(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VPP_API_TOKEN", raising=False)
    site = demo_site(token=TOKEN, n_pv=1, n_battery=1)
    clock = ManualClock(NOON)
    state = ControllerState(site=site, started_at=NOON)
    app = make_app(state, CollectorRegistry(), clock=clock)
    async with serve(app, port=0) as server:
        status, reply = await call(http, "POST", f"{server.url}/api/caps", cap_body(NOON))
        assert status == 201 and reply["replan"] == "unavailable" and len(state.caps) == 1
        status, reply = await call(http, "POST", f"{server.url}/api/replan", {})
        assert status == 503
        _, view = await call(http, "GET", f"{server.url}/api/status")
        assert view["plan"] is None and view["grid"]["net_w"] is None
        _, plan = await call(http, "GET", f"{server.url}/api/plan")
        assert plan["steps"] == []
        _, alerts = await call(http, "GET", f"{server.url}/api/alerts")
        assert [a["name"] for a in alerts["active"]] == ["VppNoPlan"]
    assert [e.kind for e in state.events] == ["cap_set"]
