"""The process image: one frozen Snapshot of every device after a poll.

Readings are normalised to the site's conventions (docs/architecture.md): units in names, battery
power > 0 discharges, grid power > 0 imports, PV power >= 0. Any value a device does not
implement is None. Controllers read a Snapshot and never talk to devices themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class BreakerState(StrEnum):
    """Circuit breaker of one device: closed = normal, open = skipped, half_open = one trial."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CommsHealth:
    """How talking to one device went, as of the snapshot."""

    last_success: datetime | None = None
    last_attempt: datetime | None = None
    consecutive_failures: int = 0
    error_count: int = 0
    breaker: BreakerState = BreakerState.CLOSED
    last_error: str | None = None
    #: Seconds the last successful poll of this device took.
    latency_s: float | None = None

    @property
    def online(self) -> bool:
        return self.consecutive_failures == 0 and self.last_success is not None


@dataclass(frozen=True, slots=True)
class PvReading:
    ac_power_w: float | None
    energy_wh: float | None
    dc_power_w: float | None
    status: str | None
    rated_w: float | None
    #: Active PV limit as written in model 123/704, % of rated power (None when disabled).
    limit_pct: float | None = None


@dataclass(frozen=True, slots=True)
class BatteryReading:
    soc_pct: float | None
    #: > 0 discharging, < 0 charging.
    power_w: float | None
    capacity_wh: float | None
    max_charge_w: float | None
    max_discharge_w: float | None
    status: str | None = None
    #: The setpoint currently active on the device (> 0 discharge), if it reports one.
    setpoint_w: float | None = None


@dataclass(frozen=True, slots=True)
class MeterReading:
    #: > 0 importing from the grid.
    power_w: float | None
    import_energy_wh: float | None
    export_energy_wh: float | None


@dataclass(frozen=True, slots=True)
class HeatPumpReading:
    el_power_w: float | None
    el_setpoint_w: float | None
    th_power_w: float | None
    source_temp_c: float | None
    supply_temp_c: float | None
    running: bool | None = None
    #: Heat the network takes at the plant's feed [W] (its heat meter), where the site
    #: reports one; the heat correction needs it (:mod:`vpp.control.dispatch`).
    network_th_w: float | None = None


@dataclass(frozen=True, slots=True)
class DatacentreReading:
    it_power_w: float | None
    waste_heat_temp_c: float | None
    flow_m3_per_h: float | None
    #: Waste heat offered to the heat pump.
    waste_heat_w: float | None = None


Reading = PvReading | BatteryReading | MeterReading | HeatPumpReading | DatacentreReading


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One device in the process image: its latest reading (None if never read) and health."""

    id: str
    kind: str
    reading: Reading | None
    health: CommsHealth
    #: When ``reading`` was taken; older than the snapshot when the last poll failed.
    read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    time: datetime
    devices: Mapping[str, DeviceState] = field(default_factory=dict)

    def __iter__(self) -> Iterator[DeviceState]:
        return iter(self.devices.values())

    def online(self) -> list[DeviceState]:
        return [d for d in self.devices.values() if d.health.online]

    def offline(self) -> list[DeviceState]:
        return [d for d in self.devices.values() if not d.health.online]

    def of_kind(self, kind: str) -> list[DeviceState]:
        return [d for d in self.devices.values() if d.kind == kind]
