"""Building blocks for the Grafana dashboards in this folder (JSON model, schema version 39).

Every panel queries the Prometheus data source chosen in the ``datasource`` variable and every
expression filters on the ``site`` variable, which lists the ``site`` label that the scrape
config (``prometheus.yml``) puts on each controller's series. ``generate.py`` uses these to
write the dashboard files; edit the dashboards there, not in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
#: Label filters for site-wide and per-device series.
SITE = 'site=~"$site"'
DEVICE = 'site=~"$site", device=~"$device"'
WIDTH = 24

Json = dict[str, Any]


def target(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False, table: bool = False
) -> Json:
    """One PromQL query of a panel."""
    return {
        "refId": ref,
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": "table" if table else "time_series",
    }


def targets(*queries: tuple[str, str], instant: bool = False, table: bool = False) -> list[Json]:
    """Queries ``(expr, legend)`` with reference ids A, B, C, ..."""
    return [
        target(expr, legend, chr(ord("A") + i), instant, table)
        for i, (expr, legend) in enumerate(queries)
    ]


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


GREEN = thresholds((None, "green"))


@dataclass
class Layout:
    """Places panels left to right in rows of 24 columns; numbers them from 1."""

    panels: list[Json] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_h: int = 0

    def add(self, panel: Json, w: int, h: int) -> None:
        if self.x + w > WIDTH:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str) -> None:
        """A full-width row header."""
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, WIDTH, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0


def _panel(
    kind: str,
    title: str,
    description: str,
    queries: list[Json],
    unit: str,
    options: Json,
    custom: Json | None = None,
    **defaults: Any,
) -> Json:
    overrides = defaults.pop("overrides", [])
    field_defaults = {
        "unit": unit,
        "custom": custom or {},
        "thresholds": defaults.pop("thresholds", GREEN),
        "color": {"mode": defaults.pop("color", "palette-classic")},
        **defaults,
    }
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": queries,
        "fieldConfig": {"defaults": field_defaults, "overrides": overrides},
        "options": options,
    }


def timeseries(
    title: str,
    description: str,
    *queries: tuple[str, str],
    unit: str = "watt",
    stack: bool = False,
    overrides: list[Json] | None = None,
    **defaults: Any,
) -> Json:
    """A time series panel, legend as a table with last and max values."""
    custom = {
        "drawStyle": "line",
        "lineWidth": 2,
        "fillOpacity": 10 if stack else 0,
        "showPoints": "never",
        "spanNulls": True,
        "lineInterpolation": "stepAfter",
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": defaults.pop("thresholds_style", "off")},
    }
    options = {
        "legend": {
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
            "calcs": ["lastNotNull", "min", "max"],
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel(
        "timeseries",
        title,
        description,
        targets(*queries),
        unit,
        options,
        custom,
        overrides=overrides or [],
        **defaults,
    )


def stat(
    title: str,
    description: str,
    *queries: tuple[str, str],
    unit: str = "watt",
    text_mode: str = "value_and_name",
    **defaults: Any,
) -> Json:
    """A single-value panel (last value), coloured by its thresholds."""
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "textMode": text_mode,
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return _panel(
        "stat",
        title,
        description,
        targets(*queries),
        unit,
        options,
        color=defaults.pop("color", "thresholds"),
        **defaults,
    )


def gauge(
    title: str, description: str, query: tuple[str, str], unit: str = "percentunit", **defaults: Any
) -> Json:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    }
    return _panel(
        "gauge", title, description, targets(query), unit, options, color="thresholds", **defaults
    )


def bargauge(
    title: str, description: str, query: tuple[str, str], unit: str, **defaults: Any
) -> Json:
    """Horizontal bars, one per series (e.g. the ten worst devices)."""
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
    }
    return _panel(
        "bargauge",
        title,
        description,
        targets(query, instant=True),
        unit,
        options,
        color="thresholds",
        **defaults,
    )


def plan_status_stat() -> dict[str, Any]:
    """The status of the plan in force, as the overview and the optimizer board show it."""
    return stat(
        "Plan",
        "Status of the plan in force.",
        (f"vpp_plan_status{{{SITE}}} == 1", "{{status}}"),
        unit="none",
        text_mode="name",
    )


def state_timeline(
    title: str, description: str, query: tuple[str, str], mappings: list[Json]
) -> Json:
    options = {
        "showValue": "never",
        "mergeValues": True,
        "rowHeight": 0.8,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
    }
    return _panel(
        "state-timeline",
        title,
        description,
        targets(query),
        "none",
        options,
        {"fillOpacity": 80, "lineWidth": 0},
        mappings=mappings,
        color="thresholds",
    )


def table(
    title: str,
    description: str,
    columns: list[tuple[str, str, str]],
    sort_by: str,
    descending: bool = True,
) -> Json:
    """Instant queries merged into one row per device: ``columns`` are (expr, name, unit)."""
    queries = targets(*[(expr, name) for expr, name, _ in columns], instant=True, table=True)
    rename = {
        f"Value #{q['refId']}": name for q, (_, name, _) in zip(queries, columns, strict=True)
    }
    excluded = {"Time": True, "__name__": True, "job": True, "instance": True}
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "unit", "value": unit}],
        }
        for _, name, unit in columns
    ]
    panel = _panel(
        "table",
        title,
        description,
        queries,
        "none",
        {
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [{"displayName": sort_by, "desc": descending}],
        },
        {"align": "auto", "cellOptions": {"type": "auto"}},
        overrides=overrides,
    )
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": excluded, "renameByName": rename}},
    ]
    return panel


def dashed(pattern: str, color: str) -> Json:
    """Override: series whose name matches ``pattern`` drawn dashed in ``color``."""
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 6]}},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": color}},
        ],
    }


#: Where the ``site`` variable takes its values: each controller's scrape target.
SITE_QUERY = "label_values(vpp_controller_info, site)"


def variables(with_device: bool, site_query: str = SITE_QUERY) -> list[Json]:
    """Data source, site (and device) variables; "All" matches everything with ``.*``."""

    def query_var(name: str, label: str, query: str) -> Json:
        return {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": DS,
            "definition": query,
            "query": {"query": query, "refId": f"{name}-values"},
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
            "regex": "",
            "hide": 0,
            "options": [],
        }

    found = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        query_var("site", "Site", site_query),
    ]
    if with_device:
        found.append(
            query_var("device", "Device", 'label_values(vpp_device_up{site=~"$site"}, device)')
        )
    return found


def dashboard(
    uid: str,
    title: str,
    description: str,
    layout: Layout,
    with_device: bool = False,
    site_query: str = SITE_QUERY,
) -> Json:
    """A complete dashboard, linked to the other vpp dashboards (same variables carried)."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["vpp"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "tags": ["vpp"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "title": "vpp",
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables(with_device, site_query)},
        "panels": layout.panels,
    }
