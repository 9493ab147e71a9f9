"""Every panel and rule expression of ``dashboards/`` against a real Prometheus scraping a
running demo controller.

The controller runs in-process (simulated fleet, planner, recorder, scheduler, HTTP server) at
60x speed; Prometheus (Debian's ``prometheus``) scrapes it every second with the config of
``dashboards/prometheus.yml`` (same job, same ``site`` label, the same rule file). Each
expression, with Grafana's variables filled in, must parse and return data. Alert conditions
are empty while the plant is healthy, so for them each side of the comparison is evaluated
instead (``vpp_device_up == 0`` -> ``vpp_device_up``), and Prometheus must report every rule
as evaluated without error.
"""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.dashboards.promql import (
    DASHBOARDS,
    RULES,
    Expr,
    dashboards,
    panel_exprs,
    rule_exprs,
    sides_to_evaluate,
    substitute,
)
from tests.prometheus import PrometheusServer, require_prometheus
from tests.vpp.web.live import demo_site, running_controller, wait_until
from vpp.control.controller import Controller
from vpp.control.state import ControllerState
from vpp.signals import Signal, SignalKind

SITE_LABEL = "leipzig-test"
CITY = "vpp-city.json"
START = datetime(2026, 6, 21, 7, 0, tzinfo=UTC)
#: Scrapes after the first plan before querying: rate() and increase() need two samples.
SETTLE_S = 6.0


def prometheus_config(target: str) -> dict[str, Any]:
    """``dashboards/prometheus.yml`` pointed at ``target``, scraping and evaluating every
    second, with the rule file by absolute path."""
    config = copy.deepcopy(yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text()))
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES)]
    config.pop("alerting", None)  # evaluate only: notify nobody
    [static] = config["scrape_configs"][0]["static_configs"]
    static["targets"] = [target]
    static["labels"]["site"] = SITE_LABEL
    return config


def faults_the_demo_does_not_make(state: ControllerState) -> None:
    """Counters that only exist after a fault (a device read back a different value, a
    setpoint clamped or refused): give them a series so their panels and rules have data."""
    for counts in (
        state.readback_mismatches_total,
        state.setpoint_clamps_total,
        state.setpoint_refusals_total,
    ):
        counts["bat-001"] = counts.get("bat-001", 0) + 1


def signals_the_demo_does_not_send(ctl: Controller) -> None:
    """An export cap and a 60 % stage for the whole site from a test source, so the signal
    panels and rules have series (the demo's own control box stays at 100 %)."""
    since = ctl.clock.now()
    watch = ctl.signal_watch
    assert watch is not None
    watch.extra = [
        Signal("test", SignalKind.EXPORT_CAP, since, limit_w=500_000.0),
        Signal("test", SignalKind.IMPORT_CAP, since, limit_w=800_000.0),
        Signal("test", SignalKind.FEED_IN, since, feed_in_pct=60.0),
    ]


def controller_exprs() -> list[Expr]:
    """Every panel's expressions but the city board's (a controller does not export those)."""
    return [e for e in panel_exprs() if not e.where.startswith(CITY)]


async def evaluate(prom: PrometheusServer, items: list[Expr]) -> list[str]:
    """Problems: expressions that fail to parse or return nothing."""
    problems = []
    for item in items:
        for expr in sides_to_evaluate(item):
            query = substitute(expr, SITE_LABEL)
            try:
                result = await prom.query_async(query)
            except RuntimeError as exc:
                problems.append(f"{item.where}: {exc}")
                continue
            if not result:
                problems.append(f"{item.where}: no data for {query}")
    return problems


async def rule_health(prom: PrometheusServer) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{prom.url}/api/v1/rules") as resp:
        groups = (await resp.json())["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


async def test_every_panel_and_rule_expression_returns_data(tmp_path: Path) -> None:
    require_prometheus()
    assert len(controller_exprs()) > 80 and len(rule_exprs()) > 10  # something to evaluate
    started = time.monotonic()
    site = demo_site()
    # The thermal store starts empty, so the heat pump runs from the first quarter hour (a
    # June morning with a stored store leaves it off, and the COP panel has nothing to show).
    empty = site.heat.model_copy(update={"store_initial_pct": 0.0})
    site = site.model_copy(update={"heat": empty})
    async with running_controller(site, tmp_path / "vpp.sqlite", start=START) as (ctl, url):
        faults_the_demo_does_not_make(ctl.state)
        signals_the_demo_does_not_send(ctl)
        prom = PrometheusServer([], tmp_path)
        prom.config = prometheus_config(url.removeprefix("http://"))
        with prom:
            await prom.wait_for_async(f'up{{job="vpp", site="{SITE_LABEL}"}} == 1', 20)
            await prom.wait_for_async("vpp_plan_solve_seconds_count > 0", 20)
            settle_until = time.monotonic() + SETTLE_S
            await wait_until(lambda: time.monotonic() > settle_until, SETTLE_S + 1, "settle")

            for name, board in dashboards().items():
                if name == CITY:  # the coordinator's: tests/dashboards/test_live_city.py
                    continue
                for var in board["templating"]["list"]:
                    if var["type"] == "query":
                        metric = var["definition"].split("(", 1)[1].rsplit(",", 1)[0]
                        values = await prom.query_async(substitute(metric, SITE_LABEL))
                        label = var["name"]
                        assert {s["metric"].get(label) for s in values} - {None}, var["name"]

            problems = await evaluate(prom, controller_exprs())
            problems += await evaluate(prom, rule_exprs())
            rules = await rule_health(prom)
    assert not problems, "\n".join(problems)
    assert len(rules) == len(rule_exprs())
    unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not unhealthy
    assert time.monotonic() - started < 90
