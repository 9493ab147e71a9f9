"""The heat dashboard (``vpp-heat.json``), written by ``generate.py``.

Waste heat offered and used, heat pump power and COP, store, boiler.
"""

from __future__ import annotations

from typing import Any

from grafana import (
    SITE,
    Layout,
    dashboard,
    dashed,
    gauge,
    stat,
    timeseries,
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
