"""Site configuration: TOML files validated once, at load, with pydantic.

This module is the one source of defaults and units for everything a site is made of. Every
field carries its unit in its name (``power_w``, ``capacity_wh``, ``temp_c``...). A bad file
fails fast with :class:`ConfigError`, whose message names each bad field by its path, e.g.
``devices[pv-004].modbus.port: must be 1..65535``. Devices are named by their id, or by
their position in ``devices`` when the id is missing, malformed, all digits or not unique.
Every problem is reported at once: field errors, cross-references (duplicate ids, two devices
on one Modbus endpoint, the grid meter) and files that cannot be read.

The schema is here; :func:`parse_site` and :func:`read_site` at the end bind it to the
cross-reference checks (:mod:`vpp.core.site_refs`) and to reading files and wording errors
(:mod:`vpp.core.site_load`), two modules below this one.

Numbers must be finite (``inf`` and ``nan`` are valid TOML but no valid rating), the time zone
must be a known IANA zone, and every Modbus host must resolve: two devices whose hosts resolve
to the same address (``localhost`` and ``127.0.0.1``) on the same port and unit id are one
endpoint. Hosts are resolved with :func:`socket.getaddrinfo` only; nothing is contacted.

The module imports nothing from ``adapters`` or ``optimizer``: both may import the types here.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vpp.core.site_load import ConfigError as ConfigError
from vpp.core.site_load import SiteFileError as SiteFileError
from vpp.core.site_load import error_lines, read_document
from vpp.core.site_refs import ID_PATTERN, DeviceRef
from vpp.core.site_refs import device_labels as device_labels
from vpp.core.site_refs import reference_problems as reference_problems
from vpp.core.site_refs import resolve_host as resolve_host


def _between(lo: float, hi: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not lo <= value <= hi:
            lo_s = f"{lo:g}" if isinstance(lo, float) else str(lo)
            hi_s = f"{hi:g}" if isinstance(hi, float) else str(hi)
            raise ValueError(f"must be {lo_s}..{hi_s}, got {value}")
        return value

    return check


def _positive(value: Any) -> Any:
    if not value > 0:
        raise ValueError(f"must be > 0, got {value}")
    return value


def _non_negative(value: Any) -> Any:
    if not value >= 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


Port = Annotated[int, AfterValidator(_between(1, 65535))]
UnitId = Annotated[int, AfterValidator(_between(0, 247))]
RegisterAddress = Annotated[int, AfterValidator(_between(0, 65535))]
Pct = Annotated[float, AfterValidator(_between(0.0, 100.0))]
Ratio = Annotated[float, AfterValidator(_between(0.0, 1.0))]
Efficiency = Annotated[float, AfterValidator(_between(0.01, 1.0))]
PositiveFloat = Annotated[float, AfterValidator(_positive)]
NonNegativeFloat = Annotated[float, AfterValidator(_non_negative)]
TempC = Annotated[float, AfterValidator(_between(-50.0, 150.0))]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class _Model(BaseModel):
    # allow_inf_nan=False: every float field refuses inf and nan (TOML has both).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DeviceKind(StrEnum):
    PV = "pv"
    BATTERY = "battery"
    METER = "meter"
    HEAT_PUMP = "heat_pump"
    DATACENTRE = "datacentre"


class ModbusEndpoint(_Model):
    """Where a device answers Modbus TCP."""

    host: str = "127.0.0.1"
    port: Port = 502
    unit: UnitId = 1
    timeout_s: PositiveFloat = 1.0
    retries: Annotated[int, AfterValidator(_between(0, 10))] = 1
    #: SunSpec base address; None means discovery at 40000, 0 and 50000.
    base: RegisterAddress | None = None
    #: The device serves function code 23 (write, then read, in one request): a setpoint's
    #: last write carries its read-back.
    read_write: bool = False


class SimOptions(_Model):
    """How the simulator presents this device (ignored for real hardware)."""

    #: SunSpec model the simulated device presents (103/113 PV, 124/802 storage, 203 meter).
    sunspec_model: int | None = None
    response_delay_s: NonNegativeFloat = 0.0


class _DeviceBase(_Model):
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
    min_limit_pct: Annotated[float, AfterValidator(_between(1.0, 100.0))] = 5.0
    control: Literal["123", "704"] = "123"
    tilt_deg: Annotated[float, AfterValidator(_between(0.0, 90.0))] = 30.0
    azimuth_deg: Annotated[float, AfterValidator(_between(0.0, 360.0))] = 180.0
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
    dry_cooler_el_per_th: Annotated[float, AfterValidator(_between(0.0, 0.5))] = 0.05


Device = Annotated[
    PvDevice | BatteryDevice | MeterDevice | HeatPumpDevice | DatacentreDevice,
    Field(discriminator="kind"),
]


class SiteInfo(_Model):
    name: str
    #: IANA time zone of the site's local days (reports, day-ahead prices, replay days).
    timezone: str = "Europe/Berlin"
    latitude_deg: Annotated[float, AfterValidator(_between(-90.0, 90.0))] = 51.34
    longitude_deg: Annotated[float, AfterValidator(_between(-180.0, 180.0))] = 12.37

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (KeyError, ValueError, OSError):  # not found, malformed key, a folder
            raise ValueError(
                f"unknown time zone {v!r} (an IANA name like 'Europe/Berlin')"
            ) from None
        return v


class GridConnection(_Model):
    """The district's connection to the distribution grid."""

    import_limit_w: PositiveFloat
    export_limit_w: PositiveFloat
    #: Device id of the grid-connection meter.
    meter: Identifier | None = None
    #: Share of each grid limit that plans keep free, so that forecast errors between two
    #: corrections do not push the measured exchange past the limit.
    limit_margin_pct: Annotated[float, AfterValidator(_between(0.0, 50.0))] = 3.0
    #: ``fixed``: the margin is ``limit_margin_pct`` of each limit. ``spread``: with learned
    #: forecasts, each quarter hour's margin is the spread of the net load (base load less
    #: PV) between its P50 and P90 (import) or P10 (export), within ``limit_margin_min_pct``
    #: and ``limit_margin_max_pct`` of the limit (vpp.control.cycle.plan_margins); quarter
    #: hours without learned quantiles keep the fixed margin.
    limit_margin_from: Literal["fixed", "spread"] = "fixed"
    limit_margin_min_pct: Annotated[float, AfterValidator(_between(0.0, 50.0))] = 0.5
    limit_margin_max_pct: Annotated[float, AfterValidator(_between(0.0, 50.0))] = 10.0
    #: Grid fees, levies and taxes on each MWh imported, on top of the day-ahead price.
    import_fee_eur_per_mwh: NonNegativeFloat = 120.0
    #: Fee deducted from the day-ahead price for each MWh exported.
    export_fee_eur_per_mwh: NonNegativeFloat = 5.0
    #: Site load that is not a modelled device (households, street lights), peak value.
    base_load_peak_w: NonNegativeFloat = 0.0
    #: Annual energy of that load, for the standard load profile.
    base_load_annual_wh: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _margin_bounds(self) -> GridConnection:
        if self.limit_margin_min_pct > self.limit_margin_max_pct:
            raise ValueError(
                f"limit_margin_min_pct ({self.limit_margin_min_pct}) exceeds "
                f"limit_margin_max_pct ({self.limit_margin_max_pct})"
            )
        return self


