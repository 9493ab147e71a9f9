"""``vpp_grid_signal_*``: the grid-operator signals as Prometheus sees them at scrape time.

A collector of its own (registered beside :class:`vpp.metrics.Metrics` by ``vpp run``,
:func:`vpp.app.build_controller`), reading what the
``signals`` job left in the controller state: the resolved signals, compliance, the sources'
state and the conflict counter. Nothing is exported before the first read of the signals
(a site without signals has no such series); then every family has a value, so alerts see
a 0 before a breach.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vpp.control.state import ControllerState
from vpp.core.clock import Clock
from vpp.metrics import MetricSpec, _c, _g

SPECS: tuple[MetricSpec, ...] = (
    _g("vpp_grid_signal_active", "Signals in force now, by source and kind.", "source", "kind"),
    _g("vpp_grid_signal_bounded_devices", "Devices a signal bounds now."),
    _g(
        "vpp_grid_signal_compliant",
        "1 if the device's read-back setpoint keeps its signal bounds, 0 if not.",
        "device",
    ),
    _g("vpp_grid_signal_not_compliant_devices", "Devices that do not follow their signals now."),
    _g("vpp_grid_signal_grid_compliant", "1 if the grid exchange keeps the signals' caps."),
    _g("vpp_grid_signal_import_cap_watts", "Import cap the signals set, W (absent: none)."),
    _g("vpp_grid_signal_export_cap_watts", "Export cap the signals set, W (absent: none)."),
    _g("vpp_grid_signal_conflicts_active", "Places where active signals disagree now."),
    _c("vpp_grid_signal_conflicts", "Conflicts between signals reported since start."),
    _g("vpp_grid_signal_source_silent", "1 while the source is silent (failsafe).", "source"),
    _g(
        "vpp_grid_signal_source_last_success_age_seconds",
        "Time since the source last answered, s.",
        "source",
    ),
)
#: Names that carry no unit (counts and flags), for the naming test.
UNITLESS = {
    "vpp_grid_signal_active",
    "vpp_grid_signal_bounded_devices",
    "vpp_grid_signal_compliant",
    "vpp_grid_signal_not_compliant_devices",
    "vpp_grid_signal_grid_compliant",
    "vpp_grid_signal_conflicts_active",
    "vpp_grid_signal_source_silent",
}


def _family(spec: MetricSpec) -> Metric:
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


class GridSignalCollector(Collector):
    """Exports the signals part of ``state``; ``clock`` gives "now" for ages."""

    def __init__(self, state: ControllerState, clock: Clock) -> None:
        self.state = state
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        return [_family(s) for s in SPECS]

    def collect(self) -> Iterator[Metric]:
        st = self.state
        resolved = st.grid_signals
        if resolved is None:
            return
        fams = {(s.name, s.type): _family(s) for s in SPECS}

        def add(name: str, value: float | None, *labels: str, kind: str = "gauge") -> None:
            if value is not None:
                fams[(name, kind)].add_metric(list(labels), value)  # type: ignore[attr-defined]

        active: dict[tuple[str, str], int] = {}
        for signal in resolved.active:
            key = (signal.source, signal.kind.value)
            active[key] = active.get(key, 0) + 1
        for (source, kind), n in sorted(active.items()):
            add("vpp_grid_signal_active", n, source, kind)
        add("vpp_grid_signal_bounded_devices", len(resolved.bounds))
        compliance = st.grid_signal_compliance
        devices = {} if compliance is None else compliance.devices
        for device, status in sorted(devices.items()):
            if status != "unknown":
                add("vpp_grid_signal_compliant", float(status == "compliant"), device)
        add(
            "vpp_grid_signal_not_compliant_devices",
            sum(1 for s in devices.values() if s == "not_compliant"),
        )
        grid = None if compliance is None else compliance.grid
        add("vpp_grid_signal_grid_compliant", None if grid is None else float(grid))
        add("vpp_grid_signal_import_cap_watts", resolved.import_cap_w)
        add("vpp_grid_signal_export_cap_watts", resolved.export_cap_w)
        add("vpp_grid_signal_conflicts_active", len(resolved.conflicts))
        add("vpp_grid_signal_conflicts", st.grid_signal_conflicts_total, kind="counter")
        now = self.clock.now()
        for source, (silent, alive_at) in sorted(st.grid_signal_sources.items()):
            add("vpp_grid_signal_source_silent", float(silent), source)
            add("vpp_grid_signal_source_last_success_age_seconds", _age(now, alive_at), source)
        yield from fams.values()


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())
