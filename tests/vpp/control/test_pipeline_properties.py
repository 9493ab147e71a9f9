"""The whole pure setpoint pipeline under random snapshots, plan rows and caps: its output
never breaks an invariant.

Dispatch: ``setpoints_from_row`` -> ``check_setpoints`` -> ``guard_grid``; correction:
``corrections`` -> ``check_setpoints`` -> ``guard_grid``; both on the demo district and on
small random sites, with states of charge anywhere (window edges included), powers beyond the
ratings, meter readings from plausible to absurd, sites already past a limit, operator caps
and extra per-device bounds. Each output must pass :func:`vpp.control.invariants.violations`,
and the guard may only have moved a checked setpoint towards what its device does now.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

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
from tests.vpp.control.snapshots import T0
from vpp.control.dispatch import ExportAhead, corrections, setpoints_from_row
from vpp.control.envelope import Bound
from vpp.control.invariants import Limits, enforce, violations
from vpp.control.plausible import screen
from vpp.control.safety import (
    Setpoint,
    check_setpoints,
    current_value,
    guard_grid,
    measured_grid_w,
)
from vpp.core.site import (
    BatteryDevice,
    DeviceKind,
    HeatPumpDevice,
    PvDevice,
    Site,
    parse_site,
    read_site,
)
from vpp.testing.harness import DEMO

DEMO_SITE = read_site(DEMO)
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAN, INF = math.nan, math.inf


def between(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


# -- sites ----------------------------------------------------------------------------------


@st.composite
def small_sites(draw: st.DrawFn) -> Site:
    devices: list[dict[str, Any]] = []
    port = iter(range(20_000, 20_100))
    for i in range(draw(st.integers(0, 4))):
        devices.append(
            {
                "id": f"pv{i}",
                "kind": "pv",
                "rated_w": draw(between(300, 60_000)),
                "min_limit_pct": draw(between(1, 40)),
                "modbus": {"port": next(port)},
            }
        )
    for i in range(draw(st.integers(0, 4))):
        lo = draw(between(0, 60))
        devices.append(
            {
                "id": f"bat{i}",
                "kind": "battery",
                "capacity_wh": draw(between(500, 60_000)),
                "max_charge_w": draw(between(100, 30_000)),
                "max_discharge_w": draw(between(100, 30_000)),
                "charge_efficiency": draw(between(0.5, 1.0)),
                "discharge_efficiency": draw(between(0.5, 1.0)),
                "soc_min_pct": lo,
                "soc_max_pct": draw(between(lo + 1, 100)),
                "modbus": {"port": next(port)},
            }
        )
    if draw(st.booleans()):
        devices.append(
            {
                "id": "hp",
                "kind": "heat_pump",
                "max_el_w": draw(between(1_000, 300_000)),
                "modbus": {"port": next(port)},
            }
        )
        devices.append(
            {
                "id": "dc",
                "kind": "datacentre",
                "it_power_w": draw(between(1e4, 1e6)),
                "modbus": {"port": next(port)},
            }
        )
    meter = draw(st.booleans()) or draw(st.booleans())
    if meter:
        devices.append({"id": "meter", "kind": "meter", "modbus": {"port": next(port)}})
    return parse_site(
        {
            "site": {"name": "random"},
            "grid": {
                "import_limit_w": draw(between(1_000, 1e6)),
                "export_limit_w": draw(between(1_000, 1e6)),
                "meter": "meter" if meter else None,
                "base_load_peak_w": draw(between(0, 2e5)),
            },
            "run": {
                "correction": draw(st.sampled_from(["limits", "schedule", "value"])),
                "correction_deadband_w": draw(st.sampled_from([0.0, 500.0, 5000.0])),
            },
            "devices": devices,
        }
    )


sites = st.one_of(st.just(DEMO_SITE), small_sites())


# -- values ---------------------------------------------------------------------------------


class Chooser:
    """Where the values come from: hypothesis draws (small sites: shrinkable), or a seeded
    generator (the 88-device demo district, one draw for the whole fleet)."""

    def __init__(self, draw: st.DrawFn, seeded: bool) -> None:
        self._draw = draw
        self._random = random.Random(draw(st.integers(0, 2**32 - 1))) if seeded else None

    def index(self, n: int) -> int:
        if self._random is not None:
            return self._random.randrange(n)
        return self._draw(st.integers(0, n - 1))

    def unit(self) -> float:
        if self._random is not None:
            return self._random.random()
        return self._draw(st.floats(0, 1))

    def pick(self, edges: list[float | None], *ranges: tuple[float, float]) -> float | None:
        """One of ``edges``, or a value uniform in one of ``ranges``, each option alike."""
        i = self.index(len(edges) + len(ranges))
        if i < len(edges):
            return edges[i]
        lo, hi = ranges[i - len(edges)]
        return lo + self.unit() * (hi - lo)

    def number(self, *ranges: tuple[float, float]) -> float:
        value = self.pick([], *ranges)
        assert value is not None
        return value


#: Values no device should report.
ODD: list[float | None] = [NAN, INF, -INF, 1e7, -1e7, 1e12]


def chooser(draw: st.DrawFn, site: Site) -> Chooser:
    return Chooser(draw, seeded=len(site.devices) > 20)


# -- snapshots ------------------------------------------------------------------------------


def battery_reading(c: Chooser, bat: BatteryDevice) -> BatteryReading:
    lo, hi, tiny = bat.soc_min_pct, bat.soc_max_pct, 1e-9
    soc = c.pick(
        [lo, hi, 0.0, 100.0, lo + tiny, lo - tiny, hi + tiny, hi - tiny, None, *ODD],
        (lo - 2, lo + 2),
        (hi - 2, hi + 2),
        (-20, 120),
        (-20, 120),
    )
    rating = max(bat.max_charge_w, bat.max_discharge_w)
    return BatteryReading(
        soc_pct=soc,
        power_w=c.pick([None, 0.0, *ODD], (-2 * bat.max_charge_w, 2 * bat.max_discharge_w)),
        capacity_wh=bat.capacity_wh,
        max_charge_w=c.pick([None, None, -1.0, 0.0], (0, 1.5 * rating)),
        max_discharge_w=c.pick([None, None, 0.0], (0, 1.5 * rating)),
    )


def pv_reading(c: Chooser, pv: PvDevice) -> PvReading:
    rated = pv.rated_w
    return PvReading(
        ac_power_w=c.pick([None, 0.0, rated, *ODD], (-0.1 * rated, 1.5 * rated), (0, rated)),
        energy_wh=0.0,
        dc_power_w=None,
        status=None,
        rated_w=c.pick([rated, rated, rated, None, 0.0, NAN, 0.5 * rated]),
        limit_pct=c.pick([None, 100.0, pv.min_limit_pct], (0, 100)),
    )


def heat_pump_reading(c: Chooser, hp: HeatPumpDevice) -> HeatPumpReading:
    el = c.pick([None, 0.0, hp.max_el_w, *ODD], (-0.1 * hp.max_el_w, 1.5 * hp.max_el_w))
    return HeatPumpReading(el, el, None, None, None)


def meter_values(site: Site) -> st.SearchStrategy[float | None]:
    imp, exp = site.grid.import_limit_w, site.grid.export_limit_w
    return st.one_of(
        between(-1.5 * exp, 1.5 * imp),
        st.sampled_from([imp, -exp, imp + 1, -exp - 1, imp - 1, -exp + 1]),
        between(imp, 3 * imp),  # already past the import limit
        between(-3 * exp, -exp),  # already past the export limit
        st.sampled_from([-4.9e6, 4.9e6, 1e12, -1e12]),  # absurd
        st.none(),
        st.sampled_from(ODD),
    )


HEALTH = [
    CommsHealth(last_success=T0),
    CommsHealth(last_success=T0),
    CommsHealth(last_success=T0),
    CommsHealth(last_success=T0, consecutive_failures=2, last_error="timeout"),
    None,  # never read: not in the snapshot
]


@st.composite
def snapshots(draw: st.DrawFn, site: Site) -> Snapshot:
    c = chooser(draw, site)
    devices: dict[str, DeviceState] = {}
    for device in site.devices:
        if device.id == site.grid.meter:  # mostly there: the guard and corrections need it
            health = HEALTH[0] if c.index(8) else HEALTH[3]
        else:
            health = HEALTH[c.index(len(HEALTH))]
        if health is None:
            continue
        reading: Reading | None
        if isinstance(device, BatteryDevice):
            reading = battery_reading(c, device)
        elif isinstance(device, PvDevice):
            reading = pv_reading(c, device)
        elif isinstance(device, HeatPumpDevice):
            reading = heat_pump_reading(c, device)
        elif device.id == site.grid.meter:
            grid = draw(meter_values(site))
            reading = None if grid is None else MeterReading(grid, None, None)
        else:
            continue
        devices[device.id] = DeviceState(device.id, device.kind.value, reading, health, T0)
    return Snapshot(T0, devices)


# -- plan rows, active setpoints, caps, bounds ----------------------------------------------


@st.composite
def rows(draw: st.DrawFn, site: Site) -> pd.Series:
    c = chooser(draw, site)
    imp, exp = site.grid.import_limit_w, site.grid.export_limit_w
    values: dict[str, float | None] = {
        "grid_import_w": c.number((0, 2 * imp)),
        "grid_export_w": c.number((0, 2 * exp)),
    }
    for bat in site.batteries:
        if c.index(10):  # a device the plan left out, now and then
            span = (-2 * bat.max_charge_w, 2 * bat.max_discharge_w)
            values[f"{bat.id}.battery_w"] = c.pick([0.0, *ODD], span, span)
    for pv in site.pv:
        span = (-0.1 * pv.rated_w, 1.5 * pv.rated_w)
        values[f"{pv.id}.pv_limit_w"] = c.pick([0.0, pv.rated_w, *ODD], span, span)
    if site.heat_pump is not None:
        max_el = site.heat_pump.max_el_w
        values["heat_pump_el_w"] = c.pick([0.0, max_el, *ODD], (-max_el, 2 * max_el))
    # What the "value" correction prices the departure with: the plan's value of stored
    # energy (missing in a fallback plan) and the step's prices, odd ones included.
    values["value_stored_eur_per_mwh"] = c.pick([0.0, *ODD], (-100.0, 600.0))
    values["price_import_eur_per_mwh"] = c.pick([0.0, *ODD], (-500.0, 600.0))
    values["price_export_eur_per_mwh"] = c.pick([0.0, *ODD], (-500.0, 600.0))
    values["co2_g_per_kwh"] = c.pick([0.0, *ODD], (0.0, 1000.0))
    return pd.Series({k: NAN if v is None else v for k, v in values.items()})


@st.composite
def active_setpoints(draw: st.DrawFn, site: Site) -> dict[str, float]:
    """The battery setpoints in force: most batteries, anywhere in twice their ratings."""
    c = chooser(draw, site)
    return {
        b.id: c.number((-2 * b.max_charge_w, 2 * b.max_discharge_w))
        for b in site.batteries
        if c.index(5)
    }


@st.composite
def limits(draw: st.DrawFn, site: Site) -> Limits:
    """The connection's limits or tighter operator caps (down to 0), and sometimes
    grid-operator bounds on some devices (§14a-style caps on charging and the heat pump,
    §9-style caps on PV, and odd ones that contradict the device's own envelope)."""
    imp, exp = site.grid.import_limit_w, site.grid.export_limit_w
    bounds: dict[str, list[Bound]] = {}
    if draw(st.booleans()):
        for bat in site.batteries[:6]:
            if draw(st.booleans()):
                lo = draw(between(-2 * bat.max_charge_w, 2 * bat.max_discharge_w))
                hi = draw(between(lo, 2 * bat.max_discharge_w + 1))
                bounds[bat.id] = [Bound(lo, hi, "grid operator")]
        for pv in site.pv[:6]:
            if draw(st.booleans()):
                cap = draw(between(0, pv.rated_w))
                bounds[pv.id] = [Bound(-INF, cap, "feed-in cap")]
        hp = site.heat_pump
        if hp is not None and draw(st.booleans()):
            bounds[hp.id] = [Bound(-INF, draw(between(0, hp.max_el_w)), "§14a")]
    return Limits(
        draw(st.one_of(st.just(imp), between(0, imp))),
        draw(st.one_of(st.just(exp), between(0, exp))),
        bounds,
    )


HORIZONS = st.one_of(st.sampled_from([0.0, 1.0, 60.0, 300.0, 900.0]), between(0, 900))


# -- the properties -------------------------------------------------------------------------


def assert_guard_only_holds_back(
    site: Site, snap: Snapshot, checked: list[Setpoint], guarded: list[Setpoint]
) -> None:
    """The guard moved each setpoint only towards what its device does now, inside the
    envelope the check attached, and by no more than the check asked."""
    assert [s.device_id for s in guarded] == [s.device_id for s in checked]
    for c, g in zip(checked, guarded, strict=True):
        env = c.envelope
        assert env is not None
        assert env.contains(g.power_w), (c, g)
        now = current_value(site, snap, c.device_id)
        if now is None:
            assert g.power_w == c.power_w
            continue
        hold = env.clip(now)
        assert min(c.power_w, hold) - 1e-9 <= g.power_w <= max(c.power_w, hold) + 1e-9, (c, g, now)
        assert abs(g.power_w - now) <= abs(c.power_w - now) + 1e-9, (c, g, now)


def through_the_pipeline(
    site: Site, snap: Snapshot, asked: list[Setpoint], lim: Limits, horizon_s: float
) -> list[Setpoint]:
    checked = check_setpoints(site, snap, asked, horizon_s, lim.bounds)
    guarded = guard_grid(site, snap, checked, lim.import_w, lim.export_w)
    grid = measured_grid_w(site, snap)
    if grid is not None and not -lim.export_w <= grid <= lim.import_w:
        event("the site is past a grid limit")
    event("the guard held back" if guarded != checked else "the guard left the batch alone")
    assert_guard_only_holds_back(site, snap, checked, guarded)
    assert violations(site, snap, guarded, lim, horizon_s) == []
    assert enforce(site, snap, guarded, lim, horizon_s).passed == guarded
    return guarded


@PROPERTY
@given(st.data(), sites)
def test_dispatch_output_never_breaks_an_invariant(data: st.DataObject, site: Site) -> None:
    snap = data.draw(snapshots(site), "snapshot")
    row = data.draw(rows(site), "row")
    lim = data.draw(limits(site), "limits")
    horizon_s = data.draw(HORIZONS, "horizon_s")
    online = {d.id for d in snap.online()}
    through_the_pipeline(site, snap, setpoints_from_row(site, row, online), lim, horizon_s)


@PROPERTY
@given(st.data(), sites)
def test_staged_output_never_breaks_an_invariant(data: st.DataObject, site: Site) -> None:
    """What the plan job stages ahead (:func:`vpp.control.cycle.staged_setpoints`): the
    batteries of a row alone, checked until the end of the next quarter hour."""
    snap = data.draw(snapshots(site), "snapshot")
    row = data.draw(rows(site), "row")
    lim = data.draw(limits(site), "limits")
    horizon_s = data.draw(between(900, 1200), "horizon_s")
    online = {d.id for d in snap.online()}
    batteries = [
        sp for sp in setpoints_from_row(site, row, online) if sp.kind is DeviceKind.BATTERY
    ]
    through_the_pipeline(site, snap, batteries, lim, horizon_s)


@st.composite
def ahead(draw: st.DrawFn, site: Site) -> ExportAhead | None:
    """What the plan does with its surplus over the next hours (``run.store_surplus_first``),
    odd values included; None now and then (the setting off, no plan)."""
    c = chooser(draw, site)
    if not c.index(4):
        return None
    export, kept = (c.pick([0.0, *ODD], (0.0, 1e7)) for _ in range(2))
    return ExportAhead(NAN if export is None else export, NAN if kept is None else kept)


@PROPERTY
@given(st.data(), sites)
def test_correction_output_never_breaks_an_invariant(data: st.DataObject, site: Site) -> None:
    snap = data.draw(snapshots(site), "snapshot")
    row = data.draw(rows(site), "row")
    lim = data.draw(limits(site), "limits")
    horizon_s = data.draw(HORIZONS, "horizon_s")
    active = data.draw(active_setpoints(site), "active")
    later = data.draw(ahead(site), "ahead")
    proposed = corrections(
        site, snap, row, active, lim.import_w, lim.export_w, horizon_s, ahead=later
    )
    through_the_pipeline(site, snap, proposed, lim, horizon_s)


@PROPERTY
@given(st.data(), sites)
def test_a_screened_snapshot_holds_control_when_the_meter_is_suspect(
    data: st.DataObject, site: Site
) -> None:
    snap = data.draw(snapshots(site), "snapshot")
    row = data.draw(rows(site), "row")
    lim = data.draw(limits(site), "limits")
    active = data.draw(active_setpoints(site), "active")
    screened = screen(site, snap)
    clean = screened.snapshot
    online = {d.id for d in clean.online()}
    assert online.isdisjoint(screened.quarantined)
    dispatched = setpoints_from_row(site, row, online)
    guarded = through_the_pipeline(site, clean, dispatched, lim, 900)
    corrected = corrections(site, clean, row, active, lim.import_w, lim.export_w, 60)
    through_the_pipeline(site, clean, corrected, lim, 60)
    if site.grid.meter in screened.quarantined or measured_grid_w(site, clean) is None:
        event("no usable grid reading")
        # No grid reading: no correction, and the guard leaves the plan's setpoints alone.
        assert corrected == []
        assert guarded == check_setpoints(site, clean, dispatched, 900, lim.bounds)
