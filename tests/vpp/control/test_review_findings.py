"""The two faults a review found on the demo site, as they happened there.

1. The grid guard undid the safety clamps: a battery whose state of charge allowed 976 W of
   discharge was held at the 3,800 W it was giving and written; with the site already past
   its import limit, a 3.8 kW battery was asked for -71,200 W.
2. One wrong meter value curtailed the fleet: the grid meter reading -4.9 MW (export limit
   500 kW) set every inverter to its minimum and every battery to full charge, every minute.
"""

from __future__ import annotations

import pandas as pd
import pytest

from adapters.snapshot import Reading, Snapshot
from tests.vpp.control.snapshots import battery, heat_pump, pv, snapshot
from vpp.control.dispatch import corrections, setpoints_from_row
from vpp.control.safety import Setpoint, battery_window_w, check_setpoints, guard_grid
from vpp.core.site import BatteryDevice, DeviceKind, read_site
from vpp.testing.harness import DEMO

SITE = read_site(DEMO)
IMPORT, EXPORT = SITE.grid.import_limit_w, SITE.grid.export_limit_w
BAT: BatteryDevice = SITE.device("bat-003")  # 7.5 kWh, 3.8 kW
QUARTER_S = 900.0


def soc_allowing(discharge_w: float) -> float:
    """The SoC [%] at which a quarter hour allows ``discharge_w`` of discharge."""
    energy_wh = discharge_w * QUARTER_S / 3600 / BAT.discharge_efficiency
    return BAT.soc_min_pct + 100 * energy_wh / BAT.capacity_wh


@pytest.mark.parametrize("grid_w", [IMPORT + 10_000.0, IMPORT - 1_000.0])
def test_guard_does_not_hold_a_battery_above_its_state_of_charge_window(grid_w: float) -> None:
    reading = battery(BAT, soc_allowing(976.0), power_w=3800.0)
    snap = snapshot(SITE, grid_w, {BAT.id: reading})
    _, hi = battery_window_w(BAT, reading, QUARTER_S)
    assert hi == pytest.approx(976.0)
    asked = [Setpoint(BAT.id, DeviceKind.BATTERY, 3800.0, 3800.0)]
    checked = check_setpoints(SITE, snap, asked, QUARTER_S)
    assert checked[0].power_w == pytest.approx(976.0)
    out = guard_grid(SITE, snap, checked, IMPORT, EXPORT)
    # Stopping the extra discharge raises the import, but the state of charge comes first.
    assert out[0].power_w <= hi + 1e-6
    assert out[0].power_w == pytest.approx(976.0)


def test_guard_never_scales_a_change_up_when_the_site_is_past_its_import_limit() -> None:
    hp = SITE.heat_pump
    assert hp is not None
    grid_w = IMPORT + 80_000.0
    reading = battery(BAT, 50.0, power_w=0.0)
    snap = snapshot(SITE, grid_w, {BAT.id: reading, hp.id: heat_pump(100_000.0)})
    asked = [
        Setpoint(BAT.id, DeviceKind.BATTERY, -3800.0, -3800.0),  # +3.8 kW import
        Setpoint(hp.id, DeviceKind.HEAT_PUMP, 28_800.0, 28_800.0),  # -71.2 kW import
    ]
    checked = check_setpoints(SITE, snap, asked, QUARTER_S)
    out = {sp.device_id: sp.power_w for sp in guard_grid(SITE, snap, checked, IMPORT, EXPORT)}
    lo, hi = battery_window_w(BAT, reading, QUARTER_S)
    assert lo <= out[BAT.id] <= hi
    # The batch as a whole relieves the breach (880 kW -> 812.6 kW): nothing to hold back.
    assert out == {BAT.id: -3800.0, hp.id: 28_800.0}


def demo_row() -> pd.Series:
    values = {"grid_import_w": 0.0, "grid_export_w": 200_000.0, "heat_pump_el_w": 50_000.0}
    values.update({f"{b.id}.battery_w": 1000.0 for b in SITE.batteries})
    values.update({f"{p.id}.pv_limit_w": p.rated_w for p in SITE.pv})
    return pd.Series(values)


def demo_snapshot(grid_w: float) -> tuple[dict[str, float], Snapshot]:
    """Batteries idle at 50 %, inverters at 60 % unlimited, heat pump at 50 kW."""
    hp = SITE.heat_pump
    assert hp is not None
    readings: dict[str, Reading] = {b.id: battery(b, 50.0) for b in SITE.batteries}
    readings.update({p.id: pv(p, 0.6) for p in SITE.pv})
    readings[hp.id] = heat_pump(50_000.0)
    active = {b.id: 0.0 for b in SITE.batteries}
    return active, snapshot(SITE, grid_w, readings)


def test_an_absurd_meter_reading_does_not_curtail_the_fleet() -> None:
    active, snap = demo_snapshot(-4_900_000.0)
    out = corrections(SITE, snap, demo_row(), active, IMPORT, EXPORT, 60.0)
    assert out == []


def test_an_absurd_meter_reading_does_not_freeze_the_dispatch() -> None:
    _, snap = demo_snapshot(-4_900_000.0)
    online = {d.id for d in snap.online()}
    checked = check_setpoints(SITE, snap, setpoints_from_row(SITE, demo_row(), online), QUARTER_S)
    assert guard_grid(SITE, snap, checked, IMPORT, EXPORT) == checked