class HeatSystem(_Model):
    """Heating network, thermal store and backup boiler fed by the heat pump."""

    supply_temp_c: TempC = 70.0
    return_temp_c: TempC = Field(default=45.0, validate_default=True)
    store_capacity_wh: NonNegativeFloat = 0.0
    store_initial_pct: Pct = 50.0
    #: Standing loss of the store, share of its content per hour.
    store_loss_pct_per_h: Pct = 0.5
    store_max_charge_th_w: NonNegativeFloat = 0.0
    store_max_discharge_th_w: NonNegativeFloat = 0.0
    boiler_max_th_w: NonNegativeFloat = 0.0
    boiler_efficiency: Efficiency = 0.92
    gas_price_eur_per_mwh: NonNegativeFloat = 45.0
    #: Annual heat demand of the connected homes, for the standard heat-load profile.
    annual_demand_wh: NonNegativeFloat = 0.0
    #: The plant meters the heat the network takes at its feed (``network_th_w`` of the heat
    #: pump's reading, register ``network_th_w`` of its map); unset, the controller ignores
    #: that register and replay's plant does not report it. The heat correction and the
    #: store estimate use it where it is read.
    network_meter: bool = True
    #: Penalty for heat demand not met (slack), per MWh thermal.
    unmet_heat_penalty_eur_per_mwh: PositiveFloat = 5000.0

    @field_validator("return_temp_c")
    @classmethod
    def _temps(cls, v: float, info: ValidationInfo) -> float:
        supply = info.data.get("supply_temp_c")
        if supply is not None and v >= supply:
            raise ValueError(f"must be below supply_temp_c ({supply:g}), got {v:g}")
        return v


