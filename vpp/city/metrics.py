"""Prometheus collectors of the city link, read at scrape time (see docs/city.md).

:class:`AgentCollector` sits on the district controller's registry next to its own metrics;
:class:`CoordinatorCollector` is the coordinator's. Both use the ``vpp_city_`` prefix. Every
series is declared once in :data:`AGENT_SPECS` / :data:`COORDINATOR_SPECS` (counters without
``_total``), which the dashboard tests read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vpp.metrics import MetricSpec, _c, _g

if TYPE_CHECKING:
    from vpp.city.agent import CityAgent
    from vpp.city.coordinator import Coordinator
    from vpp.city.link import Link

LINK_SPECS: tuple[MetricSpec, ...] = (
    _g("vpp_city_link_connected", "1 while connected to the broker."),
    _c("vpp_city_link_connects", "Connections made to the broker."),
    _c("vpp_city_messages_sent", "Messages published."),
    _c("vpp_city_sent_bytes", "Payload bytes published."),
    _c("vpp_city_messages_received", "Messages received."),
)
AGENT_SPECS: tuple[MetricSpec, ...] = (
    *LINK_SPECS,
    _g("vpp_city_outbox_messages", "Messages up the coordinator has not confirmed."),
    _g("vpp_city_outbox_bytes", "Payload bytes in the outbox."),
    _c("vpp_city_outbox_dropped", "Messages dropped from the full outbox, by stream.", "stream"),
    _c("vpp_city_targets", "Target messages heard, by what was done.", "status"),
    _c("vpp_city_target_refusals", "Targets refused, by reason.", "reason"),
    _c("vpp_city_target_expiries", "Targets that expired: the own plan took over."),
    _g("vpp_city_target_in_force", "1 while the coordinator's targets are in force."),
    _g("vpp_city_signals_in_force", "City-level grid signals in force at the agent now."),
)
COORDINATOR_SPECS: tuple[MetricSpec, ...] = (
    *LINK_SPECS,
    _g("vpp_city_agent_online", "1 while the agent's status is online.", "agent"),
    _g("vpp_city_agent_stored_seq", "Messages of the agent stored without a gap.", "agent"),
    _c("vpp_city_agent_dropped", "Messages the agent dropped from its full outbox.", "agent"),
    _g(
        "vpp_city_agent_battery_watts",
        "Battery power the agent measures (> 0 discharging).",
        "agent",
    ),
    _g("vpp_city_agent_target_battery_watts", "Battery power the targets ask for now.", "agent"),
    _g("vpp_city_agent_pv_watts", "PV power the agent measures.", "agent"),
    _g("vpp_city_agent_target_pv_watts", "Most PV power the targets allow now.", "agent"),
    _g("vpp_city_agent_grid_watts", "The district's grid exchange (> 0 import).", "agent"),
    _g("vpp_city_agent_devices_online", "Devices the agent reads.", "agent"),
    _g("vpp_city_agent_devices_offline", "Devices the agent cannot read.", "agent"),
    _g(
        "vpp_city_agent_plan_source",
        "1 for the plan the agent follows (target, local, none).",
        "agent",
        "source",
    ),
    _g("vpp_city_agent_telemetry_age_seconds", "Time since the agent's last telemetry.", "agent"),
    _c("vpp_city_plans", "City plans made."),
    _g("vpp_city_plan_seconds", "Solve time of the last city plan."),
    _g("vpp_city_plan_agents", "Districts in the last city plan."),
    _g(
        "vpp_city_targets_held_seconds",
        "From the start of the last plan to the last agent holding its targets.",
    ),
    _c("vpp_city_target_acks", "Acknowledgements heard, by status.", "status"),
    _c("vpp_city_targets_sent", "Target messages published."),
    _c("vpp_city_rows_stored", "Agent messages stored in history."),
    _c("vpp_city_duplicates", "Agent messages heard again, dropped."),
    _c("vpp_city_messages_rejected", "Agent messages refused (bad topic or payload)."),
    _g("vpp_city_signals_active", "City-level grid signals in force now, all agents."),
    _g("vpp_city_caps_active", "Substation caps in force now."),
    _g(
        "vpp_city_substation_limit_watts",
        "The substation's limit now, a cap in force included.",
        "direction",
    ),
    _c(
        "vpp_city_signal_changes",
        "City signals and caps added, cancelled or refused (operator API).",
        "action",
    ),
)
#: Names that carry no unit (counts and flags), for the naming test.
UNITLESS = {
    spec.name
    for spec in (*AGENT_SPECS, *COORDINATOR_SPECS)
    if not spec.name.endswith(("_watts", "_seconds", "_bytes"))
}


class _Families:
    """One metric family per spec; ``add`` skips absent values."""

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self.fams: dict[str, Metric] = {}
        for spec in specs:
            cls = CounterMetricFamily if spec.type == "counter" else GaugeMetricFamily
            self.fams[spec.name] = cls(spec.name, spec.help, labels=spec.labels)

    def add(self, name: str, value: float | None, *labels: str) -> None:
        if value is not None:
            self.fams[name].add_metric(list(labels), float(value))  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.fams.values())


def _link(out: _Families, link: Link | None) -> None:
    out.add("vpp_city_link_connected", 1.0 if link is not None and link.stats.connected else 0.0)
    if link is None:
        return
    st = link.stats
    out.add("vpp_city_link_connects", st.connects_total)
    out.add("vpp_city_messages_sent", st.published_total)
    out.add("vpp_city_sent_bytes", st.published_bytes_total)
    out.add("vpp_city_messages_received", st.received_total)


class AgentCollector(Collector):
    def __init__(self, agent: CityAgent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        a = self.agent
        out = _Families(AGENT_SPECS)
        _link(out, a.link)
        out.add("vpp_city_outbox_messages", a.outbox.pending())
        out.add("vpp_city_outbox_bytes", a.outbox.size_bytes())
        for stream, n in sorted(a.outbox.dropped().items()):
            out.add("vpp_city_outbox_dropped", n, stream)
        for status in ("applied", "duplicate", "refused"):
            out.add("vpp_city_targets", a.stats.targets.get(status, 0), status)
        for reason in ("out_of_order", "expired", "invalid"):
            out.add("vpp_city_target_refusals", a.stats.refusals.get(reason, 0), reason)
        out.add("vpp_city_target_expiries", a.stats.fallbacks_total)
        out.add("vpp_city_target_in_force", 1.0 if a.target is not None else 0.0)
        out.add("vpp_city_signals_in_force", len(a.signals_in_force()))
        yield from out


class CoordinatorCollector(Collector):
    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    def collect(self) -> Iterator[Metric]:
        c = self.c
        out = _Families(COORDINATOR_SPECS)
        _link(out, c.link)
        now = c.now()
        for agent in c.config.agents:
            out.add("vpp_city_agent_online", 1.0 if c.status.get(agent) == "online" else 0.0, agent)
            out.add("vpp_city_agent_stored_seq", c.stored.get(agent, 0), agent)
            out.add("vpp_city_agent_dropped", c.stats.dropped.get(agent, 0), agent)
            tele = c.telemetry.get(agent)
            if tele is not None:
                out.add("vpp_city_agent_battery_watts", tele.battery_w, agent)
                out.add("vpp_city_agent_pv_watts", tele.pv_w, agent)
                out.add("vpp_city_agent_grid_watts", tele.grid_w, agent)
                out.add("vpp_city_agent_devices_online", tele.devices_online, agent)
                out.add("vpp_city_agent_devices_offline", tele.devices_offline, agent)
                out.add("vpp_city_agent_telemetry_age_seconds",
                        max((now - tele.time).total_seconds(), 0.0), agent)  # fmt: skip
                for source in ("target", "local", "none"):
                    out.add("vpp_city_agent_plan_source", tele.plan_source == source, agent,
                            source)  # fmt: skip
            t = c.latest.get(agent)
            if t is not None and t.start <= now < t.expires_at:
                step = int((now - t.start).total_seconds() // t.step_s)
                if step < len(t.battery_w):
                    out.add("vpp_city_agent_target_battery_watts", t.battery_w[step], agent)
                    out.add("vpp_city_agent_target_pv_watts", t.pv_w[step], agent)
        out.add("vpp_city_plans", len(c.plans))
        if c.plans:
            last = c.plans[-1]
            out.add("vpp_city_plan_seconds", last.solve_s)
            out.add("vpp_city_plan_agents", last.agents)
        held = c.last_held_s()
        out.add("vpp_city_targets_held_seconds", held)
        for status in ("applied", "duplicate", "refused"):
            out.add("vpp_city_target_acks", c.stats.acks.get(status, 0), status)
        out.add("vpp_city_targets_sent", c.stats.targets_sent_total)
        out.add("vpp_city_rows_stored", c.stats.rows_stored_total)
        out.add("vpp_city_duplicates", c.stats.duplicates_total)
        out.add("vpp_city_messages_rejected", c.stats.rejected_total)
        out.add("vpp_city_signals_active", len(c.signals_now()))
        out.add("vpp_city_caps_active", len(c.caps_now()))
        imp, exp = c.limits_now()
        out.add("vpp_city_substation_limit_watts", imp, "import")
        out.add("vpp_city_substation_limit_watts", exp, "export")
        for action in ("added", "cancelled", "refused"):
            out.add("vpp_city_signal_changes", c.signal_changes.get(action, 0), action)
        yield from out
