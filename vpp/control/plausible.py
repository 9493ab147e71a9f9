"""Plausibility of measurements: readings no real device can give are quarantined, not acted on.

A single wrong value must not steer the fleet: a grid meter reading -4.9 MW on a connection
rated for 500 kW of export would otherwise have the corrections charge every battery at full
power and curtail every inverter to its minimum, every minute. :func:`screen` is a pure
function the poll job calls on each new Snapshot::

    screened = screen(site, snapshot)   # -> Screened(snapshot, suspects)
    state.snapshot = screened.snapshot  # suspect devices are offline in it
    for s in screened.suspects: ...     # one alert event each (s.device_id, s.reason)

A suspect device stays in the screened snapshot with its reading (for the operator page) but
its health is marked offline: ``consecutive_failures`` at least 1 and ``last_error`` starting
with :data:`QUARANTINED` and saying why (:func:`is_quarantined` tells). Everything that
controls treats it as it treats a device that does not answer: no dispatch to it, no
correction from it; a quarantined grid meter means no grid reading, so the corrections of
:mod:`vpp.control.dispatch` and the grid guard of :mod:`vpp.control.safety` do nothing and the
devices hold the plan's setpoints.

What is suspect (factors are parameters of :func:`screen`, defaults below):

- any power or SoC that is not a finite number;
- a PV inverter's AC power outside ``-(f-1) .. f`` times its rating, ``f`` =
  :data:`DEVICE_FACTOR` (1.2);
- a battery's power beyond ``f`` times its charge or discharge rating, its SoC outside
  0..100 %;
- the heat pump's electric power outside ``-(f-1) .. f`` times ``max_el_w``;
- the grid meter beyond the physical bound of :func:`meter_bound_w`:
  :data:`METER_LIMIT_FACTOR` (1.5) times the larger of the import and export limits, plus
  everything installed behind the meter (:func:`installed_w`);
- the grid meter off the sum of its parts by more than the margin (:data:`PARTS_MARGIN_FACTOR`,
  0.5, times the larger grid limit). The parts: the base load (not measured: anywhere in
  0..``grid.base_load_peak_w``), the heat pump, the data centre's dry coolers (not measured:
  0..``dry_cooler_el_per_th * it_power_w * heat_recovery_ratio``), less PV and battery
  output; a device that is offline, quarantined or not read counts with its whole range.
  Only the meter is quarantined then: each part has passed its own check.

The physical bound on the meter is also applied where the grid reading is used
(:func:`vpp.control.safety.measured_grid_w`), so an absurd reading is ignored even in a
snapshot that was not screened.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

from adapters.snapshot import (
    BatteryReading,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Snapshot,
)
from vpp.core.site import (
    BatteryDevice,
    DatacentreDevice,
    HeatPumpDevice,
    PvDevice,
    Site,
)

#: A device reading beyond this many times its rating is suspect.
DEVICE_FACTOR = 1.2
#: The grid meter is suspect beyond this many times the larger grid limit, plus everything
#: installed behind it.
METER_LIMIT_FACTOR = 1.5
#: The grid meter is suspect when off the sum of its parts by more than this share of the
#: larger grid limit.
PARTS_MARGIN_FACTOR = 0.5
#: ``last_error`` of a quarantined device starts with this.
QUARANTINED = "quarantined: "


@dataclass(frozen=True, slots=True)
class Suspect:
    """A reading no real device can give: which device, which quantity, its value, the bound
    it crossed, and why it is suspect."""

    device_id: str
    quantity: str
    value: float
    bound: float
    reason: str


@dataclass(frozen=True, slots=True)
class Screened:
    """A snapshot with its suspect devices quarantined (offline), and the suspects."""

    snapshot: Snapshot
    suspects: tuple[Suspect, ...]

    @property
    def quarantined(self) -> set[str]:
        return {s.device_id for s in self.suspects}


#: installed_w per site (computed once; a site is immutable): id -> (site, value).
_INSTALLED: dict[int, tuple[Site, float]] = {}


def installed_w(site: Site) -> float:
    """Everything behind the grid meter at full power [W]: PV and battery ratings (the larger
    of charge and discharge), the heat pump, the peak base load and the dry coolers."""
    known = _INSTALLED.get(id(site))
    if known is not None and known[0] is site:
        return known[1]
    total = _installed_w(site)
    _INSTALLED[id(site)] = (site, total)
    return total


def _installed_w(site: Site) -> float:
    total = site.grid.base_load_peak_w
    for device in site.devices:
        if isinstance(device, PvDevice):
            total += device.rated_w
        elif isinstance(device, BatteryDevice):
            total += max(device.max_charge_w, device.max_discharge_w)
        elif isinstance(device, HeatPumpDevice):
            total += device.max_el_w
        elif isinstance(device, DatacentreDevice):
            total += dry_cooler_max_w(device)
    return total


def dry_cooler_max_w(device: DatacentreDevice) -> float:
    """The data centre's dry coolers at most [W]: all its waste heat rejected."""
    return device.dry_cooler_el_per_th * device.it_power_w * device.heat_recovery_ratio