class Economics(_Model):
    co2_price_eur_per_t: NonNegativeFloat = 80.0
    gas_co2_kg_per_mwh: NonNegativeFloat = 201.0


class OptimizerSettings(_Model):
    horizon_h: Annotated[int, AfterValidator(_between(1, 72))] = 36
    step_min: Literal[5, 15, 30, 60] = 15
    time_limit_s: PositiveFloat = 10.0
    #: "aggregated" plans clusters of similar devices; "device" plans each device.
    mode: Literal["aggregated", "device"] = "aggregated"
    milp: bool = False


class ForecastConfig(_Model):
    """Which forecasts the plans use (see vpp/forecast/ and vpp/learned.py)."""

    #: ``rules``: profile and persistence rules; ``learned``: LightGBM quantile forecasts
    #: (P10/P50/P90) of heat demand, base load and PV, refitted daily, the rules where
    #: less than ``min_train_days`` of history are known.
    method: Literal["rules", "learned"] = "rules"
    #: Days of history each day's learned models are fitted on.
    train_days: Annotated[int, AfterValidator(_between(2, 365))] = 28
    #: Fewer known days than this: the rule forecasts are used.
    min_train_days: Annotated[int, AfterValidator(_between(2, 365))] = 14
    #: Outdoor temperature ahead: ``synthetic``: issued forecasts made from the observed
    #: temperature with the published error spread by lead time (vpp/weather.py; replay
    #: only, where the observations are known); ``persistence``: yesterday's temperature.
    #: ``vpp run`` has no source of issued forecasts yet and always uses persistence.
    weather: Literal["synthetic", "persistence"] = "synthetic"
    #: PV ahead: ``issued``: synthetic issued PV forecasts made from the PV the inputs hold
    #: ahead with the skill published for NWP-based forecasts (vpp/weather.py; replay and a
    #: historic file only), weighed against the rule blend by their track record
    #: (vpp.forecast.issued_solar_weight); ``rules``: the rule blend alone. A source that
    #: knows only the past gives the rules either way.
    pv: Literal["issued", "rules"] = "issued"
    #: Seed of the synthetic forecasts' errors (temperature and PV).
    weather_seed: Annotated[int, AfterValidator(_between(0, 2**31 - 1))] = 2018
    #: Hours after the plan's horizon whose forecast heat demand, where the heat pump cannot
    #: meet it, the store keeps in reserve at the plan's end (optimizer/reserve.py; 0: off;
    #: only with a weather forecast).
    reserve_lookahead_h: Annotated[int, AfterValidator(_between(0, 72))] = 48

    @model_validator(mode="after")
    def _window(self) -> ForecastConfig:
        if self.min_train_days > self.train_days:
            raise ValueError(
                f"min_train_days ({self.min_train_days}) exceeds train_days ({self.train_days})"
            )
        return self


