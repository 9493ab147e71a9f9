"""Prometheus collectors of the city link, read at scrape time (see docs/city.md).

:class:`AgentCollector` sits on the district controller's registry next to its own metrics;
:class:`CoordinatorCollector` is the coordinator's. Both use the ``vpp_city_`` prefix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from vpp.city.agent import CityAgent
    from vpp.city.coordinator import Coordinator
    from vpp.city.link import Link


def _link(link: Link | None) -> Iterator[Metric]:
    up = GaugeMetricFamily("vpp_city_link_connected", "1 while connected to the broker.")
    up.add_metric([], 1.0 if link is not None and link.stats.connected else 0.0)
    yield up
    if link is None:
        return
    st = link.stats
    yield CounterMetricFamily("vpp_city_link_connects", "Connections made to the broker.",
                              value=st.connects_total)  # fmt: skip
    yield CounterMetricFamily("vpp_city_messages_sent", "Messages published.",
                              value=st.published_total)  # fmt: skip
    yield CounterMetricFamily("vpp_city_sent_bytes", "Payload bytes published.",
                              value=st.published_bytes_total)  # fmt: skip
    yield CounterMetricFamily("vpp_city_messages_received", "Messages received.",
                              value=st.received_total)  # fmt: skip


class AgentCollector(Collector):
    def __init__(self, agent: CityAgent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        a = self.agent
        yield from _link(a.link)
        pending = GaugeMetricFamily(
            "vpp_city_outbox_messages", "Messages up the coordinator has not confirmed."
        )
        pending.add_metric([], float(a.outbox.pending()))
        yield pending
        targets = CounterMetricFamily(
            "vpp_city_targets", "Target messages heard, by what was done.", labels=["status"]
        )
        for status in ("applied", "duplicate", "refused"):
            targets.add_metric([status], a.stats.targets.get(status, 0))
        yield targets
        refused = CounterMetricFamily(
            "vpp_city_target_refusals", "Targets refused, by reason.", labels=["reason"]
        )
        for reason in ("out_of_order", "expired", "invalid"):
            refused.add_metric([reason], a.stats.refusals.get(reason, 0))
        yield refused
        yield CounterMetricFamily(
            "vpp_city_target_expiries", "Targets that expired: the own plan took over.",
            value=a.stats.fallbacks_total,
        )  # fmt: skip
        held = GaugeMetricFamily(
            "vpp_city_target_in_force", "1 while the coordinator's targets are in force."
        )
        held.add_metric([], 1.0 if a.target is not None else 0.0)
        yield held


class CoordinatorCollector(Collector):
    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    def collect(self) -> Iterator[Metric]:
        c = self.c
        yield from _link(c.link)
        online = GaugeMetricFamily(
            "vpp_city_agent_online", "1 while the agent's status is online.", labels=["agent"]
        )
        stored = GaugeMetricFamily(
            "vpp_city_agent_stored_seq", "Messages of the agent stored without a gap.",
            labels=["agent"],
        )  # fmt: skip
        battery = GaugeMetricFamily(
            "vpp_city_agent_battery_watts", "Battery power the agent measures (> 0 discharging).",
            labels=["agent"],
        )  # fmt: skip
        target = GaugeMetricFamily(
            "vpp_city_agent_target_battery_watts", "Battery power the targets ask for now.",
            labels=["agent"],
        )  # fmt: skip
        grid = GaugeMetricFamily(
            "vpp_city_agent_grid_watts", "The district's grid exchange (> 0 import).",
            labels=["agent"],
        )  # fmt: skip
        now = c.now()
        for agent in c.config.agents:
            online.add_metric([agent], 1.0 if c.status.get(agent) == "online" else 0.0)
            stored.add_metric([agent], float(c.stored.get(agent, 0)))
            tele = c.telemetry.get(agent)
            if tele is not None:
                battery.add_metric([agent], tele.battery_w)
                if tele.grid_w is not None:
                    grid.add_metric([agent], tele.grid_w)
            t = c.latest.get(agent)
            if t is not None and t.start <= now < t.expires_at:
                step = int((now - t.start).total_seconds() // t.step_s)
                if step < len(t.battery_w):
                    target.add_metric([agent], t.battery_w[step])
        yield from (online, stored, battery, target, grid)
        plans = CounterMetricFamily("vpp_city_plans", "City plans made.", value=len(c.plans))
        yield plans
        last = GaugeMetricFamily("vpp_city_plan_seconds", "Solve time of the last city plan.")
        if c.plans:
            last.add_metric([], c.plans[-1].solve_s)
        yield last
        acks = CounterMetricFamily(
            "vpp_city_target_acks", "Acknowledgements heard, by status.", labels=["status"]
        )
        for status in ("applied", "duplicate", "refused"):
            acks.add_metric([status], c.stats.acks.get(status, 0))
        yield acks
        yield CounterMetricFamily("vpp_city_targets_sent", "Target messages published.",
                                  value=c.stats.targets_sent_total)  # fmt: skip
        yield CounterMetricFamily("vpp_city_rows_stored", "Agent messages stored in history.",
                                  value=c.stats.rows_stored_total)  # fmt: skip
        yield CounterMetricFamily("vpp_city_duplicates", "Agent messages heard again, dropped.",
                                  value=c.stats.duplicates_total)  # fmt: skip
