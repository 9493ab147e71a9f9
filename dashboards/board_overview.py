"""The overview dashboard (``vpp-overview.json``), written by ``generate.py``.

Power flows, grid exchange against its limit, prices, plan vs actual.
"""

from __future__ import annotations

from typing import Any

from grafana import (
    SITE,
    Layout,
    dashboard,
    dashed,
    gauge,
    plan_status_stat,
    stat,
    thresholds,
    timeseries,
)

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
        plan_status_stat(),
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