class PollSettings(_Model):
    interval_s: PositiveFloat = 10.0
    max_concurrency: Annotated[int, AfterValidator(_between(1, 10000))] = 200
    #: Consecutive failures that open a device's circuit breaker.
    breaker_failures: Annotated[int, AfterValidator(_between(1, 100))] = 3
    #: Seconds an open breaker waits before one trial request.
    breaker_reset_s: PositiveFloat = 30.0
    #: Revert timer written with every control: the device falls back to its own defaults
    #: if the controller goes silent this long.
    revert_s: Annotated[int, AfterValidator(_between(10, 86400))] = 900


class RunSettings(_Model):
    """How ``vpp run`` runs this site."""

    #: Serve every device from the simulator on 127.0.0.1 and control that (the demo).
    simulate: bool = False
    #: Recorder database (SQLite); relative paths are relative to the working directory.
    db_path: str = "var/vpp.sqlite"
    #: Days every recorded table keeps (plans, setpoints, events, inputs, snapshots).
    retention_days: PositiveFloat = 90.0
    #: Days the per-device snapshots keep, if fewer: they are almost all of the file (every
    #: poll, every device; about 1.9 GB a day for 1,000 devices polled every 10 s). Before
    #: they go, their quarter-hour means of what ``vpp export`` measures are kept (a few KB
    #: a day), so older days still export for replay. None = retention_days.
    snapshot_retention_days: PositiveFloat | None = None
    #: Folder the controller writes recorder backups into, on a schedule (``vpp backup``
    #: made by the watchdog: online, integrity-checked, ``vpp-YYYY-MM-DDTHHMMZ.sqlite``).
    #: Relative paths are relative to the working directory. None = no backups from the
    #: controller (use ``vpp backup`` or ``config/deploy/vpp-backup.timer``).
    backup_dir: str | None = None
    #: Hours between backups (controller clock), counted from the newest copy in the folder.
    backup_interval_h: PositiveFloat = 24.0
    #: Backups kept in ``backup_dir``; older ones are deleted after each new one.
    backup_keep: Annotated[int, AfterValidator(_between(1, 10000))] = 14
    #: Operator page, JSON API and Prometheus ``/metrics``; loopback unless told otherwise.
    http_host: str = "127.0.0.1"
    http_port: Port = 9310
    #: Host names the operator page and API answer besides the bind address and the loopback
    #: names (e.g. the name a reverse proxy forwards); any other Host gets 421, so that a page
    #: on another site cannot read the API through DNS rebinding.
    allowed_hosts: list[str] = Field(default_factory=list)
    #: Token that operator actions (caps, pause, re-plan) must carry; the environment variable
    #: ``VPP_API_TOKEN`` overrides it. Without a token every write is refused.
    api_token: str | None = None
    #: Historic inputs in the vpp.data schema, mapped onto today's calendar; None = the
    #: shipped year.
    inputs_file: str | None = None
    #: Input sources, e.g. ``[{kind = "entsoe"}, {kind = "file", path = "..."}]``: each column
    #: comes from the first source that has it. Empty = the historic year in ``inputs_file``.
    sources: list[dict[str, Any]] = Field(default_factory=list)
    #: What the intra-quarter correction holds. ``value`` (the default): the batteries take
    #: the departure from the planned exchange where the plan's own value of stored energy
    #: says it pays (an unforeseen surplus is stored, not exported; a surplus that falls
    #: short is not bought to be stored; no stored energy is exported beyond the plan), and
    #: hold the limits as ``limits`` does (see :func:`vpp.control.dispatch.follow_value`).
    #: ``limits``: the batteries (then PV curtailment) step in only when the measured
    #: exchange goes past the connection's import or export limit; forecast errors inside
    #: the limits go to the grid. ``schedule``: the batteries hold the planned exchange, for
    #: sites whose deviations from a notified schedule are billed (balancing energy); it
    #: costs battery losses and wear on sites that pay only their energy (replaying the
    #: demo year: about 1 EUR a day).
    correction: Literal["limits", "schedule", "value"] = "value"
    #: Grid departures (from the plan, or past a limit) smaller than this are not
    #: corrected, W.
    correction_deadband_w: NonNegativeFloat = 5000.0
    #: Seconds between intra-quarter corrections.
    correction_interval_s: PositiveFloat = 60.0
    #: Between quarter hours, move the heat pump to the measured heat demand where the plan's
    #: heat pump falls short and it is cheaper than the boiler (or the store would overflow);
    #: needs the plant's heat meter (``network_th_w``), see :mod:`vpp.control.dispatch`.
    heat_correction: bool = True
    #: What the store may give when the measured heat demand exceeds the plan. ``spare``:
    #: besides the plan's discharge, what it holds above what the plan needs of it until its
    #: next planned recharge; the heat pump makes only what is left (see
    #: :func:`vpp.control.dispatch.store_spare_wh`). ``plan``: no more than the plan's
    #: discharge; the heat pump makes the rest (the rule before, docs/replay-world.md).
    heat_correction_rule: Literal["plan", "spare"] = "spare"
    #: Devices written at the same time during a dispatch.
    dispatch_concurrency: Annotated[int, AfterValidator(_between(1, 10000))] = 200
    #: A snapshot older than this many poll intervals is stale.
    stale_polls: Annotated[int, AfterValidator(_between(2, 100))] = 3

    @field_validator("sources")
    @classmethod
    def _finite_options(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The options are free-form (each source kind takes its own), so the model's
        # allow_inf_nan does not reach them.
        bad = [
            f"{where} must be a finite number, got {value}"
            for i, config in enumerate(v)
            for where, value in _floats(config, f"[{i}]")
            if not math.isfinite(value)
        ]
        if bad:
            raise ValueError("; ".join(bad))
        return v

    @field_validator("snapshot_retention_days")
    @classmethod
    def _snapshots_within_retention(cls, v: float | None, info: ValidationInfo) -> float | None:
        days = info.data.get("retention_days")
        if v is not None and days is not None and v > days:
            raise ValueError(f"{v:g} days is longer than run.retention_days ({days:g})")
        return v


class RelayContacts(_Model):
    """Where a control box shows its relay contacts: bit addresses in ``table`` (a closed
    contact reads 1). None: the contact is not wired."""

    #: ``discrete_inputs`` (function code 2) or ``coils`` (function code 1).
    table: Literal["discrete_inputs", "coils"] = "discrete_inputs"
    #: Contact of the §9 EEG stage 100 % (no limit). Of the wired stage contacts exactly one
    #: is closed; without a 100 % contact, none closed means 100 %.
    feed_in_100: RegisterAddress | None = 0
    #: Contact of the stage 60 %: feed-in at most 60 % of each inverter's rating.
    feed_in_60: RegisterAddress | None = 1
    #: Contact of the stage 30 %.
    feed_in_30: RegisterAddress | None = 2
    #: Contact of the stage 0 % (no feed-in; an inverter is held at its ``min_limit_pct``).
    feed_in_0: RegisterAddress | None = 3
    #: §14a EnWG dimming contact: closed = dim the controllable consumers to their floor.
    dim_14a: RegisterAddress | None = 4


class ControlBoxSource(_Model):
    """A grid operator's control box or ripple-control receiver read over Modbus TCP: relay
    contacts, a heartbeat counter and, optionally, the feed-in limit as a register."""

    #: Name of the source in events and reports (not a device id).
    id: Identifier
    #: The kind of source; control boxes on Modbus for now.
    kind: Literal["control_box"] = "control_box"
    #: Where the box answers Modbus TCP.
    modbus: ModbusEndpoint
    #: Where the box shows its relay contacts.
    relays: RelayContacts = RelayContacts()
    #: Holding register with a counter the box advances while it is alive; None: the box
    #: counts as alive while it answers with a valid reading.
    heartbeat_register: RegisterAddress | None = 0
    #: Holding register with the feed-in limit in % (0..100), read besides the relays;
    #: None: the relays alone.
    feed_in_pct_register: RegisterAddress | None = None
    #: Seconds without a valid reading and a moving heartbeat after which the box counts as
    #: silent and its devices go to the failsafe limits (120 s as the EEBus LPC heartbeat).
    heartbeat_timeout_s: PositiveFloat = 120.0
    #: Feed-in limit of this box's §9 EEG inverters while it is silent, % of their rating.
    failsafe_feed_in_pct: Pct = 60.0
    #: Consumption limit of this box's §14a consumers while it is silent: W per device
    #: under ``direct`` control, for all of them under ``ems`` (never below the §14a floor).
    failsafe_consumption_w: NonNegativeFloat = 4200.0
    #: How the §14a dim reaches the consumers: ``direct`` (each to its own floor) or ``ems``
    #: (this controller as the energy-management system behind one connection: one floor
    #: for all of them, by the several-device formula of BK6-22-300).
    enwg_14a_control: Literal["direct", "ems"] = "direct"
    #: Device ids this box acts on; empty: every §9 inverter and §14a consumer of the site.
    devices: list[Identifier] = Field(default_factory=list)


def _vtn_url(v: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", v):
        raise ValueError(f"must be an http:// or https:// URL, got {v!r}")
    return v.rstrip("/")


class OpenAdrSource(_Model):
    """An OpenADR 2.0b VTN of the grid operator or an aggregator, polled by this controller
    as a VEN (``openleadr``). Its events become signals (``vpp.signals.openadr``)."""

    #: Name of the source in events and reports (not a device id).
    id: Identifier
    #: The VTN's base URL, e.g. ``https://vtn.example/OpenADR2/Simple/2.0b``.
    vtn_url: Annotated[str, AfterValidator(_vtn_url)]
    #: This VEN's name at the VTN.
    ven_name: Annotated[str, Field(min_length=1, max_length=64)] = "vpp"
    #: The VEN id the VTN knows this controller by; None: the VTN assigns one.
    ven_id: str | None = None
    #: Seconds between two polls of the VTN (the signals job runs more often, for the
    #: control boxes; a VTN asks for 10 s or more).
    poll_interval_s: PositiveFloat = 10.0
    #: Seconds without a successful poll of the VTN after which its devices go to the
    #: failsafe limits.
    heartbeat_timeout_s: PositiveFloat = 120.0
    #: Feed-in limit of this source's §9 EEG inverters while the VTN is unreachable, %.
    failsafe_feed_in_pct: Pct = 60.0
    #: Consumption limit of this source's §14a consumers while the VTN is unreachable [W].
    failsafe_consumption_w: NonNegativeFloat = 4200.0
    #: As for a control box: ``direct`` (each consumer to its floor) or ``ems``.
    enwg_14a_control: Literal["direct", "ems"] = "direct"
    #: Device ids the VTN's events act on (events may narrow it by resource or feeder);
    #: empty: every device of the site a rule applies to.
    devices: list[Identifier] = Field(default_factory=list)


class SignalSettings(_Model):
    """Grid-operator signals (§9 EEG feed-in stages, §14a EnWG dimming, import and export
    caps): where they come from and how often they are read."""

    #: Signal sources, e.g. ``[[signals.sources]]`` with ``id``, ``modbus`` and the relay
    #: addresses of a control box.
    sources: list[ControlBoxSource] = Field(default_factory=list)
    #: OpenADR 2.0b VTNs, e.g. ``[[signals.openadr]]`` with ``id`` and ``vtn_url``.
    openadr: list[OpenAdrSource] = Field(default_factory=list)
    #: Seconds between two reads of the control boxes; a change is enforced at that read,
    #: so this is most of the time from a relay flip to the devices following it. A box
    #: answers one request of bits and one of registers, so once a second costs nothing.
    poll_interval_s: PositiveFloat = 1.0

    @property
    def any_source(self) -> bool:
        """Whether any signal source (control box or VTN) is configured."""
        return bool(self.sources or self.openadr)


class Site(_Model):
    """A whole site: everything the controller, the optimizer and the simulator need."""

    site: SiteInfo
    grid: GridConnection
    heat: HeatSystem = HeatSystem()
    economics: Economics = Economics()
    optimizer: OptimizerSettings = OptimizerSettings()
    forecast: ForecastConfig = ForecastConfig()
    poll: PollSettings = PollSettings()
    run: RunSettings = RunSettings()
    devices: list[Device] = Field(default_factory=list)
    signals: SignalSettings = SignalSettings()
    #: Devices by id (first of a duplicated id, which validation refuses anyway).
    _by_id: dict[str, Any] = PrivateAttr(default_factory=dict)
    #: Enabled devices by kind, with the device list they were taken from.
    _kinds: tuple[list[Any], int, dict[DeviceKind, list[Any]]] | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        by_id: dict[str, Any] = {}
        for d in self.devices:
            by_id.setdefault(d.id, d)
        self._by_id = by_id

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Site:
        if info.context and info.context.get(_REFERENCES_CHECKED_BY_CALLER):
            return self  # parse_site checks them itself, together with the field errors
        problems = _reference_problems(_model_refs(self), self.grid.meter)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("signals")
    @classmethod
    def _signal_devices(cls, v: SignalSettings, info: ValidationInfo) -> SignalSettings:
        devices = info.data.get("devices")
        if devices is None:
            return v  # the devices are wrong themselves and reported as such
        kinds = {d.id: d.kind for d in devices}
        takes = (DeviceKind.PV, DeviceKind.BATTERY, DeviceKind.HEAT_PUMP)
        problems = []
        seen: set[str] = set()
        listed: list[tuple[str, int, ControlBoxSource | OpenAdrSource]]
        listed = [("sources", n, s) for n, s in enumerate(v.sources)]
        listed += [("openadr", n, s) for n, s in enumerate(v.openadr)]
        for table, n, source in listed:
            if source.id in seen or source.id in kinds:
                problems.append(f"{table}[{n}].id: {source.id!r} is already used")
            seen.add(source.id)
            for ident in source.devices:
                if ident not in kinds:
                    problems.append(f"{table}[{source.id}].devices: no device {ident!r}")
                elif kinds[ident] not in takes:
                    problems.append(
                        f"{table}[{source.id}].devices: {ident!r} is a "
                        f"{kinds[ident].value}, which takes no grid signal"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return v

    def of_kind(self, kind: DeviceKind) -> list[Any]:
        """The enabled devices of ``kind``, in file order (a new list each call; the
        grouping is kept per device list, which a copy with other devices replaces)."""
        private = self.__pydantic_private__
        cached = private.get("_kinds") if private else None
        if cached is None or cached[0] is not self.devices or cached[1] != len(self.devices):
            groups: dict[DeviceKind, list[Any]] = {}
            for d in self.devices:
                if d.enabled:
                    groups.setdefault(d.kind, []).append(d)
            cached = (self.devices, len(self.devices), groups)
            self._kinds = cached
        return list(cached[2].get(kind, ()))

    @property
    def pv(self) -> list[PvDevice]:
        return self.of_kind(DeviceKind.PV)

    @property
    def batteries(self) -> list[BatteryDevice]:
        return self.of_kind(DeviceKind.BATTERY)

    @property
    def heat_pump(self) -> HeatPumpDevice | None:
        found = self.of_kind(DeviceKind.HEAT_PUMP)
        return found[0] if found else None

    @property
    def datacentre(self) -> DatacentreDevice | None:
        found = self.of_kind(DeviceKind.DATACENTRE)
        return found[0] if found else None

    def device(self, device_id: str) -> Any:
        """The device ``device_id`` (a dict lookup; KeyError naming it otherwise)."""
        private = self.__pydantic_private__
        by_id = private.get("_by_id") if private else None
        if not by_id and self.devices:  # a site unpickled from a build without the index
            self.model_post_init(None)
            by_id = self._by_id
        try:
            return (by_id or {})[device_id]
        except KeyError:
            raise KeyError(f"no device {device_id!r} in site {self.site.name!r}") from None


def _floats(value: Any, where: str) -> Iterator[tuple[str, float]]:
    """Every float in a nested TOML value, with its path below ``where``."""
    if isinstance(value, float):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _floats(item, f"{where}[{n}]")


# --- loading: the schema above with the cross-references (vpp.core.site_refs) and the file
# reading and messages (vpp.core.site_load), which stand below it.

#: Validation context key: the caller checks the cross-references itself (see parse_site).
_REFERENCES_CHECKED_BY_CALLER = "references_checked_by_caller"


def _model_refs(site: Site) -> list[DeviceRef]:
    return [DeviceRef(n, d.id, d.kind.value, d.modbus) for n, d in enumerate(site.devices)]


def _raw_refs(data: Any) -> list[DeviceRef]:
    """The devices of an unvalidated site document, as far as they can be read."""
    devices = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(devices, list):
        return []
    refs = []
    for n, raw in enumerate(devices):
        if not isinstance(raw, dict):
            continue
        ident, kind, modbus = raw.get("id"), raw.get("kind"), raw.get("modbus")
        endpoint = None
        # A bad endpoint is reported with the device's own fields.
        with contextlib.suppress(ValidationError):
            endpoint = None if modbus is None else ModbusEndpoint.model_validate(modbus)
        refs.append(
            DeviceRef(
                n,
                ident if isinstance(ident, str) else None,
                str(kind) if isinstance(kind, str) else None,
                endpoint,
            )
        )
    return refs


def _reference_problems(
    refs: Sequence[DeviceRef], meter: str | None, offline: bool = False
) -> list[str]:
    return reference_problems(
        refs, meter, device_labels(refs), meter_kind=DeviceKind.METER.value, offline=offline
    )


def format_errors(exc: ValidationError, data: Any = None) -> list[str]:
    """One ``path: message`` line per error, paths as a user reads them in the TOML file.

    With the validated ``data``, devices are named by their id (:func:`device_labels`).
    """
    return error_lines(exc, device_labels(_raw_refs(data)), [k.value for k in DeviceKind])


def parse_site(data: dict[str, Any], source: str = "<site>", *, offline: bool = False) -> Site:
    """Validate a parsed TOML document; raise :class:`ConfigError` naming every bad field.

    Field errors and cross-references are reported together: the cross-references are
    checked from the document itself, whether its fields are valid or not. ``offline``: Modbus
    hosts that do not resolve here are accepted (see :func:`reference_problems`).
    """
    try:
        site = Site.model_validate(data, context={_REFERENCES_CHECKED_BY_CALLER: True})
    except ValidationError as exc:
        refs = _raw_refs(data)
        grid = data.get("grid") if isinstance(data, dict) else None
        meter = grid.get("meter") if isinstance(grid, dict) else None
        meter = meter if isinstance(meter, str) else None
        errors = format_errors(exc, data)
        errors += _reference_problems(refs, meter, offline)
        raise ConfigError(source, errors) from None
    problems = _reference_problems(_model_refs(site), site.grid.meter, offline)
    if problems:
        raise ConfigError(source, problems)
    return site


def read_site(path: str | Path, *, offline: bool = False) -> Site:
    """Read and validate a site TOML file (UTF-8, a byte-order mark is allowed).
    ``offline``: for commands that contact no device (see :func:`reference_problems`).

    Raises :class:`SiteFileError` for a file that cannot be read or parsed and
    :class:`ConfigError` for one that does not validate.
    """
    path = Path(path)
    return parse_site(read_document(path), str(path), offline=offline)
