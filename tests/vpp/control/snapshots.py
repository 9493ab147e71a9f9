"""Snapshots built by hand for the pure safety, dispatch and plausibility tests."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
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
