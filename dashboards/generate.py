"""Write the Grafana dashboards of this folder: ``python dashboards/generate.py``.

Four dashboards for grid operators, each filtered by site (and device where it applies):

- ``vpp-overview.json``   power flows, grid exchange against its limit, prices, plan vs actual
- ``vpp-devices.json``    power, state of charge and comms health per device, worst first
- ``vpp-heat.json``       waste heat offered and used, heat pump power and COP, store, boiler
- ``vpp-optimizer.json``  solve time, plan status, slack, fallbacks, forecast error, jobs
- ``vpp-signals.json``    grid-operator signals in force, compliance, conflicts, sources
  (``board_signals.py``)
- ``vpp-city.json``       city coordinator: agents, health, targets vs delivered, messages
  (``board_city.py``)

Metric names and units are those of ``vpp/METRICS.md``. The tests check that the JSON files
are what this script writes, so edit here and re-run it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from board_city import city
from board_signals import signals
from grafana import (
    DEVICE,
    SITE,
    Layout,
    bargauge,
    dashboard,
    dashed,
    gauge,
    stat,
    state_timeline,
    table,
    thresholds,
    timeseries,
)

HERE = Path(__file__).resolve().parent
GRAFANA_DIR = HERE / "grafana"
#: Colour threshold of the solve-time panel: 80 % of the demo site's time limit
#: (``[optimizer] time_limit_s`` = 10 s); the alert follows each site's own limit through
#: ``vpp_plan_time_limit_seconds``, which the panel draws too.
SOLVE_BUDGET_WARN_S = 8.0
PRICE_UNIT = "suffix:€/MWh"

GRID_NET = f"vpp_grid_import_watts{{{SITE}}} - vpp_grid_export_watts{{{SITE}}}"
PLAN_GRID_NET = f"vpp_plan_grid_import_watts{{{SITE}}} - vpp_plan_grid_export_watts{{{SITE}}}"
HP_EL = f'sum by (site) (vpp_device_power_watts{{{SITE}, kind="heat_pump"}})'


def overview() -> dict[str, Any]:
    lay = Layout()
    lay.row("Now")
    lay.add(
        stat(
            "Grid exchange",
            "Measured at the grid-connection meter; > 0 imports.",
            (GRID_NET, "{{site}}"),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Import headroom",
            "Import limit in force (site or operator cap) minus the measured import.",
            (
                f"vpp_grid_import_limit_watts{{{SITE}}} - vpp_grid_import_watts{{{SITE}}}",
                "{{site}}",
            ),
            thresholds=thresholds((None, "red"), (50_000, "orange"), (100_000, "green")),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "PV",
            "Output of the online inverters.",
            (f"vpp_fleet_pv_power_watts{{{SITE}}}", "{{site}}"),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Batteries",
            "Net power of the online batteries; > 0 discharging.",
            (f"vpp_fleet_battery_power_watts{{{SITE}}}", "{{site}}"),
        ),
        4,
        4,
    )
    lay.add(
        gauge(
            "Fleet state of charge",
            "Energy stored in online batteries / their capacity.",
            (
                f"vpp_fleet_battery_energy_watt_hours{{{SITE}}} / "
                f"vpp_fleet_battery_capacity_watt_hours{{{SITE}}}",
                "{{site}}",
            ),
            min=0,
            max=1,
            thresholds=thresholds((None, "red"), (0.15, "orange"), (0.3, "green")),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Devices offline",
            "Polled devices whose last poll failed.",
            (f'sum by (site) (vpp_fleet_devices{{{SITE}, state="offline"}})', "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Health",
            "The controller's top-line state from comms, data freshness and the plan's source: "
            "ok, degraded, or not controlling (no controllable device answers, or no plan is "
            "dispatched); its reasons are on the operator page and in /api/status.",
            (f"vpp_health_state{{{SITE}}} == 1", "{{state}}"),
            unit="none",
            text_mode="name",
        ),
        4,
        3,
    )
    lay.add(
        stat(
            "Plan",
            "Status of the plan in force.",
            (f"vpp_plan_status{{{SITE}}} == 1", "{{status}}"),
            unit="none",
            text_mode="name",
        ),
        4,
        3,
    )
    lay.add(
        stat(
            "Control",
            "1 = paused (dry-run): setpoints are computed, not written.",
            (f"vpp_dry_run{{{SITE}}}", "{{site}}"),
            unit="none",
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "active", "color": "green"},
                        "1": {"text": "paused (dry-run)", "color": "orange"},
                    },
                }
            ],
        ),
        4,
        3,
    )
    lay.add(
        stat(
            "Operator caps in force",
            "Import/export caps set by the grid operator.",
            (f"vpp_operator_caps_active{{{SITE}}}", "{{direction}}"),
            unit="none",
        ),
        4,
        3,
    )
    lay.add(
        stat(
            "Import price",
            "Current quarter hour, grid fees and levies included.",
            (f"vpp_price_import_euros_per_megawatt_hour{{{SITE}}}", "{{site}}"),
            unit=PRICE_UNIT,
        ),
        4,
        3,
    )
    lay.add(
        stat(
            "Energy cost since start",
            "From measured grid exchange and prices.",
            (f"vpp_cost_accrued_euros{{{SITE}}}", "{{site}}"),
            unit="currencyEUR",
        ),
        4,
        3,
    )
    lay.add(
        stat(
            "Plan age",
            "Time since the plan in force was made (controller clock).",
            (f"vpp_plan_age_seconds{{{SITE}}}", "{{site}}"),
            unit="s",
            thresholds=thresholds((None, "green"), (1200, "orange"), (1800, "red")),
        ),
        4,
        3,
    )
    lay.row("Power flows")
    lay.add(
        timeseries(
            "Power flows",
            "Measured site totals; battery > 0 discharging, grid > 0 importing.",
            (f"vpp_fleet_pv_power_watts{{{SITE}}}", "PV {{site}}"),
            (f"vpp_fleet_battery_power_watts{{{SITE}}}", "batteries {{site}}"),
            (GRID_NET, "grid {{site}}"),
            (HP_EL, "heat pump (electric) {{site}}"),
            (f"vpp_plan_load_watts{{{SITE}}}", "site load, forecast {{site}}"),
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "Grid exchange against its limit",
            "Import up, export down (negative); dashed: the "
            "limits in force, including operator caps; planned values for comparison.",
            (f"vpp_grid_import_watts{{{SITE}}}", "import {{site}}"),
            (f"-vpp_grid_export_watts{{{SITE}}}", "export {{site}}"),
            (f"vpp_grid_import_limit_watts{{{SITE}}}", "import limit {{site}}"),
            (f"-vpp_grid_export_limit_watts{{{SITE}}}", "export limit {{site}}"),
            (f"vpp_plan_grid_import_watts{{{SITE}}}", "import planned {{site}}"),
            (f"-vpp_plan_grid_export_watts{{{SITE}}}", "export planned {{site}}"),
            overrides=[dashed("/limit/", "red"), dashed("/planned/", "blue")],
        ),
        12,
        9,
    )
    lay.row("Plan against actual")
    for title, actual, planned in (
        ("Grid: plan vs actual", GRID_NET, PLAN_GRID_NET),
        (
            "PV: plan vs actual",
            f"vpp_fleet_pv_power_watts{{{SITE}}}",
            f"vpp_plan_pv_power_watts{{{SITE}}}",
        ),
        (
            "Batteries: plan vs actual",
            f"vpp_fleet_battery_power_watts{{{SITE}}}",
            f"vpp_plan_battery_power_watts{{{SITE}}}",
        ),
        ("Heat pump: plan vs actual", HP_EL, f"vpp_plan_heat_pump_electric_watts{{{SITE}}}"),
    ):
        lay.add(
            timeseries(
                title,
                "Measured next to the plan's value for the same quarter hour.",
                (actual, "actual {{site}}"),
                (planned, "planned {{site}}"),
                overrides=[dashed("/planned/", "blue")],
            ),
            6,
            8,
        )
    lay.row("Prices and stores")
    lay.add(
        timeseries(
            "Prices",
            "Day-ahead price of the quarter hour: import with fees, "
            "export with the export fee deducted.",
            (f"vpp_price_import_euros_per_megawatt_hour{{{SITE}}}", "import {{site}}"),
            (f"vpp_price_export_euros_per_megawatt_hour{{{SITE}}}", "export {{site}}"),
            unit=PRICE_UNIT,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Battery energy",
            "Stored in online batteries, measured and planned.",
            (f"vpp_fleet_battery_energy_watt_hours{{{SITE}}}", "measured {{site}}"),
            (f"vpp_plan_battery_energy_watt_hours{{{SITE}}}", "planned {{site}}"),
            (f"vpp_fleet_battery_capacity_watt_hours{{{SITE}}}", "capacity {{site}}"),
            unit="watth",
            overrides=[dashed("/capacity/", "gray")],
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Devices by state",
            "Polled devices online and offline, by kind.",
            (
                f"sum by (site, kind, state) (vpp_fleet_devices{{{SITE}}})",
                "{{kind}} {{state}} {{site}}",
            ),
            unit="none",
            stack=True,
        ),
        8,
        8,
    )
    return dashboard(
        "vpp-overview",
        "vpp · plant overview",
        "Power flows, grid exchange against its limit, prices, plan vs actual.",
        lay,
    )


def devices() -> dict[str, Any]:
    lay = Layout()
    lay.add(
        table(
            "Comms health, worst first",
            "One row per device: sorted by failed polls in a row.",
            [
                (f"vpp_device_consecutive_failures{{{DEVICE}}}", "Failures in a row", "none"),
                (f"vpp_device_up{{{DEVICE}}}", "Up", "bool_on_off"),
                (f"vpp_device_last_success_age_seconds{{{DEVICE}}}", "Last good poll", "s"),
                (f"increase(vpp_device_comm_errors_total{{{DEVICE}}}[1h])", "Errors (1 h)", "none"),
                (f"vpp_device_poll_latency_seconds{{{DEVICE}}}", "Poll latency", "s"),
                (f"vpp_device_power_watts{{{DEVICE}}}", "Power", "watt"),
            ],
            sort_by="Failures in a row",
        ),
        24,
        10,
    )
    lay.add(
        bargauge(
            "Longest since a good poll",
            "The ten devices heard from least recently.",
            (f"topk(10, vpp_device_last_success_age_seconds{{{DEVICE}}})", "{{device}}"),
            "s",
            thresholds=thresholds((None, "green"), (60, "orange"), (300, "red")),
        ),
        8,
        8,
    )
    lay.add(
        bargauge(
            "Lowest state of charge",
            "The ten emptiest batteries.",
            (f"bottomk(10, vpp_device_soc_ratio{{{DEVICE}}})", "{{device}}"),
            "percentunit",
            min=0,
            max=1,
            thresholds=thresholds((None, "red"), (0.15, "orange"), (0.3, "green")),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Circuit breakers",
            "Devices per breaker state; open = skipped.",
            (f"sum by (site, state) (vpp_device_breaker_state{{{DEVICE}}})", "{{state}} {{site}}"),
            unit="none",
            stack=True,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Power per device",
            "Sign by kind: PV output, battery > 0 discharging, "
            "meter > 0 importing, heat pump input, data centre IT power.",
            (f"vpp_device_power_watts{{{DEVICE}}}", "{{device}}"),
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "State of charge",
            "Batteries, as last read.",
            (f"vpp_device_soc_ratio{{{DEVICE}}}", "{{device}}"),
            unit="percentunit",
            min=0,
            max=1,
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "Comm errors",
            "Failed polls per second (skipped polls of an open breaker do not count).",
            (
                f"sum by (site, device) (rate(vpp_device_comm_errors_total{{{DEVICE}}}"
                "[$__rate_interval]))",
                "{{device}}",
            ),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Poll latency",
            "Duration of the last good poll of each device.",
            (f"vpp_device_poll_latency_seconds{{{DEVICE}}}", "{{device}}"),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "PV limits in force",
            "Share of rated power; absent = no limit.",
            (f"vpp_device_pv_limit_ratio{{{DEVICE}}}", "{{device}}"),
            unit="percentunit",
            min=0,
            max=1,
        ),
        8,
        8,
    )
    lay.row("Setpoints")
    lay.add(
        timeseries(
            "Power setpoints and read-back",
            "Requested (after safety clamps), read back, and the measured power they ask for.",
            (
                f'vpp_setpoint_watts{{{DEVICE}, stage=~"requested|read_back"}}',
                "{{device}} {{stage}}",
            ),
            (f"vpp_setpoint_measured_watts{{{DEVICE}}}", "{{device}} measured"),
            overrides=[dashed("/read_back/", "blue")],
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "PV limit setpoints",
            "Requested and read-back PV limits.",
            (
                f'vpp_setpoint_ratio{{{DEVICE}, stage=~"requested|read_back"}}',
                "{{device}} {{stage}}",
            ),
            unit="percentunit",
            min=0,
            max=1,
        ),
        12,
        9,
    )
    lay.add(
        stat(
            "Setpoints not confirmed",
            "Devices whose last setpoint was refused or read back differently.",
            (f"sum by (site) (1 - vpp_setpoint_ok{{{DEVICE}}})", "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Setpoint problems (1 h)",
            "Read-back mismatches, safety clamps and refusals in the last hour, per device.",
            (
                f"increase(vpp_setpoint_readback_mismatches_total{{{DEVICE}}}[1h])",
                "mismatch {{device}}",
            ),
            (f"increase(vpp_setpoint_clamps_total{{{DEVICE}}}[1h])", "clamped {{device}}"),
            (f"increase(vpp_setpoint_refusals_total{{{DEVICE}}}[1h])", "refused {{device}}"),
            unit="none",
            noValue="0",
        ),
        18,
        8,
    )
    return dashboard(
        "vpp-devices",
        "vpp · devices",
        "Power, state of charge and comms health per device, worst first.",
        lay,
        with_device=True,
    )


def heat() -> dict[str, Any]:
    lay = Layout()
    lay.add(
        stat(
            "Waste heat offered",
            "By the data centre (thermal).",
            (f"sum by (site) (vpp_heat_waste_heat_offered_watts{{{SITE}}})", "{{site}}"),
        ),
        5,
        4,
    )
    lay.add(
        stat(
            "Waste heat used",
            "Lifted by the heat pump: heat out minus electricity in.",
            (f"sum by (site) (vpp_heat_waste_heat_used_watts{{{SITE}}})", "{{site}}"),
        ),
        5,
        4,
    )
    lay.add(
        stat(
            "COP",
            "Measured: heat out / electricity in.",
            (f"vpp_heat_pump_cop_ratio{{{SITE}}}", "{{device}}"),
            unit="none",
            decimals=2,
        ),
        4,
        4,
    )
    lay.add(
        gauge(
            "Thermal store",
            "Planned energy in the store / its capacity.",
            (
                f"vpp_plan_store_energy_watt_hours{{{SITE}}} / "
                f"vpp_store_capacity_watt_hours{{{SITE}}}",
                "{{site}}",
            ),
            min=0,
            max=1,
        ),
        5,
        4,
    )
    lay.add(
        stat(
            "Heat from the heat pump (24 h)",
            "Share of the heat delivered in 24 h that "
            "came from the heat pump rather than the boiler.",
            (
                f"sum by (site) (increase(vpp_heat_delivered_watt_hours_total{{{SITE}, "
                f'source="heat_pump"}}[24h])) / sum by (site) (increase('
                f"vpp_heat_delivered_watt_hours_total{{{SITE}}}[24h]))",
                "{{site}}",
            ),
            unit="percentunit",
        ),
        5,
        4,
    )
    lay.add(
        timeseries(
            "Waste heat offered and used",
            "Measured and forecast offer; what the "
            "heat pump lifts; what the plan rejects to the dry coolers (thermal).",
            (f"vpp_heat_waste_heat_offered_watts{{{SITE}}}", "offered {{device}}"),
            (f"vpp_heat_waste_heat_used_watts{{{SITE}}}", "used {{device}}"),
            (f"vpp_plan_waste_heat_offered_watts{{{SITE}}}", "offered, forecast"),
            (f"vpp_plan_dry_cooler_thermal_watts{{{SITE}}}", "to dry coolers, plan"),
            overrides=[dashed("/forecast|plan/", "blue")],
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "Heat pump power",
            "Electric input and heat output, measured and planned.",
            (f'vpp_device_power_watts{{{SITE}, kind="heat_pump"}}', "electric {{device}}"),
            (f"vpp_heat_pump_thermal_watts{{{SITE}}}", "heat {{device}}"),
            (f"vpp_plan_heat_pump_electric_watts{{{SITE}}}", "electric, planned"),
            (f"vpp_plan_heat_pump_thermal_watts{{{SITE}}}", "heat, planned"),
            overrides=[dashed("/planned/", "blue")],
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "COP",
            "Measured and as the plan assumes it.",
            (f"vpp_heat_pump_cop_ratio{{{SITE}}}", "measured {{device}}"),
            (f"vpp_plan_heat_pump_cop_ratio{{{SITE}}}", "planned"),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Temperatures",
            "Heat pump source and supply, data centre waste heat.",
            (f"vpp_heat_pump_source_temperature_celsius{{{SITE}}}", "source"),
            (f"vpp_heat_pump_supply_temperature_celsius{{{SITE}}}", "supply"),
            (f"vpp_datacentre_waste_heat_temperature_celsius{{{SITE}}}", "waste heat"),
            unit="celsius",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Cooling water flow",
            "Through the data centre's heat exchanger.",
            (f"vpp_datacentre_water_flow_cubic_meters_per_second{{{SITE}}}", "{{device}}"),
            unit="flowcms",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Thermal store",
            "Planned energy and capacity (the store has no meter).",
            (f"vpp_plan_store_energy_watt_hours{{{SITE}}}", "planned {{site}}"),
            (f"vpp_store_capacity_watt_hours{{{SITE}}}", "capacity {{site}}"),
            unit="watth",
            overrides=[dashed("/capacity/", "gray")],
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Heat supply",
            "Forecast demand; planned heat pump and boiler heat; "
            "heat delivered by source (thermal).",
            (f"vpp_plan_heat_demand_watts{{{SITE}}}", "demand, forecast"),
            (f"vpp_plan_heat_pump_thermal_watts{{{SITE}}}", "heat pump, planned"),
            (f"vpp_plan_boiler_thermal_watts{{{SITE}}}", "boiler, planned"),
            (
                f"3600 * sum by (site, source) (rate(vpp_heat_delivered_watt_hours_total"
                f"{{{SITE}}}[$__rate_interval]))",
                "delivered by {{source}}",
            ),
        ),
        12,
        8,
    )
    return dashboard(
        "vpp-heat",
        "vpp · heat",
        "Waste heat offered and used, heat pump power and COP, store, boiler.",
        lay,
    )


def _mean(phase: str) -> tuple[str, str]:
    return (
        f"sum by (site) (rate(vpp_plan_{phase}_seconds_sum{{{SITE}}}[1h])) / "
        f"sum by (site) (rate(vpp_plan_{phase}_seconds_count{{{SITE}}}[1h]))",
        phase,
    )


def optimizer() -> dict[str, Any]:
    lay = Layout()
    budget = thresholds((None, "green"), (SOLVE_BUDGET_WARN_S, "red"))
    lay.add(
        stat(
            "Plan",
            "Status of the plan in force.",
            (f"vpp_plan_status{{{SITE}}} == 1", "{{status}}"),
            unit="none",
            text_mode="name",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Last plan job",
            "Duration of the last plan job (forecast, build, solve, split).",
            (f'vpp_job_last_duration_seconds{{{SITE}, task="plan"}}', "{{site}}"),
            unit="s",
            thresholds=budget,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Fallback plans (24 h)",
            "Rule-based plans: the solver failed or ran out of time.",
            (f"increase(vpp_plan_fallbacks_total{{{SITE}}}[24h])", "{{site}}"),
            unit="none",
            decimals=0,
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Plans (24 h)",
            "Plans made.",
            (f"increase(vpp_plans_total{{{SITE}}}[24h])", "{{site}}"),
            unit="none",
            decimals=0,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Objective",
            "Solver objective of the plan in force.",
            (f"vpp_plan_objective_euros{{{SITE}}}", "{{site}}"),
            unit="currencyEUR",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Model size",
            "Variables and constraints of the plan's model.",
            (f"vpp_plan_variables{{{SITE}}}", "variables"),
            (f"vpp_plan_constraints{{{SITE}}}", "constraints"),
            unit="short",
        ),
        4,
        4,
    )
    lay.add(
        timeseries(
            "Solve time",
            f"Quantiles over the last hour, and each site's time limit; the alert fires at 80 % "
            f"of it (red above {SOLVE_BUDGET_WARN_S:.0f} s: 80 % of the demo site's 10 s).",
            (
                f"histogram_quantile(0.95, sum by (site, le) (rate(vpp_plan_solve_seconds_bucket"
                f"{{{SITE}}}[1h])))",
                "p95 {{site}}",
            ),
            (
                f"histogram_quantile(0.5, sum by (site, le) (rate(vpp_plan_solve_seconds_bucket"
                f"{{{SITE}}}[1h])))",
                "p50 {{site}}",
            ),
            (f"vpp_plan_time_limit_seconds{{{SITE}}}", "time limit {{site}}"),
            unit="s",
            thresholds=budget,
            thresholds_style="line+area",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Time per phase",
            "Mean over the last hour: build (or update) the "
            "model, solve, split over devices, end to end.",
            *(_mean(p) for p in ("build", "solve", "split", "total")),
            unit="s",
        ),
        12,
        8,
    )
    lay.add(
        state_timeline(
            "Plan status",
            "Which status the plan in force had.",
            (f"vpp_plan_status{{{SITE}}}", "{{status}}"),
            [
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "-", "color": "transparent"},
                        "1": {"text": "in force", "color": "green"},
                    },
                }
            ],
        ),
        12,
        7,
    )
    lay.add(
        timeseries(
            "Slack used",
            "Energy carried by each slack over the horizon; > 0 means "
            "the plan could not meet a limit or demand.",
            (f"vpp_plan_slack_watt_hours{{{SITE}}}", "{{slack}}"),
            unit="watth",
        ),
        12,
        7,
    )
    lay.add(
        timeseries(
            "Plans and fallbacks (1 h)",
            "Plans made and rule-based fallbacks.",
            (f"increase(vpp_plans_total{{{SITE}}}[1h])", "plans"),
            (f"increase(vpp_plan_fallbacks_total{{{SITE}}}[1h])", "fallbacks"),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Forecast error",
            "Last measured minus forecast value.",
            (f"vpp_forecast_error_watts{{{SITE}}}", "{{quantity}}"),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Plan cost by part",
            "Over the plan's horizon.",
            (f"vpp_plan_cost_euros{{{SITE}}}", "{{part}}"),
            unit="currencyEUR",
        ),
        8,
        8,
    )
    lay.row("Jobs and data")
    lay.add(
        timeseries(
            "Job duration (p95)",
            "Per job, over the rate interval.",
            (
                f"histogram_quantile(0.95, sum by (site, task, le) (rate("
                f"vpp_job_duration_seconds_bucket{{{SITE}}}[$__rate_interval])))",
                "{{task}}",
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Job failures and misses (1 h)",
            "Runs that failed or were skipped.",
            (f"increase(vpp_job_failures_total{{{SITE}}}[1h])", "failed {{task}}"),
            (f"increase(vpp_job_misses_total{{{SITE}}}[1h])", "missed {{task}}"),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Since each job last ran",
            "A stuck scheduler shows here.",
            (f"vpp_job_last_run_age_seconds{{{SITE}}}", "{{task}}"),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Data sources",
            "Time since the last good fetch; failures per hour; 1 = stale.",
            (f"vpp_source_last_success_age_seconds{{{SITE}}}", "age {{source}}"),
            (f"increase(vpp_source_failures_total{{{SITE}}}[1h])", "failures {{source}}"),
            (f"vpp_source_stale{{{SITE}}}", "stale {{source}}"),
            unit="short",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Recorder errors (1 h)",
            "Records the recorder failed to store.",
            (f"increase(vpp_recorder_errors_total{{{SITE}}}[1h])", "{{site}}"),
            unit="none",
        ),
        12,
        8,
    )
    return dashboard(
        "vpp-optimizer",
        "vpp · optimizer",
        "Solve time, plan status, slack, fallbacks, forecast error, jobs.",
        lay,
    )


DASHBOARDS = {
    "vpp-overview.json": overview,
    "vpp-devices.json": devices,
    "vpp-heat.json": heat,
    "vpp-optimizer.json": optimizer,
    "vpp-signals.json": signals,
    "vpp-city.json": city,
}


def render(make: Any) -> str:
    """One dashboard as the text of its file."""
    return json.dumps(make(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    GRAFANA_DIR.mkdir(exist_ok=True)
    for name, make in DASHBOARDS.items():
        (GRAFANA_DIR / name).write_text(render(make), encoding="utf-8")
        print(f"wrote {GRAFANA_DIR / name}")


if __name__ == "__main__":
    main()
