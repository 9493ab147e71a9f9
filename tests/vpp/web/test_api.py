"""Operator actions over the JSON API, against a real controller.

Writes are checked against the token rules (403 without a configured token, 401 with a wrong
one), input validation (400 naming the field), the events they record and their effect: a cap
reaches the next plan's import limit, pause stops writes, re-plans never overlap.
"""

from __future__ import annotations

import asyncio
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
        # Dates far from now: typing errors, and near year 9999 they overflowed into a 500.
        (
            cap_body(now, start="9999-12-31T00:00:00+00:00", end="9999-12-31T10:00:00+00:00"),
            "start",
        ),
        (
            cap_body(now, start="9999-12-31T23:00:00-05:00", end="9999-12-31T23:30:00-05:00"),
            "start",
        ),
        (cap_body(now, start="0001-01-01T00:30:00+05:00"), "start"),
        (cap_body(now, start=(now - timedelta(days=1, minutes=1)).isoformat()), "start"),
        (
            cap_body(
                now,
                start=(now + timedelta(days=365)).isoformat(),
                end=(now + timedelta(days=366)).isoformat(),
            ),
            "end",
        ),
        (cap_body(now, start=12345), "start"),
        (cap_body(now, end=[]), "end"),
        # A cap can only lower the site's limit (800 kW import, 500 kW export in the demo).
        (cap_body(now, limit_w=800_001.0), "limit_w"),
        (cap_body(now, direction="export", limit_w=500_001.0), "limit_w"),
        (cap_body(now, limit_w=1e308), "limit_w"),
        (cap_body(now, limit_w=True), "limit_w"),
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
        ("POST", "/api/caps", b"null", "body"),
        ("POST", "/api/caps", b"[" * 5000, "body"),
        ("POST", "/api/caps", b"\xff\xfe{", "body"),
        (
            "POST",
            "/api/caps",
            json.dumps(cap_body(now)).replace("100000.0", "NaN").encode(),
            "limit_w",
        ),
        (
            "POST",
            "/api/caps",
            json.dumps(cap_body(now)).replace("100000.0", "1e999").encode(),
            "limit_w",
        ),
        (
            "POST",
            "/api/caps",
            json.dumps(cap_body(now)).replace("100000.0", "-Infinity").encode(),
            "limit_w",
        ),
        (
            "POST",
            "/api/caps",
            json.dumps(cap_body(now)).replace("100000.0", "9" * 5000).encode(),
            "body",
        ),
        ("POST", "/api/pause", b'{"dry_run": "yes"}', "dry_run"),
        ("POST", "/api/pause", b'{"dry_run": 1}', "dry_run"),
        ("POST", "/api/pause", b"{}", "dry_run"),
        ("POST", "/api/replan", json.dumps({"reason": "x" * 201}).encode(), "reason"),
        ("POST", "/api/replan", b'{"now": true}', "now"),
        ("POST", "/api/replan", b'{"reason": 1e999}', "reason"),
        ("DELETE", "/api/caps/..%2Fetc", b"", "id"),
    ]
    for method, path, raw, field in cases:
        status, reply = await call(http, method, f"{url}{path}", raw=raw)
        assert (status, reply.get("field")) == (400, field), (path, raw, reply)
    status, reply = await call(http, "DELETE", f"{url}/api/caps/0123456789ab")
    assert (status, reply["field"]) == (404, "id")
    for limit in ("ten", "0", "", "1000001", "%C2%B2", "%D9%A2", "99999999999999999999999"):
        # "²" and "٢" (an Arabic-Indic two) are digits to str.isdigit, not to int().
        status, reply = await call(http, "GET", f"{url}/api/devices?limit={limit}", token=None)
        assert (status, reply["field"]) == (400, "limit"), limit
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


async def test_pause_and_replan(
    plant: Plant, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = plant.state
    status, reply = await call(http, "POST", f"{plant.url}/api/pause", {"dry_run": True})
    assert (status, reply, state.dry_run) == (200, {"dry_run": True}, True)
    plant.clock.advance(15 * 60)
    await plant.ctl.run_job("dispatch")
    assert state.setpoints and all(
        s.dry_run and s.written_w is None for s in state.setpoints.values()
    )
    _, view = await call(http, "GET", f"{plant.url}/api/status")
    assert view["dry_run"] is True

    # The first re-plan's plan job waits until the second request has been answered, so the
    # second finds it running whatever the machine's speed.
    gate = asyncio.Event()
    run_job = plant.ctl.run_job

    async def held(name: str) -> bool:
        if name == "plan":
            await asyncio.wait_for(gate.wait(), 60)
        return await run_job(name)

    monkeypatch.setattr(plant.ctl, "run_job", held)
    plans = state.plans_total
    first = await call(http, "POST", f"{plant.url}/api/replan", raw=b"")
    second = await call(http, "POST", f"{plant.url}/api/replan", {"reason": "new forecast"})
    gate.set()
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


async def test_odd_values_in_any_field_give_400_never_500(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    now = plant.clock.now()
    odd: list[Any] = [None, True, 0, -1, 10**30, 1e308, "", "x", [], {}, "NaN", "9999-12-31"]
    odd.append("9999-12-31T23:59:59.999999-23:59")
    accepted = []
    for field in ("direction", "limit_w", "start", "end", "reason"):
        for value in odd:
            status, reply = await call(
                http, "POST", f"{plant.url}/api/caps", cap_body(now, **{field: value})
            )
            assert status in (201, 400), (field, value, status, reply)
            if status == 400:
                assert reply["field"] == field, (field, value, reply)
            else:
                accepted.append((field, value))
    # A cap of 0 W, and any printable text as the reason.
    assert accepted == [("limit_w", 0), *[("reason", v) for v in odd if isinstance(v, str) and v]]
    assert len(plant.state.caps) == len(accepted)
    await plant.replans_done()


async def test_a_token_that_is_not_utf8_gets_401(plant: Plant) -> None:
    host, port = plant.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"dry_run": true}'
    writer.write(
        b"POST /api/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\xc3\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 401"), head
    assert not plant.state.dry_run
