"""Building snapshots for the recorder tests (also imported by the kill -9 child process)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    DeviceState,
    PvReading,
    Reading,
    Snapshot,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def state(
    device_id: str, kind: str, reading: Reading | None, at: datetime, online: bool = True
) -> DeviceState:
    """A device read at ``at`` (online) or whose last poll at ``at`` failed (offline)."""
    if online:
        health = CommsHealth(last_success=at, last_attempt=at, latency_s=0.0125)
        return DeviceState(device_id, kind, reading, health, read_at=at)
    earlier = at - timedelta(seconds=30)
    health = CommsHealth(
        last_success=earlier,
        last_attempt=at,
        consecutive_failures=3,
        error_count=7,
        last_error=f"{device_id}: timeout",
    )
    return DeviceState(device_id, kind, reading, health, read_at=earlier)


def pv(power_w: float, energy_wh: float = 1.0e6) -> PvReading:
    return PvReading(
        ac_power_w=power_w,
        energy_wh=energy_wh,
        dc_power_w=power_w * 1.04,
        status="MPPT",
        rated_w=5600.0,
        limit_pct=100.0,
    )


def battery(power_w: float, soc_pct: float = 55.5) -> BatteryReading:
    return BatteryReading(
        soc_pct=soc_pct,
        power_w=power_w,
        capacity_wh=10_000.0,
        max_charge_w=5000.0,
        max_discharge_w=5000.0,
        status="idle",
    )


def fleet_snapshot(at: datetime, n_devices: int, seed: int = 0) -> Snapshot:
    """``n_devices`` devices, four PV inverters to one battery, powers varying with ``seed``."""
    devices: dict[str, DeviceState] = {}
    for i in range(n_devices):
        if i % 5 == 4:
            device_id, kind = f"bat-{i:04d}", "battery"
            reading: Reading = battery(-2500.0 + (i * 37 + seed) % 5000, 20 + (i + seed) % 70)
        else:
            device_id, kind = f"pv-{i:04d}", "pv"
            reading = pv(float((i * 53 + seed * 7) % 5600), 1.0e6 + seed)
        devices[device_id] = state(device_id, kind, reading, at)
    return Snapshot(at, devices)
