"""Prometheus metrics of the controller: what it sees, plans, writes and how its jobs run.

:class:`VppCollector` reads :class:`~vpp.control.state.ControllerState` when Prometheus
scrapes, so the exported values are always the latest Snapshot, Plan and counters and nothing
updates metrics in the background. Events that need a distribution (plan build and solve
times, job durations) go to histograms, recorded by :class:`Metrics` when they happen. Both
live on the registry passed in, never on the global one.

Scrapes run on the HTTP server's thread while the jobs run on the control loop: the jobs
replace whole values, and the dicts they add keys to are copied (``list(d.items())``, one step
under the interpreter lock) before they are walked.

Names follow ``vpp_<thing>_<base unit>`` (watts, watt-hours, ratios, seconds, euros, degrees
Celsius). Prices are the one exception, in EUR/MWh as the market quotes them. The metrics
table (``vpp/METRICS.md``) documents every metric, its unit and its labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from adapters.snapshot import (
    BatteryReading,
    BreakerState,
    DatacentreReading,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Snapshot,
)
from vpp.control.health import STATES as HEALTH_STATES
from vpp.control.health import assess
from vpp.control.state import ControllerState
from vpp.core.clock import Clock

if TYPE_CHECKING:
    from optimizer.plan import Plan, SolveInfo


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exported metric: full name (counters without ``_total``), type, help, labels."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()


def _g(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "gauge", help, labels)


def _c(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "counter", help, labels)


DEV = ("device", "kind")

#: Everything the collector exports, in exposition order (METRICS.md has the same table).
SPECS: tuple[MetricSpec, ...] = (
    _g("vpp_controller_info", "Site name and software version, value 1.", "site", "version"),
    _g("vpp_uptime_seconds", "Controller clock time since the controller started, s."),
    _g("vpp_dry_run", "1 while setpoints are computed but not written, else 0."),
    _g("vpp_health_state", "1 for the controller's top-line state, else 0.", "state"),
    _g("vpp_snapshot_age_seconds", "Time since the latest poll snapshot was taken, s."),
    _g("vpp_device_up", "1 if the last poll of the device succeeded, else 0.", *DEV),
    _g("vpp_device_power_watts", "Last read power, W (>0: PV out, discharge, import, use).", *DEV),
    _g("vpp_device_soc_ratio", "Battery state of charge as last read, 0..1.", "device"),
    _g("vpp_device_pv_limit_ratio", "Active PV limit, share of rated power.", "device"),
    _g("vpp_device_last_success_age_seconds", "Time since the last good poll, s.", *DEV),
    _g("vpp_device_consecutive_failures", "Failed polls since the last good one.", *DEV),
    _c("vpp_device_comm_errors", "Failed polls since start.", *DEV),
    _g("vpp_device_poll_latency_seconds", "Duration of the last good poll, s.", *DEV),
    _g("vpp_device_breaker_state", "Circuit breaker, 1 for the current state.", "device", "state"),
    _g("vpp_fleet_devices", "Enabled devices by kind, online or offline.", "kind", "state"),
    _g("vpp_fleet_pv_power_watts", "PV output of the online inverters, W."),
    _g("vpp_fleet_battery_power_watts", "Net power of online batteries, W (>0 discharge)."),
    _g("vpp_fleet_battery_energy_watt_hours", "Energy stored in online batteries, Wh."),
    _g("vpp_fleet_battery_capacity_watt_hours", "Capacity of online batteries, Wh."),
    _g("vpp_grid_import_watts", "Import measured at the grid meter, W."),
    _g("vpp_grid_export_watts", "Export measured at the grid meter, W."),
    _g("vpp_grid_import_limit_watts", "Import limit in force (site or operator cap), W."),
    _g("vpp_grid_export_limit_watts", "Export limit in force (site or operator cap), W."),
    _g("vpp_operator_caps_active", "Operator caps in force now.", "direction"),
    _g("vpp_heat_pump_thermal_watts", "Heat pump heat output, W thermal.", "device"),
    _g("vpp_heat_pump_cop_ratio", "Measured COP: heat out / electricity in.", "device"),
    _g("vpp_heat_pump_running", "1 while the heat pump runs, else 0.", "device"),
    _g("vpp_heat_pump_source_temperature_celsius", "Heat pump source temperature, degC.", "device"),
    _g("vpp_heat_pump_supply_temperature_celsius", "Heat pump supply temperature, degC.", "device"),
    _g("vpp_heat_waste_heat_offered_watts", "Waste heat the data centre offers, W.", "device"),
    _g("vpp_heat_waste_heat_used_watts", "Waste heat lifted (heat - el input), W.", "device"),
    _g("vpp_datacentre_waste_heat_temperature_celsius", "Waste-heat temperature, degC.", "device"),
    _g("vpp_datacentre_water_flow_cubic_meters_per_second", "Cooling-water flow, m3/s.", "device"),
    _c("vpp_heat_delivered_watt_hours", "Heat delivered since start, Wh thermal.", "source"),
    _g("vpp_store_capacity_watt_hours", "Thermal store capacity, Wh thermal."),
    _g("vpp_setpoint_watts", "Last power setpoint by stage, W.", "device", "quantity", "stage"),
    _g("vpp_setpoint_ratio", "Last PV limit by stage, 0..1.", "device", "quantity", "stage"),
    _g("vpp_setpoint_measured_watts", "Measured power for a setpoint, W.", "device", "quantity"),
    _g("vpp_setpoint_ok", "1 if the last setpoint was read back as written.", "device", "quantity"),
    _g("vpp_setpoint_age_seconds", "Time since the last setpoint, s.", "device", "quantity"),
    _c("vpp_setpoint_readback_mismatches", "Read-backs that differed from the write.", "device"),
    _c("vpp_setpoint_clamps", "Setpoints the safety layer clamped.", "device"),
    _c("vpp_setpoint_refusals", "Setpoints the safety layer refused.", "device"),
    _c("vpp_setpoint_unsafe", "Setpoints refused at the invariant check before the write."),
    _c("vpp_setpoints_staged", "Setpoints staged inactive ahead of their quarter hour."),
    _c("vpp_readings_quarantined", "Implausible readings that quarantined a device (episodes)."),
    _g("vpp_devices_quarantined", "Devices quarantined now for an implausible reading."),
    _g("vpp_price_import_euros_per_megawatt_hour", "Import price now, fees included."),
    _g("vpp_price_export_euros_per_megawatt_hour", "Export price now, fees deducted."),
    _g("vpp_plan_status", "1 for the current plan's status (none before the first).", "status"),
    _g("vpp_plan_age_seconds", "Time since the current plan was made, s."),
    _g("vpp_plan_time_limit_seconds", "The optimizer's time limit per solve, s."),
    _g("vpp_plan_objective_euros", "Solver objective of the current plan, EUR."),
    _g("vpp_plan_cost_euros", "Cost of the current plan over its horizon by part, EUR.", "part"),
    _g("vpp_plan_slack_watt_hours", "Energy carried by each slack over the horizon, Wh.", "slack"),
    _g("vpp_plan_variables", "Variables of the current plan's model."),
    _g("vpp_plan_constraints", "Constraints of the current plan's model."),
    _c("vpp_plans", "Plans made since start."),
    _c("vpp_plan_fallbacks", "Rule-based fallback plans since start."),
    _g("vpp_plan_grid_import_watts", "Planned grid import in the current step, W."),
    _g("vpp_plan_grid_export_watts", "Planned grid export in the current step, W."),
    _g("vpp_plan_pv_power_watts", "Planned PV output in the current step, W."),
    _g("vpp_plan_battery_power_watts", "Planned battery power now, W (>0 discharge)."),
    _g("vpp_plan_battery_energy_watt_hours", "Planned battery energy now, Wh."),
    _g("vpp_plan_load_watts", "Forecast site load in the current step, W."),
    _g("vpp_plan_heat_pump_electric_watts", "Planned heat pump electric power now, W."),
    _g("vpp_plan_heat_pump_thermal_watts", "Planned heat pump heat now, W thermal."),
    _g("vpp_plan_heat_pump_cop_ratio", "COP the plan assumes in the current step."),
    _g("vpp_plan_boiler_thermal_watts", "Planned boiler heat now, W thermal."),
    _g("vpp_plan_heat_demand_watts", "Forecast heat demand now, W thermal."),
    _g("vpp_plan_waste_heat_offered_watts", "Forecast waste heat offered now, W thermal."),
    _g("vpp_plan_dry_cooler_thermal_watts", "Planned heat to the dry coolers now, W."),
    _g("vpp_plan_store_energy_watt_hours", "Planned thermal store energy now, Wh."),
    _g("vpp_forecast_error_watts", "Last measured minus forecast value, W.", "quantity"),
    _g(
        "vpp_forecast_mae_watts",
        "Mean absolute error of the forecast for the quarter hour ahead (P50), last day, W.",
        "quantity",
    ),
    _g(
        "vpp_forecast_pinball_watts",
        "Mean pinball loss over P10, P50, P90 of the quarter hour ahead, last day, W.",
        "quantity",
    ),
    _g(
        "vpp_forecast_coverage_ratio",
        "Share of the last day's quarter hours inside the learned P10-P90 band.",
        "quantity",
    ),
    _g("vpp_forecast_scored_steps", "Quarter hours scored over the last day.", "quantity"),
    _g(
        "vpp_forecast_co2_mae_grams_per_kilowatt_hour",
        "Mean absolute error of the grid CO2 intensity forecast for the quarter hour ahead, "
        "last day, g/kWh.",
    ),
    _g(
        "vpp_forecast_co2_bias_grams_per_kilowatt_hour",
        "Mean of forecast minus measured grid CO2 intensity, quarter hour ahead, last day, g/kWh.",
    ),
    _g(
        "vpp_forecast_pv_issued_weight_ratio",
        "Weight of the issued PV forecasts against the rule forecast in today's plans.",
    ),
    _g(
        "vpp_forecast_heat_level_error_ratio",
        "Level error of the heat forecast from temperature forecasts over the 14 days before "
        "today.",
    ),
    _g("vpp_cost_accrued_euros", "Energy cost since start, EUR (export revenue lowers it)."),
    _c("vpp_job_runs", "Runs of each job since start.", "task"),
    _c("vpp_job_failures", "Runs that raised an error.", "task"),
    _c("vpp_job_misses", "Runs skipped because the previous one was still busy.", "task"),
    _g("vpp_job_last_duration_seconds", "Duration of the job's last run, s.", "task"),
    _g("vpp_job_last_run_age_seconds", "Time since the job's last run started, s.", "task"),
    _c("vpp_source_failures", "Failed fetches from each data source.", "source"),
    _g("vpp_source_stale", "1 while a source's data is stale, else 0.", "source"),
    _g("vpp_source_last_success_age_seconds", "Time since the last good fetch, s.", "source"),
    _c("vpp_recorder_errors", "Records the recorder failed to store."),
    _g("vpp_recorder_pending", "Records waiting for the recorder to take them again."),
    _c("vpp_recorder_dropped", "Records dropped because too many waited for the recorder."),
)

#: Histograms that :class:`Metrics` records when plans and jobs finish (buckets in s).
HISTOGRAMS: tuple[MetricSpec, ...] = (
    MetricSpec("vpp_plan_build_seconds", "histogram", "Time to build the plan's model, s."),
    MetricSpec("vpp_plan_solve_seconds", "histogram", "Time in the solver, s."),
    MetricSpec("vpp_plan_split_seconds", "histogram", "Time to split units over devices, s."),
    MetricSpec("vpp_plan_total_seconds", "histogram", "Time to make a plan end to end, s."),
    MetricSpec("vpp_job_duration_seconds", "histogram", "Duration of each job run, s.", ("task",)),
)
PLAN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOB_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: Plan table columns exported for the step containing "now".
PLAN_COLUMNS: Mapping[str, str] = {
    "grid_import_w": "vpp_plan_grid_import_watts",
    "grid_export_w": "vpp_plan_grid_export_watts",
    "pv_w": "vpp_plan_pv_power_watts",
    "battery_w": "vpp_plan_battery_power_watts",
    "battery_soc_wh": "vpp_plan_battery_energy_watt_hours",
    "load_w": "vpp_plan_load_watts",
    "heat_pump_el_w": "vpp_plan_heat_pump_electric_watts",
    "heat_pump_th_w": "vpp_plan_heat_pump_thermal_watts",
    "heat_pump_cop": "vpp_plan_heat_pump_cop_ratio",
    "boiler_th_w": "vpp_plan_boiler_thermal_watts",
    "heat_demand_th_w": "vpp_plan_heat_demand_watts",
    "waste_heat_th_w": "vpp_plan_waste_heat_offered_watts",
    "dry_cooler_th_w": "vpp_plan_dry_cooler_thermal_watts",
    "store_wh": "vpp_plan_store_energy_watt_hours",
    "price_import_eur_per_mwh": "vpp_price_import_euros_per_megawatt_hour",
    "price_export_eur_per_mwh": "vpp_price_export_euros_per_megawatt_hour",
}
#: Always exported (0 when unused), so alerts and panels have a series before a slack bites.
KNOWN_SLACKS = ("unserved_el_wh", "spilled_el_wh", "unmet_heat_wh", "soc_window_wh")
PLAN_STATUSES = ("none", "optimal", "fallback")
HEAT_SOURCES = ("heat_pump", "boiler")
SETPOINT_STAGES = ("planned", "requested", "written", "read_back")
#: Below this electric power a measured COP is noise, W.
MIN_COP_EL_W = 1.0


def _family(spec: MetricSpec) -> Metric:
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


def _age_s(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds()


class _Scrape:
    """The families of one scrape, filled by name; values that are None or not finite are
    left out (absent is what Prometheus means by "unknown")."""

    def __init__(self, now: datetime, grid_meter: str | None) -> None:
        self.now = now
        self.grid_meter = grid_meter
        self.families: dict[str, Any] = {s.name: _family(s) for s in SPECS}
        self.pv_w = self.bat_w = self.bat_wh = self.bat_cap_wh = 0.0  # online fleet sums

    def add(self, name: str, value: float | None, *labels: str) -> None:
        if value is not None and math.isfinite(value):
            self.families[name].add_metric(labels, float(value))


# -- readings by kind: a registry instead of an if-chain over device kinds -------------------


def _pv(s: _Scrape, dev: DeviceState, r: PvReading) -> None:
    s.add("vpp_device_power_watts", r.ac_power_w, dev.id, dev.kind)
    if r.limit_pct is not None:
        s.add("vpp_device_pv_limit_ratio", r.limit_pct / 100.0, dev.id)
    if dev.health.online:
        s.pv_w += r.ac_power_w or 0.0


def _battery(s: _Scrape, dev: DeviceState, r: BatteryReading) -> None:
    s.add("vpp_device_power_watts", r.power_w, dev.id, dev.kind)
    if r.soc_pct is not None:
        s.add("vpp_device_soc_ratio", r.soc_pct / 100.0, dev.id)
    if dev.health.online:
        s.bat_w += r.power_w or 0.0
        if r.soc_pct is not None and r.capacity_wh is not None:
            s.bat_wh += r.soc_pct / 100.0 * r.capacity_wh
            s.bat_cap_wh += r.capacity_wh


def _meter(s: _Scrape, dev: DeviceState, r: MeterReading) -> None:
    s.add("vpp_device_power_watts", r.power_w, dev.id, dev.kind)
    if dev.id == s.grid_meter and r.power_w is not None:
        s.add("vpp_grid_import_watts", max(r.power_w, 0.0))
        s.add("vpp_grid_export_watts", max(-r.power_w, 0.0))


def _heat_pump(s: _Scrape, dev: DeviceState, r: HeatPumpReading) -> None:
    s.add("vpp_device_power_watts", r.el_power_w, dev.id, dev.kind)
    s.add("vpp_heat_pump_thermal_watts", r.th_power_w, dev.id)
    s.add("vpp_heat_pump_source_temperature_celsius", r.source_temp_c, dev.id)
    s.add("vpp_heat_pump_supply_temperature_celsius", r.supply_temp_c, dev.id)
    if r.running is not None:
        s.add("vpp_heat_pump_running", float(r.running), dev.id)
    if r.th_power_w is None or r.el_power_w is None:
        return
    # Energy balance: heat out = electricity in + heat taken from the waste-heat source.
    s.add("vpp_heat_waste_heat_used_watts", max(r.th_power_w - r.el_power_w, 0.0), dev.id)
    if r.el_power_w >= MIN_COP_EL_W:
        s.add("vpp_heat_pump_cop_ratio", r.th_power_w / r.el_power_w, dev.id)


def _datacentre(s: _Scrape, dev: DeviceState, r: DatacentreReading) -> None:
    s.add("vpp_device_power_watts", r.it_power_w, dev.id, dev.kind)
    s.add("vpp_heat_waste_heat_offered_watts", r.waste_heat_w, dev.id)
    s.add("vpp_datacentre_waste_heat_temperature_celsius", r.waste_heat_temp_c, dev.id)
    flow = None if r.flow_m3_per_h is None else r.flow_m3_per_h / 3600.0
    s.add("vpp_datacentre_water_flow_cubic_meters_per_second", flow, dev.id)


READINGS: Mapping[type, Callable[[_Scrape, DeviceState, Any], None]] = {
    PvReading: _pv,
    BatteryReading: _battery,
    MeterReading: _meter,
    HeatPumpReading: _heat_pump,
    DatacentreReading: _datacentre,
}
#: The reading field that measures what a power setpoint asks for, by reading type.
MEASURED: Mapping[type, str] = {BatteryReading: "power_w", HeatPumpReading: "el_power_w"}


class VppCollector(Collector):
    """Exports ``state`` as it is at scrape time; ``clock`` gives "now" for ages (UTC).

    Cost is linear in devices with a small constant: plain attribute reads per device, and the
    plan's current row is read from pandas once per plan step, then cached.
    """

    def __init__(self, state: ControllerState, clock: Clock) -> None:
        self.state = state
        self.clock = clock
        try:
            self._version = metadata.version("vpp")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            self._version = "unknown"
        self._row: tuple[Plan, int, dict[str, float]] | None = None

    def describe(self) -> Iterable[Metric]:
        """Names only, so the registry refuses a second collector or histogram of one name."""
        return [_family(s) for s in SPECS]

    def collect(self) -> Iterator[Metric]:
        s = _Scrape(self.clock.now(), self.state.site.grid.meter)
        self._controller(s)
        if self.state.snapshot is not None:
            self._devices(s, self.state.snapshot)
        self._grid_limits(s)
        self._setpoints(s)
        self._plan(s)
        self._jobs_and_sources(s)
        yield from s.families.values()

    def _controller(self, s: _Scrape) -> None:
        state = self.state
        s.add("vpp_controller_info", 1.0, state.site.site.name, self._version)
        s.add("vpp_uptime_seconds", _age_s(s.now, state.started_at))
        s.add("vpp_dry_run", float(state.dry_run))
        level = assess(state, s.now).state
        for name in HEALTH_STATES:
            s.add("vpp_health_state", float(name == level), name)
        s.add("vpp_cost_accrued_euros", state.cost_accrued_eur)
        s.add("vpp_recorder_errors", state.recorder_errors_total)
        s.add("vpp_recorder_pending", state.recorder_pending)
        s.add("vpp_recorder_dropped", state.recorder_dropped_total)
        s.add("vpp_setpoint_unsafe", state.invariant_violations_total)
        s.add("vpp_setpoints_staged", state.setpoints_staged_total)
        s.add("vpp_readings_quarantined", state.quarantines_total)
        s.add("vpp_devices_quarantined", len(state.quarantined))
        s.add("vpp_store_capacity_watt_hours", state.site.heat.store_capacity_wh)
        for source in dict.fromkeys((*HEAT_SOURCES, *state.heat_delivered_wh)):
            s.add("vpp_heat_delivered_watt_hours", state.heat_delivered_wh.get(source, 0.0), source)
        for quantity, error_w in list(state.forecast_error_w.items()):
            s.add("vpp_forecast_error_watts", error_w, quantity.removesuffix("_w"))
        for quantity, score in list(state.forecast_scores.items()):
            s.add("vpp_forecast_mae_watts", score["mae_w"], quantity)
            s.add("vpp_forecast_pinball_watts", score["pinball_w"], quantity)
            if not math.isnan(score["coverage_ratio"]):
                s.add("vpp_forecast_coverage_ratio", score["coverage_ratio"], quantity)
            s.add("vpp_forecast_scored_steps", score["steps"], quantity)
        co2 = state.co2_forecast_score
        if co2:
            s.add("vpp_forecast_co2_mae_grams_per_kilowatt_hour", co2["mae_gkwh"])
            s.add("vpp_forecast_co2_bias_grams_per_kilowatt_hour", co2["bias_gkwh"])
        if state.pv_issued_weight is not None:
            s.add("vpp_forecast_pv_issued_weight_ratio", state.pv_issued_weight)
        if state.heat_level_error is not None:
            s.add("vpp_forecast_heat_level_error_ratio", state.heat_level_error)

    def _devices(self, s: _Scrape, snap: Snapshot) -> None:
        s.add("vpp_snapshot_age_seconds", _age_s(s.now, snap.time))
        counts: dict[str, list[int]] = {}  # kind -> [online, offline]
        for dev in snap.devices.values():
            h, labels = dev.health, (dev.id, dev.kind)
            online = h.online
            s.add("vpp_device_up", 1.0 if online else 0.0, *labels)
            s.add("vpp_device_last_success_age_seconds", _age_s(s.now, h.last_success), *labels)
            s.add("vpp_device_consecutive_failures", h.consecutive_failures, *labels)
            s.add("vpp_device_comm_errors", h.error_count, *labels)
            s.add("vpp_device_poll_latency_seconds", h.latency_s, *labels)
            for state in BreakerState:
                s.add("vpp_device_breaker_state", float(h.breaker is state), dev.id, state.value)
            counts.setdefault(dev.kind, [0, 0])[0 if online else 1] += 1
            export = READINGS.get(type(dev.reading))
            if export is not None:  # no reading yet, or a kind without readings to export
                export(s, dev, dev.reading)
        for kind, (n_online, n_offline) in counts.items():
            s.add("vpp_fleet_devices", n_online, kind, "online")
            s.add("vpp_fleet_devices", n_offline, kind, "offline")
        s.add("vpp_fleet_pv_power_watts", s.pv_w)
        s.add("vpp_fleet_battery_power_watts", s.bat_w)
        s.add("vpp_fleet_battery_energy_watt_hours", s.bat_wh)
        s.add("vpp_fleet_battery_capacity_watt_hours", s.bat_cap_wh)

    def _grid_limits(self, s: _Scrape) -> None:
        grid, caps = self.state.site.grid, self.state.active_caps(s.now)
        for direction, site_w in (("import", grid.import_limit_w), ("export", grid.export_limit_w)):
            limits = [c.limit_w for c in caps if c.direction == direction]
            s.add(f"vpp_grid_{direction}_limit_watts", min([site_w, *limits]))
            s.add("vpp_operator_caps_active", len(limits), direction)

    def _setpoints(self, s: _Scrape) -> None:
        state = self.state
        devices = state.snapshot.devices if state.snapshot is not None else {}
        for sp in list(state.setpoints.values()):
            # "battery_w" -> quantity "battery" in W; a PV cap "pv_limit_w" -> "pv_limit" as a
            # share of the inverter's rating (how the inverter takes it).
            quantity, _, unit = sp.quantity.rpartition("_")
            name, scale = "vpp_setpoint_watts", 1.0
            if sp.quantity == "pv_limit_w":
                unit = "ratio"
                name, scale = (
                    "vpp_setpoint_ratio",
                    1.0 / float(state.site.device(sp.device_id).rated_w),
                )
            values = (sp.planned_w, sp.requested_w, sp.written_w, sp.read_back_w)
            for stage, value in zip(SETPOINT_STAGES, values, strict=True):
                s.add(name, None if value is None else value * scale, sp.device_id, quantity, stage)
            s.add("vpp_setpoint_ok", float(sp.ok), sp.device_id, quantity)
            s.add("vpp_setpoint_age_seconds", _age_s(s.now, sp.time), sp.device_id, quantity)
            reading = devices[sp.device_id].reading if sp.device_id in devices else None
            field = MEASURED.get(type(reading))
            if field is not None and unit == "w":
                s.add(
                    "vpp_setpoint_measured_watts", getattr(reading, field), sp.device_id, quantity
                )
        for name, counts in (
            ("vpp_setpoint_readback_mismatches", state.readback_mismatches_total),
            ("vpp_setpoint_clamps", state.setpoint_clamps_total),
            ("vpp_setpoint_refusals", state.setpoint_refusals_total),
        ):
            # Every device that has had a setpoint gets a series from 0, so rate() and
            # increase() see the first event and alerts do not depend on absent series.
            for device_id in dict.fromkeys((*state.setpoints, *counts)):
                s.add(name, counts.get(device_id, 0), device_id)

    def _plan(self, s: _Scrape) -> None:
        state, plan = self.state, self.state.plan
        s.add("vpp_plans", state.plans_total)
        s.add("vpp_plan_fallbacks", state.fallbacks_total)
        status = "none" if plan is None else plan.info.status
        for known in dict.fromkeys((*PLAN_STATUSES, status)):
            s.add("vpp_plan_status", float(known == status), known)
        if plan is None:
            return
        info = plan.info
        s.add("vpp_plan_age_seconds", _age_s(s.now, state.plan_created_at))
        s.add("vpp_plan_time_limit_seconds", state.site.optimizer.time_limit_s)
        s.add("vpp_plan_objective_euros", info.objective_eur)
        s.add("vpp_plan_variables", info.n_variables)
        s.add("vpp_plan_constraints", info.n_constraints)
        for part, eur in info.cost_eur.items():
            s.add("vpp_plan_cost_euros", eur, part.removesuffix("_eur"))
        for slack in dict.fromkeys((*KNOWN_SLACKS, *info.slacks)):
            s.add(
                "vpp_plan_slack_watt_hours", info.slacks.get(slack, 0.0), slack.removesuffix("_wh")
            )
        for column, value in self._current_row(plan, s.now).items():
            s.add(PLAN_COLUMNS[column], value)

    def _current_row(self, plan: Plan, now: datetime) -> dict[str, float]:
        """The plan's site values for the step containing ``now``; empty outside the plan."""
        index = plan.frame.index
        step = int(index.searchsorted(now, side="right")) - 1
        step_s = self.state.site.optimizer.step_min * 60
        if step < 0 or (now - index[step].to_pydatetime()).total_seconds() >= step_s:
            return {}
        cached = self._row
        if cached is not None and cached[0] is plan and cached[1] == step:
            return cached[2]
        frame = plan.frame
        row = {c: float(frame[c].to_numpy()[step]) for c in PLAN_COLUMNS if c in frame.columns}
        self._row = (plan, step, row)  # one assignment: a concurrent scrape sees old or new
        return row

    def _jobs_and_sources(self, s: _Scrape) -> None:
        for name, job in list(self.state.jobs.items()):
            s.add("vpp_job_runs", job.runs, name)
            s.add("vpp_job_failures", job.failures, name)
            s.add("vpp_job_misses", job.misses, name)
            s.add("vpp_job_last_duration_seconds", job.last_duration_s, name)
            s.add("vpp_job_last_run_age_seconds", _age_s(s.now, job.last_start), name)
        for name, source in list(self.state.sources.items()):
            s.add("vpp_source_failures", source.failures, name)
            s.add("vpp_source_stale", float(source.stale), name)
            s.add("vpp_source_last_success_age_seconds", _age_s(s.now, source.last_success), name)


