"""Synthetic sites and forecasts of any size, for tests, benchmarks and demos.

The shapes are plausible for a Leipzig district (PV bell around noon UTC, evening load peak,
day-ahead prices with a midday dip and an evening peak) but the numbers are made up; real data
comes from ``vpp.data``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vpp.core.site import Site

#: Battery sizes drawn by :func:`synthetic_site`: (capacity Wh, power W, efficiency).
BATTERY_SIZES = (
    (5_000, 2_500, 0.95),
    (10_000, 5_000, 0.95),
    (7_500, 3_750, 0.95),
    (13_500, 5_000, 0.94),
    (20_000, 10_000, 0.95),
)


def _endpoint(i: int) -> dict[str, int]:
    return {"port": 20_000 + i // 200, "unit": i % 200 + 1}


def synthetic_site(
    n_pv: int,
    n_battery: int,
    *,
    feeders: int = 3,
    heat: bool = True,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Site:
    """A site with ``n_pv`` inverters and ``n_battery`` batteries spread over ``feeders``.

    With ``heat`` the site has the demo's data centre, heat pump, store and boiler, scaled to
    the fleet. ``overrides`` replaces top-level sections (e.g. ``{"grid": {...}}``).
    """
    rng = np.random.default_rng(seed)
    devices: list[dict[str, Any]] = []
    for i in range(n_pv):
        rated = float(rng.choice([4_000, 6_000, 10_000, 20_000]))
        devices.append(
            {
                "id": f"pv-{i:05d}",
                "kind": "pv",
                "rated_w": rated,
                "peak_wp": rated * 1.1,
                "feeder": f"F{i % feeders + 1}",
                "modbus": _endpoint(i),
            }
        )
    for j in range(n_battery):
        cap, power, eta = BATTERY_SIZES[int(rng.integers(len(BATTERY_SIZES)))]
        devices.append(
            {
                "id": f"bat-{j:05d}",
                "kind": "battery",
                "capacity_wh": cap,
                "max_charge_w": power,
                "max_discharge_w": power,
                "charge_efficiency": eta,
                "discharge_efficiency": eta,
                "soc_initial_pct": float(rng.uniform(20, 80)),
                "feeder": f"F{j % feeders + 1}",
                "modbus": _endpoint(n_pv + j),
            }
        )
    scale = max(1.0, (n_pv + n_battery) / 100)
    doc: dict[str, Any] = {
        "site": {"name": f"synthetic {n_pv} PV + {n_battery} batteries"},
        "grid": {
            "import_limit_w": 400_000 * scale,
            "export_limit_w": 300_000 * scale,
            "base_load_peak_w": 150_000 * scale,
            "base_load_annual_wh": 500_000_000 * scale,
        },
        "devices": devices,
    }
    if heat:
        k = len(devices)
        devices += [
            {
                "id": "datacentre",
                "kind": "datacentre",
                "it_power_w": 300_000.0,
                "modbus": _endpoint(k),
            },
            {
                "id": "heat-pump",
                "kind": "heat_pump",
                "max_el_w": 100_000.0,
                "min_part_load_pct": 20.0,
                "modbus": _endpoint(k + 1),
            },
        ]
        doc["heat"] = {
            "store_capacity_wh": 4_000_000.0,
            "store_max_charge_th_w": 500_000.0,
            "store_max_discharge_th_w": 500_000.0,
            "boiler_max_th_w": 1_500_000.0,
            "annual_demand_wh": 3_000_000_000.0,
        }
    doc.update(overrides or {})
    return Site.model_validate(doc)


def synthetic_forecast(
    site: Site, start: str | pd.Timestamp, steps: int, *, seed: int = 0, step_min: int = 15
) -> pd.DataFrame:
    """A forecast table for ``site`` (see :data:`optimizer.inputs.FORECAST_COLUMNS`)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(pd.Timestamp(start), periods=steps, freq=f"{step_min}min", tz="UTC")
    hour = (index.hour + index.minute / 60).to_numpy(float)
    pv = 750.0 * np.clip(np.sin(np.pi * (hour - 4.5) / 15.0), 0, None) ** 1.5
    pv *= rng.uniform(0.6, 1.0, steps)
    evening = np.exp(-0.5 * ((hour - 18.5) / 2.0) ** 2)
    load = site.grid.base_load_peak_w * (0.45 + 0.35 * evening + 0.1 * rng.random(steps))
    price = 90 + 60 * evening - 50 * np.clip(np.sin(np.pi * (hour - 7) / 10), 0, None)
    price += rng.normal(0, 8, steps)
    dc = site.datacentre
    return pd.DataFrame(
        {
            "pv_w_per_kwp": pv,
            "load_w": load,
            "heat_demand_th_w": site.heat.annual_demand_wh / 8760 * (1 + 0.3 * evening),
            "it_power_w": (dc.it_power_w if dc else 0.0) * rng.uniform(0.7, 0.9, steps),
            "waste_heat_temp_c": 35 + rng.normal(0, 1, steps),
            "outdoor_temp_c": 5 + 5 * np.sin(np.pi * (hour - 9) / 12),
            "price_import_eur_per_mwh": price + site.grid.import_fee_eur_per_mwh,
            "price_export_eur_per_mwh": price - site.grid.export_fee_eur_per_mwh,
            "co2_g_per_kwh": 380 - 120 * pv / 750,
        },
        index=index,
    )
