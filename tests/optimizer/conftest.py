"""Builders of small sites and forecasts with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from vpp.core.site import Site

START = pd.Timestamp("2024-03-04T00:00Z")


def _endpoint(i: int) -> dict[str, int]:
    return {"port": 21_000 + i // 200, "unit": i % 200 + 1}


def make_site(
    devices: list[dict[str, Any]],
    *,
    horizon_h: int = 24,
    import_limit_w: float = 1e6,
    export_limit_w: float = 1e6,
    heat: dict[str, Any] | None = None,
    economics: dict[str, Any] | None = None,
    **optimizer: Any,
) -> Site:
    """A site from device dicts (ids and endpoints filled in where missing)."""
    devs = []
    for i, d in enumerate(devices):
        d = dict(d)
        d.setdefault("modbus", _endpoint(i))
        devs.append(d)
    return Site.model_validate(
        {
            "site": {"name": "test"},
            "grid": {"import_limit_w": import_limit_w, "export_limit_w": export_limit_w},
            "heat": heat or {},
            "economics": economics or {"co2_price_eur_per_t": 0.0},
            "optimizer": {"horizon_h": horizon_h, **optimizer},
            "devices": devs,
        }
    )


def battery(
    id_: str, capacity_wh: float = 10_000, power_w: float = 5_000, **kw: Any
) -> dict[str, Any]:
    return {
        "id": id_,
        "kind": "battery",
        "capacity_wh": capacity_wh,
        "max_charge_w": power_w,
        "max_discharge_w": power_w,
        **kw,
    }


def pv(id_: str, rated_w: float = 10_000, **kw: Any) -> dict[str, Any]:
    return {"id": id_, "kind": "pv", "rated_w": rated_w, **kw}


def heat_devices(
    max_el_w: float = 100_000, it_power_w: float = 300_000, **hp: Any
) -> list[dict[str, Any]]:
    return [
        {"id": "dc", "kind": "datacentre", "it_power_w": it_power_w},
        {"id": "hp", "kind": "heat_pump", "max_el_w": max_el_w, **hp},
    ]


def store_site(heat: dict[str, Any] | None = None, **site: Any) -> Site:
    """A 100 kW heat pump on 400 kW of IT load (360 kW of 35 degC waste heat), a 5 MWh
    store 20 % full (charge and discharge up to 1 MW), a boiler of 1 MW on gas at 45 EUR/MWh,
    24 h plans; ``heat`` overrides the heat settings, ``site`` goes to :func:`make_site`."""
    settings = {
        "boiler_max_th_w": 1e6,
        "gas_price_eur_per_mwh": 45.0,
        "store_capacity_wh": 5e6,
        "store_initial_pct": 20.0,
        "store_max_charge_th_w": 1e6,
        "store_max_discharge_th_w": 1e6,
        **(heat or {}),
    }
    site.setdefault("horizon_h", 24)
    return make_site(heat_devices(max_el_w=100_000, it_power_w=400_000), heat=settings, **site)


def make_forecast(steps: int, start: pd.Timestamp = START, **columns: Any) -> pd.DataFrame:
    """A forecast with every required column; scalars are repeated, arrays used as given."""
    base: dict[str, Any] = {
        "pv_w_per_kwp": 0.0,
        "load_w": 0.0,
        "heat_demand_th_w": 0.0,
        "price_import_eur_per_mwh": 100.0,
        "price_export_eur_per_mwh": 50.0,
        "co2_g_per_kwh": 0.0,
    }
    base.update(columns)
    index = pd.date_range(start, periods=steps, freq="15min", tz="UTC")
    return pd.DataFrame(
        {k: np.broadcast_to(np.asarray(v, dtype=float), (steps,)) for k, v in base.items()},
        index=index,
    )


@pytest.fixture
def start() -> pd.Timestamp:
    return START
