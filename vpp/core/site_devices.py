"""The site schema's devices: PV inverters, batteries, the grid meter, heat pumps, data
centres, and where each answers Modbus TCP. Re-exported by :mod:`vpp.core.site`, whose
``devices`` list holds them.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
)

from vpp.core.site_load import ConfigError as ConfigError
from vpp.core.site_load import SiteFileError as SiteFileError
from vpp.core.site_refs import device_labels as device_labels
from vpp.core.site_refs import reference_problems as reference_problems
from vpp.core.site_refs import resolve_host as resolve_host
from vpp.core.site_types import (
    Efficiency,
    Identifier,
    NonNegativeFloat,
    Pct,
    Port,
    PositiveFloat,
    Ratio,
    RegisterAddress,
    SiteModel,
    TempC,
    UnitId,
    between,
)


class DeviceKind(StrEnum):
    PV = "pv"
    BATTERY = "battery"
    METER = "meter"
    HEAT_PUMP = "heat_pump"
    DATACENTRE = "datacentre"


class ModbusEndpoint(SiteModel):
    """Where a device answers Modbus TCP."""

    host: str = "127.0.0.1"
    port: Port = 502
    unit: UnitId = 1
    timeout_s: PositiveFloat = 1.0
    retries: Annotated[int, AfterValidator(between(0, 10))] = 1
    #: SunSpec base address; None means discovery at 40000, 0 and 50000.
    base: RegisterAddress | None = None
    #: The device serves function code 23 (write, then read, in one request): a setpoint's
    #: last write carries its read-back.
    read_write: bool = False


class SimOptions(SiteModel):
    """How the simulator presents this device (ignored for real hardware)."""

    #: SunSpec model the simulated device presents (103/113 PV, 124/802 storage, 203 meter).
    sunspec_model: int | None = None
    response_delay_s: NonNegativeFloat = 0.0


class _DeviceBase(SiteModel):
    id: Identifier
    name: str | None = None
    modbus: ModbusEndpoint
    feeder: str = "main"
    enabled: bool = True
    sim: SimOptions = SimOptions()


class PvDevice(_DeviceBase):
    """A rooftop PV inverter controlled through SunSpec model 123 or 704."""

    kind: Literal[DeviceKind.PV]
    rated_w: PositiveFloat
    #: Installed DC peak power; defaults to the AC rating.
    peak_wp: PositiveFloat | None = None
    #: Lowest PV limit the controller writes: some inverters go to standby at 0 %.
    min_limit_pct: Annotated[float, AfterValidator(between(1.0, 100.0))] = 5.0
    control: Literal["123", "704"] = "123"
    tilt_deg: Annotated[float, AfterValidator(between(0.0, 90.0))] = 30.0
    azimuth_deg: Annotated[float, AfterValidator(between(0.0, 360.0))] = 180.0
    #: The grid operator may cap this inverter's feed-in by remote control (§9 EEG: the
    #: control box's 100/60/30/0 % stages, as a share of ``rated_w``); see ``[signals]``.
    eeg_controllable: bool = True
    #: Day the system was commissioned (``2025-03-01``); None: before 25 Feb 2025. With no
    #: ``smart_meter_gateway``, a system commissioned from 25 Feb 2025 on is held to the
    #: Solarspitzengesetz rules (feed-in at most 60 % of ``peak_wp``, no feed-in at negative
    #: prices); see ``vpp.signals.rules``.
    commissioned_on: date | None = None
    #: A smart-meter gateway is fitted (the Solarspitzengesetz 60 % cap no longer applies).
    smart_meter_gateway: bool = False

    @property
    def dc_peak_w(self) -> float:
        return self.peak_wp if self.peak_wp is not None else self.rated_w


class BatteryDevice(_DeviceBase):
    """A home or district battery controlled through SunSpec model 124 or 802 + 7xx."""

    kind: Literal[DeviceKind.BATTERY]
    capacity_wh: PositiveFloat
    max_charge_w: PositiveFloat
    max_discharge_w: PositiveFloat
    charge_efficiency: Efficiency = 0.95
    discharge_efficiency: Efficiency = 0.95
    soc_min_pct: Pct = 10.0
    # validate_default: the SoC window is checked when only soc_min_pct is given, too.
    soc_max_pct: Pct = Field(default=95.0, validate_default=True)
    #: Initial state of charge of a simulated battery.
    soc_initial_pct: Pct = 50.0
    control: Literal["124", "802"] = "124"
    #: Cost of cycling, charged per kWh discharged (covers wear).
    wear_cost_eur_per_mwh: NonNegativeFloat = 20.0
    #: A controllable consumer under §14a EnWG: the grid operator may dim its charging
    #: from the grid, never below the §14a floor (4.2 kW; see ``vpp.signals.rules``).
    enwg_14a: bool = False

    @field_validator("soc_max_pct")
    @classmethod
    def _soc_window(cls, v: float, info: ValidationInfo) -> float:
        # A field validator (not a model validator) so that it runs, and is reported, even
        # when other fields of the device are wrong.
        low = info.data.get("soc_min_pct")
        if low is not None and low >= v:
            raise ValueError(f"must be above soc_min_pct ({low:g}), got {v:g}")
        return v


class MeterDevice(_DeviceBase):
    """A SunSpec meter (model 201-204); the grid-connection meter is named in ``grid.meter``."""

    kind: Literal[DeviceKind.METER]


class HeatPumpDevice(_DeviceBase):
    """A large heat pump lifting the data centre's waste heat into the heating network."""

    kind: Literal[DeviceKind.HEAT_PUMP]
    register_map: Identifier = "heat_pump"
    max_el_w: PositiveFloat
    #: Lowest electric power while running, as a share of ``max_el_w`` (0 = fully modulating).
    min_part_load_pct: Pct = 0.0
    #: Carnot efficiency factor: COP = eta * T_supply / (T_supply - T_source), kelvin. The
    #: default is the median fitted to the water/water and brine/water heat pumps of the hplib
    #: database (``optimizer/fit_carnot.py``, ``optimizer/carnot_fit.csv``).
    carnot_efficiency: Ratio = 0.57
    #: Temperature drop across the evaporator, degC.
    source_approach_k: NonNegativeFloat = 5.0
    #: A controllable consumer under §14a EnWG: the grid operator may dim its electric
    #: power, never below the §14a floor (4.2 kW, 40 % of ``max_el_w`` above 11 kW).
    enwg_14a: bool = False
    #: What it serves under §14a EnWG: ``heating`` (a heat pump) or ``room_cooling`` (a
    #: room-cooling device, Anlage 1 Ziff. 2.4.1 c). Behind one energy-management system
    #: all heat pumps together count as one consumer of their summed rating, and all room
    #: cooling together as another (Ziff. 2.4.2).
    enwg_14a_use: Literal["heating", "room_cooling"] = "heating"


class DatacentreDevice(_DeviceBase):
    """The data centre's heat meter: IT power and the waste heat it offers."""

    kind: Literal[DeviceKind.DATACENTRE]
    register_map: Identifier = "datacentre_meter"
    it_power_w: PositiveFloat
    #: Share of IT power available as recoverable waste heat.
    heat_recovery_ratio: Ratio = 0.9
    waste_heat_temp_c: TempC = 35.0
    #: Electric power of the dry coolers per watt of heat rejected (must-cool).
    dry_cooler_el_per_th: Annotated[float, AfterValidator(between(0.0, 0.5))] = 0.05


Device = Annotated[
    PvDevice | BatteryDevice | MeterDevice | HeatPumpDevice | DatacentreDevice,
    Field(discriminator="kind"),
]
