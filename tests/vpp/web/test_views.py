"""The read side of the operator API and the page, against a real controller's state.

Status, plan, devices and alerts are checked against the state they describe (and follow a
device fault, a stale plan, counters that rise); the page and its files come with headers that
keep other sites out.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aiohttp
import pandas as pd
import pytest

from tests.vpp.web.plant import Plant, call, cap_body
from vpp.control.state import SourceStatus
from vpp.web.api import API_KEY
from vpp.web.views import plan_view
from vpp.web.watch import site_totals

# -- reads ------------------------------------------------------------------------------------


async def test_status_plan_and_devices_describe_the_state(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    state, site = plant.state, plant.state.site
    assert state.snapshot is not None and state.plan is not None
    totals = site_totals(site, state.snapshot)
    _, status = await call(http, "GET", f"{plant.url}/api/status")
    assert status["site"] == site.site.name and status["timezone"] == "Europe/Berlin"
    assert status["time"] == "2026-06-21T10:00:00Z" and status["dry_run"] is False
    assert status["writes_enabled"] is True
    grid = status["grid"]
    assert grid["net_w"] == pytest.approx(totals["grid_w"])
    assert grid["import_limit_w"] == site.grid.import_limit_w == grid["site_import_limit_w"]
    fleet = status["fleet"]
    assert fleet["online"] == fleet["devices"] == len(site.devices)
    assert fleet["pv_w"] == pytest.approx(totals["pv_w"]) and fleet["pv_w"] > 0
    assert 0 < fleet["battery_soc_ratio"] < 1
    info = status["plan"]
    assert info["status"] == state.plan.info.status == "optimal"
    assert info["age_s"] == 0 and info["steps"] == len(state.plan.frame) == 24
    assert info["now"]["grid_w"] == pytest.approx(
        state.plan.frame["grid_import_w"].iloc[0] - state.plan.frame["grid_export_w"].iloc[0]
    )

    _, plan = await call(http, "GET", f"{plant.url}/api/plan")
    frame = state.plan.frame
    assert [pd.Timestamp(s["start"]) for s in plan["steps"]] == list(frame.index)
    for column in ("grid_import_w", "pv_w", "battery_w", "import_cap_w", "store_wh"):
        assert [s[column] for s in plan["steps"]] == pytest.approx(list(frame[column]))
    assert plan["steps"][0]["actual"]["pv_w"] == pytest.approx(totals["pv_w"])
    assert all(s["actual"] is None for s in plan["steps"][1:])  # the future is not measured

    _, devices = await call(http, "GET", f"{plant.url}/api/devices")
    assert devices["total"] == len(site.devices) and devices["offline"] == 0
    rows = {r["id"]: r for r in devices["devices"]}
    bat = rows["bat-001"]
    reading = state.snapshot.devices["bat-001"].reading
    assert bat["soc_pct"] == reading.soc_pct and bat["power_w"] == reading.power_w  # type: ignore[union-attr]
    assert bat["online"] and bat["breaker"] == "closed"
    assert bat["setpoint"]["quantity"] == "battery_w"


async def test_devices_worst_first_and_alerts_follow_faults(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    plant.fleet.device("pv-002").fault = "error"
    plant.clock.advance(10)
    await plant.ctl.run_job("poll")
    _, devices = await call(http, "GET", f"{plant.url}/api/devices?limit=2")
    assert [r["id"] for r in devices["devices"]][:1] == ["pv-002"]
    assert len(devices["devices"]) == 2 and devices["offline"] == 1
    worst = devices["devices"][0]
    assert not worst["online"] and worst["consecutive_failures"] >= 1 and worst["last_error"]

    state = plant.state
    state.readback_mismatches_total = {"bat-002": 1}  # as dispatch counts a wrong read-back
    state.recorder_errors_total += 1
    state.sources = {
        "prices": SourceStatus("prices", failures=3, stale=True, last_error="HTTP 503")
    }
    assert state.plan is not None
    info = dataclasses.replace(
        state.plan.info, status="fallback", fallback_reason="time limit", solve_s=9.5
    )
    state.plan = dataclasses.replace(state.plan, info=info)
    plant.clock.advance(31 * 60)  # the plan goes stale
    _, alerts = await call(http, "GET", f"{plant.url}/api/alerts")
    active = {(a["name"], a["device"]) for a in alerts["active"]}
    assert {
        ("VppDevicesOffline", None),
        ("VppPlanStale", None),
        ("VppPlanFallback", None),
        ("VppSolveTimeNearBudget", None),
        ("VppSetpointReadbackMismatch", "bat-002"),
        ("VppRecorderErrors", None),
        ("VppSnapshotStale", None),
        ("VppDataSourceStale", None),
    } <= active
    assert alerts["active"][0]["severity"] == "critical"
    grouped = next(a for a in alerts["active"] if a["name"] == "VppDevicesOffline")
    assert grouped["summary"].startswith("1 of ") and "(pv 1): pv-002" in grouped["summary"]
    assert any(e["kind"] == "device_offline" and e["device"] == "pv-002" for e in alerts["events"])

    plant.clock.advance(20 * 60)  # counters that stopped rising stop alerting
    _, later = await call(http, "GET", f"{plant.url}/api/alerts")
    names = {a["name"] for a in later["active"]}
    assert "VppRecorderErrors" not in names and "VppSetpointReadbackMismatch" not in names


async def test_grid_near_and_over_its_limit(plant: Plant, http: aiohttp.ClientSession) -> None:
    state = plant.state
    assert state.snapshot is not None
    grid_w = site_totals(state.site, state.snapshot)["grid_w"]
    assert grid_w > 0
    now = plant.clock.now()
    for limit_w, expected in (
        (grid_w / 0.995, "VppGridImportNearLimit"),
        (grid_w * 0.5, "VppGridImportOverLimit"),
    ):
        status, _ = await call(
            http, "POST", f"{plant.url}/api/caps", cap_body(now, limit_w=limit_w)
        )
        assert status == 201
        _, alerts = await call(http, "GET", f"{plant.url}/api/alerts")
        assert expected in {a["name"] for a in alerts["active"]}
        _, status_view = await call(http, "GET", f"{plant.url}/api/status")
        assert status_view["grid"]["import_limit_w"] == pytest.approx(limit_w)
    await plant.replans_done()


async def test_page_static_files_and_metrics(plant: Plant, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{plant.url}/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        page = await resp.text()
    assert 'src="/static/app.js"' in page and "http" not in page.replace("http-equiv", "")
    async with http.get(f"{plant.url}/static/app.js") as resp:
        assert resp.status == 200 and resp.content_type == "text/javascript"
        assert "/api/status" in await resp.text()
    for missing in ("/static/server.py", "/static/..%2Fserver.py", "/static/index.htm"):
        async with http.get(f"{plant.url}{missing}") as resp:
            assert resp.status == 404, missing
    async with http.get(f"{plant.url}/metrics") as resp:
        assert resp.status == 200 and "vpp_plan_status" in await resp.text()
    async with http.get(f"{plant.url}/api/status") as resp:
        assert resp.headers["Cache-Control"] == "no-store"
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert "Set-Cookie" not in resp.headers


async def test_the_plan_answer_follows_polls_and_plans(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    """/api/plan keeps its encoded steps between requests: it must still change with every
    poll the page has seen, every new plan, and "now"."""
    api = plant.app[API_KEY]

    async def answer_and_view() -> tuple[Any, Any]:
        _, answer = await call(http, "GET", f"{plant.url}/api/plan")
        view = plan_view(plant.state, api.watch, plant.clock.now())
        return answer, json.loads(json.dumps(view))

    first, view = await answer_and_view()
    assert first == view
    again, _ = await answer_and_view()
    assert again == first
    plant.fleet.device("pv-002").fault = "error"  # its output leaves the measured mean
    plant.clock.advance(10)
    await plant.ctl.run_job("poll")
    polled, view = await answer_and_view()
    assert polled == view and polled["now"] != first["now"]
    assert polled["steps"][0]["actual"] != first["steps"][0]["actual"]
    await plant.ctl.run_job("plan")
    planned, view = await answer_and_view()
    assert planned == view and planned["created_at"] != polled["created_at"]
    assert plant.state.plans_total >= 2