def meter_bound_w(site: Site, factor: float = METER_LIMIT_FACTOR) -> float:
    """The largest grid power [W, either sign] the meter can plausibly read."""
    grid = site.grid
    return factor * max(grid.import_limit_w, grid.export_limit_w) + installed_w(site)


def meter_plausible(site: Site, power_w: float, factor: float = METER_LIMIT_FACTOR) -> bool:
    """Whether a grid reading is a finite number within :func:`meter_bound_w`."""
    return math.isfinite(power_w) and abs(power_w) <= meter_bound_w(site, factor)


def is_quarantined(state: DeviceState) -> bool:
    return (state.health.last_error or "").startswith(QUARANTINED)


def quarantine(state: DeviceState, reason: str) -> DeviceState:
    """``state`` marked offline, its ``last_error`` saying why; the reading stays."""
    health = replace(
        state.health,
        consecutive_failures=max(1, state.health.consecutive_failures),
        last_error=QUARANTINED + reason,
    )
    return replace(state, health=health)


def _outside(
    device_id: str, quantity: str, value: float | None, lo: float, hi: float, what: str
) -> Suspect | None:
    if value is None:
        return None
    if not math.isfinite(value):
        return Suspect(device_id, quantity, value, math.nan, f"{what} is not a finite number")
    if value > hi:
        return Suspect(device_id, quantity, value, hi, f"{what} {value:.0f} above {hi:.0f}")
    if value < lo:
        return Suspect(device_id, quantity, value, lo, f"{what} {value:.0f} below {lo:.0f}")
    return None


def device_suspects(site: Site, state: DeviceState, factor: float = DEVICE_FACTOR) -> list[Suspect]:
    """What is implausible in one device's reading against its own rating (see module doc)."""
    try:
        device = site.device(state.id)
    except KeyError:
        return []
    reading, i = state.reading, state.id
    found: list[Suspect | None] = []
    below = factor - 1.0  # share of the rating a reading may go the wrong way (noise)
    if isinstance(device, PvDevice) and isinstance(reading, PvReading):
        r, ac = device.rated_w, reading.ac_power_w
        found.append(_outside(i, "ac_power_w", ac, -below * r, factor * r, "PV power"))
    elif isinstance(device, BatteryDevice) and isinstance(reading, BatteryReading):
        lo, hi = -factor * device.max_charge_w, factor * device.max_discharge_w
        found.append(_outside(i, "power_w", reading.power_w, lo, hi, "battery power"))
        found.append(_outside(i, "soc_pct", reading.soc_pct, 0.0, 100.0, "state of charge %"))
    elif isinstance(device, HeatPumpDevice) and isinstance(reading, HeatPumpReading):
        m = device.max_el_w
        el = reading.el_power_w
        found.append(_outside(i, "el_power_w", el, -below * m, factor * m, "heat pump power"))
    elif isinstance(reading, MeterReading):
        found.append(_outside(i, "power_w", reading.power_w, -math.inf, math.inf, "meter power"))
    return [s for s in found if s is not None]


