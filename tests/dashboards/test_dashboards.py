"""The Grafana dashboards, Prometheus config and alert rules of ``dashboards/``.

Structure (panel ids, data sources, variables, metric names against vpp/METRICS.md), promtool
(check config, check rules, the rule unit tests), and a live run: a real Prometheus scrapes a
running demo controller and evaluates every panel and rule expression.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.dashboards.promql import (
    DASHBOARDS,
    GRAFANA,
    ROOT,
    dashboards,
    load_generator,
    metric_uses,
    panel_exprs,
    panels,
    rule_exprs,
    rules,
    split_comparison,
    substitute,
)
from vpp.city.metrics import AGENT_SPECS, COORDINATOR_SPECS
from vpp.metrics import HISTOGRAMS, SPECS
from vpp.signals.metrics import SPECS as SIGNAL_SPECS

DS = {"type": "prometheus", "uid": "${datasource}"}
PER_DEVICE = ("vpp_device_", "vpp_setpoint_")
#: The city board's site variable lists coordinators, which export no vpp_controller_info.
SITE_QUERIES = {"vpp-city.json": "label_values(vpp_city_plans_total, site)"}
SITE_QUERY = "label_values(vpp_controller_info, site)"
#: Labels every scraped series may carry besides its own.
TARGET_LABELS = {"site", "job", "instance"}
PROMTOOL = "/usr/bin/promtool"


def scraped_labels(labels: tuple[str, ...]) -> set[str]:
    """A series' labels as Prometheus stores them: one that a target label of the same name
    displaces is kept as ``exported_<name>`` (e.g. the ``job`` of ``vpp_job_runs_total``)."""
    own = set(labels)
    return (
        (own - TARGET_LABELS) | {f"exported_{name}" for name in own & TARGET_LABELS} | TARGET_LABELS
    )


def known_metrics() -> dict[str, set[str]]:
    """Every series name the controller exports, with the labels it may be matched on."""
    names: dict[str, set[str]] = {}
    for spec in (*SPECS, *SIGNAL_SPECS, *AGENT_SPECS, *COORDINATOR_SPECS):
        name = f"{spec.name}_total" if spec.type == "counter" else spec.name
        names[name] = scraped_labels(spec.labels)
    for spec in HISTOGRAMS:
        for suffix in ("_bucket", "_count", "_sum"):
            extra = {"le"} if suffix == "_bucket" else set()
            names[spec.name + suffix] = scraped_labels(spec.labels) | extra
    return names


def documented() -> set[str]:
    text = (ROOT / "vpp" / "METRICS.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(vpp_[a-z0-9_]+)`", text, flags=re.MULTILINE))


# -- dashboards -------------------------------------------------------------------------------


def test_the_json_files_are_what_the_generator_writes() -> None:
    generator = load_generator()
    assert sorted(p.name for p in GRAFANA.glob("*.json")) == sorted(generator.DASHBOARDS)
    for name, make in generator.DASHBOARDS.items():
        text = (GRAFANA / name).read_text(encoding="utf-8")
        assert text == generator.render(make), f"{name} is stale: run dashboards/generate.py"


def test_dashboards_are_complete_grafana_models() -> None:
    boards = dashboards()
    assert set(boards) == {
        "vpp-overview.json",
        "vpp-devices.json",
        "vpp-heat.json",
        "vpp-optimizer.json",
        "vpp-signals.json",
        "vpp-city.json",
    }
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        assert board["schemaVersion"] == 39 and board["title"] and "vpp" in board["tags"]
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["site"]["definition"] == SITE_QUERIES.get(name, SITE_QUERY)
        assert variables["site"]["datasource"] == DS
        if name == "vpp-devices.json":
            assert (
                variables["device"]["definition"]
                == 'label_values(vpp_device_up{site=~"$site"}, device)'
            )
        if name == "vpp-city.json":
            assert (
                variables["agent"]["definition"]
                == 'label_values(vpp_city_agent_online{site=~"$site"}, agent)'
            )
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in panels(board):
            where = f"{name}: {panel['title']}"
            assert panel["datasource"] == DS, where
            assert panel["targets"], f"{where}: no queries"
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), where
            for t in panel["targets"]:
                assert t["datasource"] == DS and t["expr"].strip(), where
        _check_layout(name, board["panels"])


def _check_layout(name: str, all_panels: list[dict[str, Any]]) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in all_panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']}"
        mine = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & mine, f"{name}: {panel['title']} overlaps another panel"
        cells |= mine


def test_every_expression_filters_by_site_and_device() -> None:
    for item in panel_exprs():
        for metric, labels in metric_uses(item.expr):
            assert "site" in labels, f"{item.where}: {metric} without the site filter"
            if item.where.startswith("vpp-devices.json") and metric.startswith(PER_DEVICE):
                assert "device" in labels, f"{item.where}: {metric} without the device filter"
            per_agent = metric.startswith("vpp_city_agent_") and metric.endswith(
                ("_watts", "_seconds", "_online", "_offline", "_seq")
            )
            if (
                item.where.startswith("vpp-city.json")
                and per_agent
                and " by (site)" not in item.expr
            ):
                assert "agent" in labels, f"{item.where}: {metric} without the agent filter"
        assert set(re.findall(r"\$\w+", item.expr)) <= {
            "$site",
            "$device",
            "$agent",
            "$__rate_interval",
            "$__interval",
            "$__range",
        }, item.where


def test_every_metric_name_and_label_exists() -> None:
    known, docs = known_metrics(), documented()
    used: set[str] = set()
    for item in [*panel_exprs(), *rule_exprs()]:
        for metric, labels in metric_uses(item.expr):
            used.add(metric)
            assert metric in known, f"{item.where}: unknown metric {metric}"
            base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
            assert metric in docs or base in docs, f"{item.where}: {metric} not in METRICS.md"
            unknown = labels - known[metric]
            assert not unknown, f"{item.where}: {metric} has no label {unknown}"
            renamed = {f"exported_{name}" for name in labels} & known[metric]
            assert not renamed, (
                f"{item.where}: {metric} is matched on a label Prometheus renames to {renamed}"
            )
    assert len(used) > 60  # the dashboards cover most of what the controller exports


# -- rules and promtool -----------------------------------------------------------------------


def test_alert_rules_say_what_where_and_how_bad() -> None:
    found, known = rules(), known_metrics()
    names = [r["alert"] for r in found]
    assert len(names) == len(set(names))
    required = {
        "VppDevicesOffline",
        "VppNotControlling",
        "VppPlanStale",
        "VppPlanFallback",
        "VppGridImportNearLimit",
        "VppGridExportNearLimit",
        "VppSetpointReadbackMismatch",
        "VppRecorderErrors",
        "VppSolveTimeNearBudget",
    }
    assert required <= set(names)
    for rule in found:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        notes = rule["annotations"]
        assert {"summary", "description"} <= set(notes)
        for text in notes.values():
            assert "$labels.site" in text, f"{rule['alert']}: annotation without the site"
        per_device = any("device" in known[m] for m, _ in metric_uses(rule["expr"]))
        if per_device and " by (" not in rule["expr"]:  # the alert keeps the device label
            assert "$labels.device" in notes["summary"], rule["alert"]
    page = set(re.findall(r'"(Vpp\w+)"', (ROOT / "vpp/web/alerts.py").read_text()))
    page |= {f"VppGrid{d}{w}Limit" for d in ("Import", "Export") for w in ("Near", "Over")}
    page = {n for n in page if "{" not in n}
    assert page <= set(names), f"page alerts without a rule: {page - set(names)}"


def require_promtool() -> str:
    path = PROMTOOL if os.access(PROMTOOL, os.X_OK) else shutil.which("promtool")
    if path is not None:
        return path
    reason = "promtool not installed (apt-get install -y prometheus)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it, not skip these tests")
    pytest.skip(reason)


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_promtool(args: tuple[str, ...]) -> None:
    result = subprocess.run(
        [require_promtool(), *args],
        cwd=DASHBOARDS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_provisioning_points_grafana_at_prometheus_and_the_files() -> None:
    sources = yaml.safe_load((DASHBOARDS / "provisioning/datasources.yaml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http")
    assert source["jsonData"]["timeInterval"] == "15s"
    providers = yaml.safe_load((DASHBOARDS / "provisioning/dashboards.yaml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    config = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    [job] = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9310"]
    assert job["static_configs"][0]["labels"]["site"]
    assert config["global"]["scrape_interval"] == "15s"
    [alertmanagers] = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


def test_comparisons_split_at_the_top_level_only() -> None:
    assert split_comparison("vpp_device_up == 0") == ("vpp_device_up", "0")
    assert split_comparison('vpp_x{a=~"b"} > 0.9 * vpp_y') == ('vpp_x{a=~"b"}', "0.9 * vpp_y")
    assert split_comparison('sum by (site) (vpp_x{state="offline"})') is None
    assert (
        substitute('rate(x{site=~"$site", device=~"$device"}[$__rate_interval])', "a-b")
        == 'rate(x{site=~"a-b", device=~".*"}[1m])'
    )
