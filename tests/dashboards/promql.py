"""Reading the dashboards and rules of ``dashboards/`` for tests: their PromQL expressions, the
metric names and label matchers in them, Grafana variables substituted, comparisons split."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
GRAFANA = DASHBOARDS / "grafana"
RULES = DASHBOARDS / "alerts.yml"

#: What Grafana puts in for its built-in variables when the live test evaluates a panel.
BUILTINS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
METRIC = re.compile(r"\b(vpp_[a-z0-9_]+)\b(\s*\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"')
COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


def load_generator() -> ModuleType:
    """``dashboards/generate.py`` as a module."""
    spec = importlib.util.spec_from_file_location(
        "vpp_dashboards_generate", DASHBOARDS / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON file by file name."""
    return {
        p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(GRAFANA.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries data (rows and their nested panels flattened)."""
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            yield from (p for p in panel.get("panels", []))
        else:
            yield panel


@dataclass(frozen=True)
class Expr:
    """One expression and where it comes from, e.g. ``vpp-heat.json: COP [B]``."""

    where: str
    expr: str
    #: True for an alert condition: healthy, it is correctly empty.
    condition: bool = False


def panel_exprs() -> list[Expr]:
    found = []
    for name, board in dashboards().items():
        for panel in panels(board):
            for t in panel.get("targets", []):
                found.append(Expr(f"{name}: {panel['title']} [{t['refId']}]", t["expr"]))
    return found


def rules() -> list[dict[str, Any]]:
    """Every rule of ``alerts.yml``."""
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def rule_exprs() -> list[Expr]:
    return [Expr(f"alerts.yml: {r['alert']}", r["expr"], condition=True) for r in rules()]


def metric_uses(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched on it) for each vpp metric in ``expr``."""
    return [
        (m.group(1), {name for name, _ in MATCHER.findall(m.group(3) or "")})
        for m in METRIC.finditer(expr)
    ]


def substitute(expr: str, site: str) -> str:
    """Grafana's variables replaced as a dashboard with one site and all devices would
    (``site`` as it is: a label value without regular-expression characters; all agents)."""
    out = expr.replace("$site", site).replace("$device", ".*").replace("$agent", ".*")
    for name, value in BUILTINS.items():
        out = out.replace(name, value)
    return out


def split_comparison(expr: str) -> tuple[str, str] | None:
    """(left, right) of the top-level comparison of ``expr``, or None if it has none."""
    depth, quote, i = 0, "", 0
    while i < len(expr):
        c = expr[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            for op in COMPARISONS:
                if expr.startswith(op, i) and not expr.startswith("=~", i):
                    return expr[:i].strip(), expr[i + len(op) :].strip()
        i += 1
    return None


def sides_to_evaluate(item: Expr) -> list[str]:
    """The expression itself, or for an alert condition each side that reads a series (a
    condition is empty while all is well; its sides must still return data)."""
    if not item.condition:
        return [item.expr]
    parts = split_comparison(item.expr)
    if parts is None:
        return [item.expr]
    return [side for side in parts if not re.fullmatch(r"[0-9.eE+-]+", side)]