class Metrics:
    """The controller's metrics on ``registry``: the scrape-time collector and the histograms.

    Jobs call :meth:`observe_plan` after each plan and :meth:`observe_job` after each run;
    everything else is read from ``state`` when Prometheus scrapes.
    """

    def __init__(self, state: ControllerState, registry: CollectorRegistry, clock: Clock) -> None:
        self.registry = registry
        self.collector = VppCollector(state, clock)
        registry.register(self.collector)
        self._hist = {
            spec.name: Histogram(
                spec.name,
                spec.help,
                spec.labels,
                registry=registry,
                buckets=JOB_BUCKETS if spec.labels else PLAN_BUCKETS,
            )
            for spec in HISTOGRAMS
        }

    def observe_plan(self, info: SolveInfo) -> None:
        """Record how long one plan took to build, solve, split and make in total, s."""
        for phase, seconds in (
            ("build", info.build_s),
            ("solve", info.solve_s),
            ("split", info.split_s),
            ("total", info.total_s),
        ):
            self._hist[f"vpp_plan_{phase}_seconds"].observe(seconds)

    def observe_job(self, name: str, seconds: float) -> None:
        """Record one run of job ``name`` that took ``seconds``."""
        self._hist["vpp_job_duration_seconds"].labels(task=name).observe(seconds)
