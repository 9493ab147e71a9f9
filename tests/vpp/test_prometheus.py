"""The controller's /metrics over HTTP, scraped by a real Prometheus server on loopback."""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import tests.prometheus
from adapters.snapshot import BatteryReading
from tests.conftest import LOOPBACK
from tests.prometheus import PrometheusServer, require_prometheus
from tests.vpp.test_metrics import NOON, documented, live_state, reading_of
from vpp.control.state import ControllerState
from vpp.core.clock import ManualClock
from vpp.core.site import parse_site
from vpp.metrics import Metrics
from vpp.web import DEFAULT_HOST, METRICS_CONTENT_TYPE, STATE_KEY, WebServer, make_app, serve
from vpp.web.server import SHUTDOWN_TIMEOUT_S


def tiny_state() -> ControllerState:
    site = parse_site(
        {"site": {"name": "web-test"}, "grid": {"import_limit_w": 1e5, "export_limit_w": 5e4}}
    )
    return ControllerState(site=site, started_at=NOON)


async def test_metrics_and_healthz_are_served_on_loopback() -> None:
    state, registry = tiny_state(), CollectorRegistry()
    Metrics(state, registry, ManualClock(NOON))
    app = make_app(state, registry)
    assert WebServer(app).host == DEFAULT_HOST == LOOPBACK
    async with serve(app, port=0) as server, aiohttp.ClientSession() as http:
        assert server.port > 0
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == METRICS_CONTENT_TYPE
            text = await resp.text()
        async with http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 200 and await resp.text() == "ok\n"
        async with http.get(f"{server.url}/nothing-here") as resp:
            assert resp.status == 404
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"vpp_plan_status", "vpp_grid_import_limit_watts", "vpp_job_duration_seconds"} <= names


async def test_routes_can_be_added_and_a_taken_port_is_named() -> None:
    state, registry = tiny_state(), CollectorRegistry()

    async def site_name(request: web.Request) -> web.Response:
        return web.Response(text=request.app[STATE_KEY].site.site.name)

    app = make_app(state, registry)
    app.router.add_get("/api/site", site_name)
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve on {LOOPBACK}:{port}"):
            await WebServer(make_app(state, registry), LOOPBACK, port).start()
    server = WebServer(app, port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/api/site") as resp:
            assert await resp.text() == "web-test"
    finally:
        await server.stop()
        await server.stop()  # idempotent


async def test_prometheus_scrapes_every_documented_metric(tmp_path: Path) -> None:
    require_prometheus()
    clock = ManualClock(NOON)
    state = await live_state(clock)
    registry = CollectorRegistry()
    metrics = Metrics(state, registry, clock)
    assert state.plan is not None
    metrics.observe_plan(state.plan.info)
    metrics.observe_job("poll", 0.05)
    async with serve(make_app(state, registry), port=0) as server:
        with PrometheusServer([f"{LOOPBACK}:{server.port}"], tmp_path) as prom:
            await prom.wait_for_async('up{job="vpp"} == 1', timeout_s=20)
            await prom.wait_for_async("vpp_plan_status", timeout_s=10)
            missing, not_finite = [], []
            for name, kind in documented().items():
                if name.startswith("vpp_grid_signal_"):
                    continue  # no signals in this state: tests/vpp/control/test_process.py
                if name.startswith("vpp_city_"):
                    continue  # agent and coordinator series: tests/dashboards/test_live_city.py
                expr = f"{name}_count" if kind == "histogram" else name
                series = await prom.query_async(expr)
                if not series:
                    missing.append(expr)
                not_finite += [expr for s in series if not math.isfinite(float(s["value"][1]))]
            soc = await prom.query_async('vpp_device_soc_ratio{device="bat-a"}')
            scraped_age = await prom.query_async("vpp_plan_age_seconds")
            t0 = time.monotonic()
            await server.stop()  # while Prometheus still holds a keep-alive connection
            assert time.monotonic() - t0 < SHUTDOWN_TIMEOUT_S + 1.0
    assert not missing, f"documented but not in Prometheus: {missing}"
    assert not not_finite, f"not finite: {not_finite}"
    assert len(documented()) > 70
    soc_pct = reading_of(state.snapshot, "bat-a", BatteryReading).soc_pct
    assert soc_pct is not None and float(soc[0]["value"][1]) == soc_pct / 100
    assert float(scraped_age[0]["value"][1]) == 0.0  # the ManualClock did not move


def test_missing_prometheus_skips_locally_but_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tests.prometheus, "find_prometheus", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y prometheus"):
        require_prometheus()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_prometheus()
