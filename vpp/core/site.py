"""Site configuration: TOML files validated once, at load, with pydantic.

This module is the one source of defaults and units for everything a site is made of. Every
field carries its unit in its name (``power_w``, ``capacity_wh``, ``temp_c``...). A bad file
fails fast with :class:`ConfigError`, whose message names each bad field by its path, e.g.
``devices[pv-004].modbus.port: must be 1..65535``. Devices are named by their id, or by
their position in ``devices`` when the id is missing, malformed, all digits or not unique.
Every problem is reported at once: field errors, cross-references (duplicate ids, two devices
on one Modbus endpoint, the grid meter) and files that cannot be read.

The schema is here, its devices in :mod:`vpp.core.site_devices`, its grid-operator signal
sources in :mod:`vpp.core.site_signals` and the constrained types all three use in
:mod:`vpp.core.site_types` (import them from here); :func:`parse_site` and
:func:`read_site` at the end bind it to the cross-reference checks
(:mod:`vpp.core.site_refs`) and to reading files and wording errors
(:mod:`vpp.core.site_load`), two modules below this one.

Numbers must be finite (``inf`` and ``nan`` are valid TOML but no valid rating), the time zone
must be a known IANA zone, and every Modbus host must resolve: two devices whose hosts resolve
to the same address (``localhost`` and ``127.0.0.1``) on the same port and unit id are one
endpoint. Hosts are resolved with :func:`socket.getaddrinfo` only; nothing is contacted.

The module imports nothing from ``adapters`` or ``optimizer``: both may import the types here.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vpp.core.site_devices import BatteryDevice as BatteryDevice
from vpp.core.site_devices import DatacentreDevice as DatacentreDevice
from vpp.core.site_devices import Device
from vpp.core.site_devices import DeviceKind as DeviceKind
from vpp.core.site_devices import HeatPumpDevice as HeatPumpDevice
from vpp.core.site_devices import MeterDevice as MeterDevice
from vpp.core.site_devices import ModbusEndpoint as ModbusEndpoint
from vpp.core.site_devices import PvDevice as PvDevice
from vpp.core.site_devices import SimOptions as SimOptions
from vpp.core.site_load import ConfigError as ConfigError
from vpp.core.site_load import SiteFileError as SiteFileError
from vpp.core.site_load import error_lines, read_document
from vpp.core.site_refs import DeviceRef
from vpp.core.site_refs import device_labels as device_labels
from vpp.core.site_refs import reference_problems as reference_problems
from vpp.core.site_refs import resolve_host as resolve_host
from vpp.core.site_signals import ControlBoxSource as ControlBoxSource
from vpp.core.site_signals import OpenAdrSource as OpenAdrSource
from vpp.core.site_signals import RelayContacts as RelayContacts
from vpp.core.site_signals import SignalSettings
from vpp.core.site_types import (
    Efficiency,
    Identifier,
    NonNegativeFloat,
    Pct,
    Port,
    PositiveFloat,
    SiteModel,
    TempC,
    between,
)


class SiteInfo(SiteModel):
    name: str
    #: IANA time zone of the site's local days (reports, day-ahead prices, replay days).
    timezone: str = "Europe/Berlin"
    latitude_deg: Annotated[float, AfterValidator(between(-90.0, 90.0))] = 51.34
    longitude_deg: Annotated[float, AfterValidator(between(-180.0, 180.0))] = 12.37

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


class GridConnection(SiteModel):
    """The district's connection to the distribution grid."""

    import_limit_w: PositiveFloat
    export_limit_w: PositiveFloat
    #: Device id of the grid-connection meter.
    meter: Identifier | None = None
    #: Share of each grid limit that plans keep free, so that forecast errors between two
    #: corrections do not push the measured exchange past the limit.
    limit_margin_pct: Annotated[float, AfterValidator(between(0.0, 50.0))] = 3.0
    #: ``fixed``: the margin is ``limit_margin_pct`` of each limit. ``spread``: with learned
    #: forecasts, each quarter hour's margin is the spread of the net load (base load less
    #: PV) between its P50 and P90 (import) or P10 (export), within ``limit_margin_min_pct``
    #: and ``limit_margin_max_pct`` of the limit (vpp.control.cycle.plan_margins); quarter
    #: hours without learned quantiles keep the fixed margin.
    limit_margin_from: Literal["fixed", "spread"] = "fixed"
    limit_margin_min_pct: Annotated[float, AfterValidator(between(0.0, 50.0))] = 0.5
    limit_margin_max_pct: Annotated[float, AfterValidator(between(0.0, 50.0))] = 10.0
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


class HeatSystem(SiteModel):
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


class Economics(SiteModel):
    co2_price_eur_per_t: NonNegativeFloat = 80.0
    gas_co2_kg_per_mwh: NonNegativeFloat = 201.0


