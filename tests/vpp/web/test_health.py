"""The top-line state against a real controller: ok while everything answers, degraded with
some devices offline or a fallback plan, not controlling with every device offline or paused;
the same state in /api/status, in /metrics and on the page's alerts.

The page's near-limit and over-limit alerts use the factors of the Prometheus rules.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import aiohttp
import yaml

from tests.vpp.web.plant import Plant, call
from vpp.web.views import GRID_NEAR_RATIO, GRID_OVER_RATIO

ROOT = Path(__file__).resolve().parents[3]


async def _health(plant: Plant, http: aiohttp.ClientSession) -> dict:  # type: ignore[type-arg]
    _, status = await call(http, "GET", f"{plant.url}/api/status")
    return status["health"]  # type: ignore[no-any-return]


async def _metric_state(plant: Plant, http: aiohttp.ClientSession) -> str:
    async with http.get(f"{plant.url}/metrics") as resp:
        text = await resp.text()
    on = re.findall(r'^vpp_health_state\{state="(\w+)"\} 1\.0$', text, re.M)
    assert len(on) == 1, text
    return str(on[0])


async def test_ok_then_degraded_then_not_controlling(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    health = await _health(plant, http)
    assert health["state"] == "ok" and health["reasons"] == []
    assert health["plan_source"] == "optimizer"
    assert health["online"] == health["devices"] == len(plant.state.site.devices)
    assert await _metric_state(plant, http) == "ok"

    plant.fleet.device("pv-002").fault = "silent"
    plant.clock.advance(10)
    await plant.ctl.run_job("poll")
    health = await _health(plant, http)
    assert health["state"] == "degraded"
    assert health["offline_by_kind"] == {"pv": 1}
    assert any("1 of " in r and "pv 1" in r for r in health["reasons"])
    assert await _metric_state(plant, http) == "degraded"

    for dev in plant.state.site.devices:
        plant.fleet.device(dev.id).fault = "silent"
    plant.clock.advance(10)
    await plant.ctl.run_job("poll")
    health = await _health(plant, http)
    assert health["state"] == "not_controlling"
    assert health["online"] == 0 and health["controllable_online"] == 0
    assert health["reasons"][0].startswith("no controllable device answers")
    assert await _metric_state(plant, http) == "not_controlling"
    _, alerts = await call(http, "GET", f"{plant.url}/api/alerts")
    names = [a["name"] for a in alerts["active"]]
    # One alert for all the offline devices, one for the grid meter; not one per device.
    assert names.count("VppDevicesOffline") == 1 and names.count("VppGridMeterOffline") == 1
    grouped = next(a for a in alerts["active"] if a["name"] == "VppDevicesOffline")
    n = len(plant.state.site.devices) - 1
    assert grouped["summary"].startswith(f"{n} of {n + 1} devices offline")


async def test_fallback_plan_degrades_and_pause_stops(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    state = plant.state
    assert state.plan is not None
    info = dataclasses.replace(state.plan.info, status="fallback", fallback_reason="time limit")
    state.plan = dataclasses.replace(state.plan, info=info)
    health = await _health(plant, http)
    assert health["state"] == "degraded" and health["plan_source"] == "fallback"
    assert health["reasons"] == ["rule-based fallback plan: time limit"]
    state.dry_run = True
    health = await _health(plant, http)
    assert health["state"] == "not_controlling"
    assert health["reasons"][0].startswith("paused")
    state.dry_run = False
    plant.clock.advance(31 * 60)  # no new plan for two quarter hours: nothing is in force
    health = await _health(plant, http)
    assert health["state"] == "not_controlling"
    assert any(r.startswith("no fresh poll") for r in health["reasons"])
    assert any(r == "the plan is 31 min old" for r in health["reasons"])


def test_page_limits_agree_with_the_alert_rules() -> None:
    groups = yaml.safe_load((ROOT / "dashboards" / "alerts.yml").read_text())["groups"]
    exprs = {r["alert"]: r["expr"] for g in groups for r in g["rules"]}
    for direction in ("Import", "Export"):
        for name, ratio in (("NearLimit", GRID_NEAR_RATIO), ("OverLimit", GRID_OVER_RATIO)):
            expr = exprs[f"VppGrid{direction}{name}"]
            found = re.search(r"> ([0-9.]+) \* vpp_grid_\w+_limit_watts", expr)
            assert found is not None, expr
            assert float(found.group(1)) == ratio, (name, expr)
    js = (ROOT / "vpp" / "web" / "static" / "app.js").read_text()
    # The page's bar takes its thresholds from /api/status, not from numbers of its own.
    assert "0.9" not in re.sub(r"//.*", "", js)