def parts_range_w(
    site: Site,
    snapshot: Snapshot,
    distrusted: Collection[str] = (),
    factor: float = DEVICE_FACTOR,
) -> tuple[float, float]:
    """(lowest, highest) grid power [W, > 0 import] the site's parts allow: measured values
    of the devices that are online and not ``distrusted``, whole ranges for the rest and for
    what is not measured (base load, dry coolers)."""
    lo = hi = 0.0
    hi += site.grid.base_load_peak_w
    for device in site.devices:
        state = snapshot.devices.get(device.id)
        known = state is not None and state.health.online and device.id not in distrusted
        reading = state.reading if known and state is not None else None
        if isinstance(device, PvDevice):
            out = reading.ac_power_w if isinstance(reading, PvReading) else None
            if out is not None:
                lo, hi = lo - out, hi - out
            else:
                lo -= factor * device.rated_w
        elif isinstance(device, BatteryDevice):
            p = reading.power_w if isinstance(reading, BatteryReading) else None
            if p is not None:
                lo, hi = lo - p, hi - p
            else:
                lo, hi = lo - factor * device.max_discharge_w, hi + factor * device.max_charge_w
        elif isinstance(device, HeatPumpDevice):
            el = reading.el_power_w if isinstance(reading, HeatPumpReading) else None
            if el is not None:
                lo, hi = lo + el, hi + el
            else:
                hi += factor * device.max_el_w
        elif isinstance(device, DatacentreDevice):
            hi += dry_cooler_max_w(device)
    return lo, hi


def screen(
    site: Site,
    snapshot: Snapshot,
    *,
    device_factor: float = DEVICE_FACTOR,
    meter_factor: float = METER_LIMIT_FACTOR,
    parts_margin_w: float | None = None,
) -> Screened:
    """``snapshot`` with every device whose reading is implausible quarantined, and why.

    parts_margin_w : how far [W] the grid meter may be off the sum of its parts; default
        :data:`PARTS_MARGIN_FACTOR` times the larger grid limit
    """
    suspects: list[Suspect] = []
    for state in snapshot.devices.values():
        if state.reading is not None:
            suspects += device_suspects(site, state, device_factor)
    meter_id = site.grid.meter
    meter = snapshot.devices.get(meter_id) if meter_id is not None else None
    grid_w = meter.reading.power_w if meter and isinstance(meter.reading, MeterReading) else None
    bad = {s.device_id for s in suspects}
    if meter_id is not None and grid_w is not None and meter_id not in bad:
        suspects += _meter_suspects(
            site, snapshot, meter_id, grid_w, bad, device_factor, meter_factor, parts_margin_w
        )
    if not suspects:
        return Screened(snapshot, ())
    devices = dict(snapshot.devices)
    reasons: dict[str, list[str]] = {}
    for s in suspects:
        reasons.setdefault(s.device_id, []).append(s.reason)
    for device_id, why in reasons.items():
        devices[device_id] = quarantine(devices[device_id], "; ".join(why))
    return Screened(replace(snapshot, devices=devices), tuple(suspects))


def _meter_suspects(
    site: Site,
    snapshot: Snapshot,
    meter_id: str,
    grid_w: float,
    bad: set[str],
    device_factor: float,
    meter_factor: float,
    parts_margin_w: float | None,
) -> list[Suspect]:
    bound = meter_bound_w(site, meter_factor)
    if abs(grid_w) > bound:
        edge = math.copysign(bound, grid_w)
        why = (
            f"grid meter {grid_w:.0f} W beyond the physical bound of {bound:.0f} W "
            f"({meter_factor:g} x the larger grid limit + everything installed)"
        )
        return [Suspect(meter_id, "power_w", grid_w, edge, why)]
    if parts_margin_w is None:
        grid = site.grid
        parts_margin_w = PARTS_MARGIN_FACTOR * max(grid.import_limit_w, grid.export_limit_w)
    lo, hi = parts_range_w(site, snapshot, bad, device_factor)
    if lo - parts_margin_w <= grid_w <= hi + parts_margin_w:
        return []
    edge = lo - parts_margin_w if grid_w < lo else hi + parts_margin_w
    why = (
        f"grid meter {grid_w:.0f} W off the sum of its parts ({lo:.0f}..{hi:.0f} W) "
        f"by more than {parts_margin_w:.0f} W"
    )
    return [Suspect(meter_id, "power_w", grid_w, edge, why)]
