"""Snapshots built by hand for the pure safety, dispatch and plausibility tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    DatacentreReading,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Reading,
    Snapshot,
)
from vpp.core.site import BatteryDevice, PvDevice, Site

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
OK = CommsHealth(last_success=T0)
DOWN = CommsHealth(last_success=T0, consecutive_failures=3, last_error="timeout")


def battery(device: BatteryDevice, soc_pct: float, power_w: float = 0.0) -> BatteryReading:
    return BatteryReading(
        soc_pct=soc_pct,
        power_w=power_w,
        capacity_wh=device.capacity_wh,
        max_charge_w=device.max_charge_w,
        max_discharge_w=device.max_discharge_w,
    )


def pv(device: PvDevice, share: float, limit_pct: float | None = None) -> PvReading:
    """An inverter producing ``share`` of its rating, with its active limit."""
    return PvReading(
        ac_power_w=share * device.rated_w,
        energy_wh=0.0,
        dc_power_w=None,
        status=None,
        rated_w=device.rated_w,
        limit_pct=limit_pct,
    )


def heat_pump(el_power_w: float) -> HeatPumpReading:
    return HeatPumpReading(el_power_w, el_power_w, 3 * el_power_w, 30.0, 70.0, True)


def snapshot(
    site: Site,
    grid_w: float | None,
    readings: dict[str, Reading],
    down: frozenset[str] = frozenset(),
) -> Snapshot:
    """The grid meter reading ``grid_w`` (none when None) and the given device readings."""
    devices: dict[str, DeviceState] = {}
    meter = site.grid.meter
    if meter is not None and grid_w is not None:
        devices[meter] = DeviceState(meter, "meter", MeterReading(grid_w, 0.0, 0.0), OK, T0)
    for device_id, reading in readings.items():
        kind = site.device(device_id).kind.value
        health = DOWN if device_id in down else OK
        devices[device_id] = DeviceState(device_id, kind, reading, health, T0)
    return Snapshot(T0, devices)


def plan_row(heat_pump_el_w: float, store_th_w: float, /, **values: float) -> pd.Series:
    """A plan step for the heat correction: the heat pump at ``heat_pump_el_w`` (COP 3), the
    store giving ``store_th_w``, no boiler, 50 kW of heat demand, a price at which the heat
    pump's heat is well below the boiler's; ``values`` override any column."""
    base = {
        "heat_pump_el_w": heat_pump_el_w,
        "heat_pump_cop": 3.0,
        "store_th_w": store_th_w,
        "boiler_th_w": 0.0,
        "heat_demand_th_w": 50_000.0,
        "price_import_eur_per_mwh": 150.0,
        "price_export_eur_per_mwh": 40.0,
        "co2_g_per_kwh": 400.0,
        "grid_import_w": 40_000.0,
        "grid_export_w": 0.0,
    }
    base.update(values)
    return pd.Series(base)


def heat_snapshot(
    site: Site,
    demand_w: float | None,
    el_w: float,
    waste_w: float = 1e6,
    cop: float = 3.0,
    grid_w: float = 40_000.0,
) -> Snapshot:
    """The heat pump running at ``el_w`` with its heat meter reading ``demand_w`` of network
    heat (none when None), the data centre offering ``waste_w`` of waste heat."""
    hp, dc = site.heat_pump, site.datacentre
    assert hp is not None and dc is not None
    reading = HeatPumpReading(el_w, el_w, cop * el_w, 30.0, 70.0, el_w > 0, network_th_w=demand_w)
    readings: dict[str, Reading] = {
        hp.id: reading,
        dc.id: DatacentreReading(waste_w / 0.9, None, None, waste_heat_w=waste_w),
    }
    return snapshot(site, grid_w, readings)
