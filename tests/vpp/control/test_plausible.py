"""Plausibility of measurements: implausible readings are quarantined, and control holds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from adapters.bridge import ModbusBridge
from adapters.poll import FleetPoller
from adapters.sim.fleet import SimFleet
from adapters.snapshot import BatteryReading, HeatPumpReading, PvReading, Reading, Snapshot
from tests.vpp.control.snapshots import battery, heat_pump, pv, snapshot
from vpp.control.dispatch import corrections, setpoints_from_row
from vpp.control.plausible import (
    QUARANTINED,
    installed_w,
    is_quarantined,
    meter_bound_w,
    screen,
)
from vpp.control.safety import check_setpoints, guard_grid, measured_grid_w
from vpp.core.clock import ManualClock
from vpp.core.site import HeatPumpDevice, Site, read_site
from vpp.testing.harness import DEMO, small_site

SITE = read_site(DEMO)
IMPORT, EXPORT = SITE.grid.import_limit_w, SITE.grid.export_limit_w
_hp = SITE.heat_pump
assert _hp is not None
HP: HeatPumpDevice = _hp


def readings(pv_share: float = 0.6, hp_w: float = 50_000.0) -> dict[str, Reading]:
    out: dict[str, Reading] = {b.id: battery(b, 50.0) for b in SITE.batteries}
    out.update({p.id: pv(p, pv_share) for p in SITE.pv})
    out[HP.id] = heat_pump(hp_w)
    return out


def consistent_grid_w(pv_share: float, base_load_w: float = 200_000.0) -> float:
    return base_load_w + 50_000.0 - pv_share * sum(p.rated_w for p in SITE.pv)


def row() -> pd.Series:
    values = {"grid_import_w": 0.0, "grid_export_w": 200_000.0, "heat_pump_el_w": 50_000.0}
    values.update({f"{b.id}.battery_w": 0.0 for b in SITE.batteries})
    values.update({f"{p.id}.pv_limit_w": p.rated_w for p in SITE.pv})
    return pd.Series(values)


def test_a_consistent_snapshot_passes_unchanged() -> None:
    for share in (0.0, 0.6, 1.0):
        snap = snapshot(SITE, consistent_grid_w(share), readings(share))
        screened = screen(SITE, snap)
        assert screened.suspects == ()
        assert screened.snapshot is snap


def test_the_meter_bound_is_the_larger_limit_with_a_margin_plus_everything_installed() -> None:
    installed = (
        sum(p.rated_w for p in SITE.pv)
        + sum(max(b.max_charge_w, b.max_discharge_w) for b in SITE.batteries)
        + HP.max_el_w
        + SITE.grid.base_load_peak_w
        + 0.05 * 500_000 * 0.9  # dry coolers: the data centre's whole waste heat
    )
    assert installed_w(SITE) == pytest.approx(installed)
    assert meter_bound_w(SITE) == pytest.approx(1.5 * max(IMPORT, EXPORT) + installed)
    assert 4_900_000 > meter_bound_w(SITE) > 2 * max(IMPORT, EXPORT)


def test_a_meter_beyond_its_physical_bound_is_quarantined_and_control_holds() -> None:
    snap = snapshot(SITE, -4_900_000.0, readings())
    screened = screen(SITE, snap)
    [suspect] = screened.suspects
    meter = SITE.grid.meter
    assert meter is not None
    assert suspect.device_id == meter and suspect.value == -4_900_000.0
    assert suspect.bound == pytest.approx(-meter_bound_w(SITE))
    assert "physical bound" in suspect.reason
    state = screened.snapshot.devices[meter]
    assert not state.health.online and is_quarantined(state)
    assert state.reading == snap.devices[meter].reading  # kept for the operator page
    assert state.health.last_error is not None
    assert state.health.last_error.startswith(QUARANTINED)
    assert snap.devices[meter].health.online  # the input is not changed
    # No grid reading: no correction, no guard.
    assert measured_grid_w(SITE, screened.snapshot) is None
    active = {b.id: 0.0 for b in SITE.batteries}
    assert corrections(SITE, screened.snapshot, row(), active, IMPORT, EXPORT, 60.0) == []
    online = {d.id for d in screened.snapshot.online()}
    checked = check_setpoints(SITE, screened.snapshot, setpoints_from_row(SITE, row(), online), 900)
    assert guard_grid(SITE, screened.snapshot, checked, IMPORT, EXPORT) == checked


def test_a_meter_far_off_the_sum_of_its_parts_is_quarantined() -> None:
    # Night: no PV, batteries idle, heat pump 50 kW, base load at most 450 kW; the meter
    # shows 1 MW of export, within its physical bound but not what the parts can give.
    snap = snapshot(SITE, -1_000_000.0, readings(pv_share=0.0))
    assert abs(-1_000_000.0) < meter_bound_w(SITE)
    [suspect] = screen(SITE, snap).suspects
    assert suspect.device_id == SITE.grid.meter and "sum of its parts" in suspect.reason
    # A meter within the margin of the parts passes.
    near = snapshot(SITE, 50_000.0 - 0.4 * max(IMPORT, EXPORT) + 1.0, readings(pv_share=0.0))
    assert screen(SITE, near).suspects == ()
    assert screen(SITE, near, parts_margin_w=1000.0).suspects != ()


def test_devices_beyond_their_own_ratings_are_quarantined_and_not_dispatched() -> None:
    pv0, bat0, bat1 = SITE.pv[0], SITE.batteries[0], SITE.batteries[1]
    values = readings()
    values[pv0.id] = pv(pv0, 1.5)
    values[bat0.id] = battery(bat0, 130.0)
    values[bat1.id] = battery(bat1, 50.0, power_w=10 * bat1.max_discharge_w)
    values[HP.id] = HeatPumpReading(math.nan, None, None, None, None)
    grid = consistent_grid_w(0.6)
    screened = screen(SITE, snapshot(SITE, grid, values))
    reasons = {s.device_id: s.reason for s in screened.suspects}
    assert set(reasons) == {pv0.id, bat0.id, bat1.id, HP.id}
    assert "PV power" in reasons[pv0.id] and "state of charge" in reasons[bat0.id]
    assert "battery power" in reasons[bat1.id] and "not a finite number" in reasons[HP.id]
    # The meter, checked against the parts that remain, is fine.
    assert SITE.grid.meter not in reasons
    online = {d.id for d in screened.snapshot.online()}
    sent = {sp.device_id for sp in setpoints_from_row(SITE, row(), online)}
    assert sent.isdisjoint(reasons)


def test_offline_devices_count_with_their_whole_range() -> None:
    # Every inverter offline: the meter may show anything from no PV to all PV at full power.
    down = frozenset(p.id for p in SITE.pv)
    snap = snapshot(SITE, consistent_grid_w(1.0), readings(1.0), down=down)
    assert screen(SITE, snap).suspects == ()


async def poll_simulated(site: Site, start: datetime) -> Snapshot:
    """The simulated plant after three minutes of physics, as the poller reads it."""
    clock = ManualClock(start)
    async with (
        SimFleet(site, clock=clock, step_interval_s=None) as fleet,
        ModbusBridge(clock=lambda: clock.now().timestamp()) as bridge,
    ):
        poller = FleetPoller(site, bridge, clock)
        fleet.step(180)
        return await poller.poll()


@pytest.mark.parametrize(
    "start",
    [datetime(2026, 6, 21, 10, 0, tzinfo=UTC), datetime(2026, 1, 15, 1, 0, tzinfo=UTC)],
    ids=["june-noon", "january-night"],
)
async def test_a_simulated_plant_is_plausible(start: datetime) -> None:
    site = small_site()
    snap = await poll_simulated(site, start)
    assert not snap.offline(), [d.health.last_error for d in snap.offline()]
    assert isinstance(snap.devices[site.pv[0].id].reading, PvReading)
    assert isinstance(snap.devices[site.batteries[0].id].reading, BatteryReading)
    assert screen(site, snap).suspects == ()