class OptimizerSettings(SiteModel):
    horizon_h: Annotated[int, AfterValidator(between(1, 72))] = 36
    step_min: Literal[5, 15, 30, 60] = 15
    time_limit_s: PositiveFloat = 10.0
    #: "aggregated" plans clusters of similar devices; "device" plans each device.
    mode: Literal["aggregated", "device"] = "aggregated"
    milp: bool = False


class ForecastConfig(SiteModel):
    """Which forecasts the plans use (see vpp/forecast/ and vpp/learned.py)."""

    #: ``rules``: profile and persistence rules; ``learned``: LightGBM quantile forecasts
    #: (P10/P50/P90) of heat demand, base load and PV, refitted daily, the rules where
    #: less than ``min_train_days`` of history are known.
    method: Literal["rules", "learned"] = "rules"
    #: Days of history each day's learned models are fitted on.
    train_days: Annotated[int, AfterValidator(between(2, 365))] = 28
    #: Fewer known days than this: the rule forecasts are used.
    min_train_days: Annotated[int, AfterValidator(between(2, 365))] = 14
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
    weather_seed: Annotated[int, AfterValidator(between(0, 2**31 - 1))] = 2018
    #: Hours after the plan's horizon whose forecast heat demand, where the heat pump cannot
    #: meet it, the store keeps in reserve at the plan's end (optimizer/reserve.py; 0: off;
    #: only with a weather forecast).
    #: 72 h: the furthest that every usable issue (120 h, up to 9 h old) reaches past a
    #: 36 h horizon.
    reserve_lookahead_h: Annotated[int, AfterValidator(between(0, 72))] = 72
    #: The quantiles of the heat demand past the horizon the store reserve is made for
    #: (increasing, within 0.01..0.99): for each the issued temperature there at its ``1 -
    #: q`` quantile (the issue's error spread at its lead time, vpp/weather.py). The energy
    #: between the reserves of two neighbouring quantiles is valued at the chance it is
    #: needed (optimizer/reserve.py). ``[0.5]``: the forecast itself, worth the boiler's
    #: heat with a chance of 0.75.
    reserve_quantiles: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9, 0.97)

    @field_validator("reserve_quantiles")
    @classmethod
    def _quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not 1 <= len(value) <= 12:
            raise ValueError(f"give 1 to 12 quantiles, got {len(value)}")
        if any(not 0.01 <= q <= 0.99 for q in value):
            raise ValueError(f"quantiles must lie within 0.01..0.99, got {list(value)}")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"quantiles must increase, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _window(self) -> ForecastConfig:
        if self.min_train_days > self.train_days:
            raise ValueError(
                f"min_train_days ({self.min_train_days}) exceeds train_days ({self.train_days})"
            )
        return self


class PollSettings(SiteModel):
    interval_s: PositiveFloat = 10.0
    max_concurrency: Annotated[int, AfterValidator(between(1, 10000))] = 200
    #: Consecutive failures that open a device's circuit breaker.
    breaker_failures: Annotated[int, AfterValidator(between(1, 100))] = 3
    #: Seconds an open breaker waits before one trial request.
    breaker_reset_s: PositiveFloat = 30.0
    #: Revert timer written with every control: the device falls back to its own defaults
    #: if the controller goes silent this long.
    revert_s: Annotated[int, AfterValidator(between(10, 86400))] = 900


class RunSettings(SiteModel):
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
    backup_keep: Annotated[int, AfterValidator(between(1, 10000))] = 14
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
    #: With ``correction = "value"``: a surplus the plan exports is stored as well (not only
    #: one it did not foresee) where the energy would displace import (export price below
    #: the import price, CO2 included, times the batteries' round-trip efficiency) and the
    #: plan exports less over the next 8 hours than ``store_surplus_ahead_ratio`` times the
    #: batteries' room: the plan then counts on a later surplus to fill them, which its
    #: forecasts may overstate, and a shortfall is bought back at the import price. Where it
    #: exports more than that later on, the batteries fill anyway and its choice of when to
    #: export stands (see :func:`vpp.control.dispatch.follow_value`).
    store_surplus_first: bool = True
    #: The plan's export over the next 8 hours, as a multiple of the batteries' room, above
    #: which a planned export is left to the plan (``store_surplus_first``).
    store_surplus_ahead_ratio: PositiveFloat = 4.0
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
    #: With ``heat_correction``: where the data centre offers more waste heat than the plan
    #: counted on, the heat pump takes it into the store as far as the store has room until
    #: the next correction, where the plan's value of stored heat (the dual of the store's
    #: energy balance) exceeds what the heat pump's heat costs now (see
    #: :func:`vpp.control.dispatch.stored_waste_el_w`). Needs the data centre's meter.
    heat_store_waste: bool = True
    #: Devices written at the same time during a dispatch.
    dispatch_concurrency: Annotated[int, AfterValidator(between(1, 10000))] = 200
    #: A snapshot older than this many poll intervals is stale.
    stale_polls: Annotated[int, AfterValidator(between(2, 100))] = 3

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


class Site(SiteModel):
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
