"""The city dashboard (``vpp-city.json``), written by ``generate.py``.

What the city's operator wants to see of the coordinator (``vpp coordinator``, its
``/metrics``; see docs/city.md): which district agents are there and healthy, whether each
follows the city's targets or its own plan, targets against what the districts deliver, the
messages over the broker, and how long a city plan takes until every agent holds it.

The ``site`` variable lists the coordinators (the ``site`` label of their scrape targets,
found through ``vpp_city_plans_total``); the districts' own dashboards are the other boards.
"""

from __future__ import annotations

from typing import Any

from grafana import SITE, Layout, dashboard, stat, state_timeline, table, thresholds, timeseries

AGENT = f'{SITE}, agent=~"$agent"'
ZERO = f"0 * sum by (site) (vpp_city_agent_online{{{SITE}}})"


def _health(lay: Layout) -> None:
    lay.row("City now")
    lay.add(
        stat(
            "Agents online",
            "District agents whose status is online (the broker publishes offline as their "
            "last will).",
            (f"sum by (site) (vpp_city_agent_online{{{SITE}}})", "online"),
            (f"count by (site) (vpp_city_agent_online{{{SITE}}})", "of"),
            unit="none",
        ),
        5,
        5,
    )
    lay.add(
        stat(
            "On their own plan",
            "Agents whose targets expired or never came: they follow the district's own plan.",
            (
                f'sum by (site) (vpp_city_agent_plan_source{{{SITE}, source!="target"}}) or {ZERO}',
                "{{site}}",
            ),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Devices offline",
            "Devices the agents cannot read, all districts.",
            (f"sum by (site) (vpp_city_agent_devices_offline{{{SITE}}}) or {ZERO}", "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Last city plan",
            "Solve time of the last city plan, and from its start until the last agent "
            "acknowledged holding its targets.",
            (f"vpp_city_plan_seconds{{{SITE}}}", "solve"),
            (f"vpp_city_targets_held_seconds{{{SITE}}}", "all held"),
            unit="s",
            thresholds=thresholds((None, "green"), (5, "orange"), (10, "red")),
        ),
        6,
        5,
    )
    lay.add(
        stat(
            "Broker",
            "1 while the coordinator is connected to the broker.",
            (f"vpp_city_link_connected{{{SITE}}}", "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "red"), (1, "green")),
        ),
        5,
        5,
    )


def _agents(lay: Layout) -> None:
    lay.row("Agents")
    lay.add(
        table(
            "Agents",
            "Per district: status, the plan it follows, devices, age of its last telemetry "
            "and the messages the coordinator holds without a gap.",
            [
                (f"vpp_city_agent_online{{{AGENT}}}", "online", "none"),
                (f'vpp_city_agent_plan_source{{{AGENT}, source="target"}}', "on targets", "none"),
                (f"vpp_city_agent_devices_online{{{AGENT}}}", "devices online", "none"),
                (f"vpp_city_agent_devices_offline{{{AGENT}}}", "devices offline", "none"),
                (f"vpp_city_agent_telemetry_age_seconds{{{AGENT}}}", "telemetry age", "s"),
                (f"vpp_city_agent_stored_seq{{{AGENT}}}", "stored seq", "none"),
            ],
            "online",
            descending=False,
        ),
        14,
        9,
    )
    lay.add(
        state_timeline(
            "Agents online",
            "Status of each agent over time (offline: its last will, or never connected).",
            (f"vpp_city_agent_online{{{AGENT}}}", "{{agent}}"),
            [
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "offline", "color": "red"},
                        "1": {"text": "online", "color": "green"},
                    },
                }
            ],
        ),
        10,
        9,
    )


def _targets(lay: Layout) -> None:
    lay.row("Targets against delivered")
    lay.add(
        timeseries(
            "Battery: target and measured",
            "Net battery power per district (> 0 discharging): what the targets ask for now "
            "and what the agent measures.",
            (f"vpp_city_agent_target_battery_watts{{{AGENT}}}", "{{agent}} target"),
            (f"vpp_city_agent_battery_watts{{{AGENT}}}", "{{agent}} measured"),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "PV: cap and measured",
            "The most PV power the targets allow per district, and what it puts out.",
            (f"vpp_city_agent_target_pv_watts{{{AGENT}}}", "{{agent}} cap"),
            (f"vpp_city_agent_pv_watts{{{AGENT}}}", "{{agent}} measured"),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Grid exchange per district",
            "Measured at each district's grid meter (> 0 import), stacked: the substation's load.",
            (f"vpp_city_agent_grid_watts{{{AGENT}}}", "{{agent}}"),
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Battery: target minus measured",
            "How far each district is from its battery target now.",
            (
                f"vpp_city_agent_target_battery_watts{{{AGENT}}} - "
                f"vpp_city_agent_battery_watts{{{AGENT}}}",
                "{{agent}}",
            ),
        ),
        12,
        8,
    )


def _messages(lay: Layout) -> None:
    lay.row("Messages and plans")
    lay.add(
        timeseries(
            "Messages per second",
            "Over the broker: received from the agents, published by the coordinator, "
            "stored in the history; duplicates heard again and messages refused.",
            (f"rate(vpp_city_messages_received_total{{{SITE}}}[$__rate_interval])", "received"),
            (f"rate(vpp_city_messages_sent_total{{{SITE}}}[$__rate_interval])", "sent"),
            (f"rate(vpp_city_rows_stored_total{{{SITE}}}[$__rate_interval])", "stored"),
            (f"rate(vpp_city_duplicates_total{{{SITE}}}[$__rate_interval])", "duplicates"),
            (f"rate(vpp_city_messages_rejected_total{{{SITE}}}[$__rate_interval])", "refused"),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Targets and acknowledgements per hour",
            "Target messages sent and what the agents answered (applied, duplicate, refused).",
            (f"increase(vpp_city_targets_sent_total{{{SITE}}}[1h])", "sent"),
            (f"increase(vpp_city_target_acks_total{{{SITE}}}[1h])", "{{status}}"),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "City plan time",
            "Solve time of each city plan, time until every agent held its targets, and "
            "the districts in the plan.",
            (f"vpp_city_plan_seconds{{{SITE}}}", "solve"),
            (f"vpp_city_targets_held_seconds{{{SITE}}}", "all held"),
            unit="s",
        ),
        8,
        8,
    )


def city() -> dict[str, Any]:
    lay = Layout()
    _health(lay)
    _agents(lay)
    _targets(lay)
    _messages(lay)
    board = dashboard(
        "vpp-city",
        "vpp · city",
        "The city coordinator: district agents and their health, targets against delivered, "
        "messages, plan time.",
        lay,
        site_query="label_values(vpp_city_plans_total, site)",
    )
    board["templating"]["list"].append(_agent_variable())
    return board


def _agent_variable() -> dict[str, Any]:
    query = 'label_values(vpp_city_agent_online{site=~"$site"}, agent)'
    return {
        "type": "query",
        "name": "agent",
        "label": "Agent",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "definition": query,
        "query": {"query": query, "refId": "agent-values"},
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
