"""Faults a review found on the demo site, as they happened there.

1. The grid guard undid the safety clamps: a battery whose state of charge allowed 976 W of
   discharge was held at the 3,800 W it was giving and written; with the site already past
   its import limit, a 3.8 kW battery was asked for -71,200 W.
"""

from __future__ import annotations

import pytest

from tests.vpp.control.harness import DEMO
from tests.vpp.control.snapshots import battery, heat_pump, snapshot
from vpp.control.safety import Setpoint, battery_window_w, check_setpoints, guard_grid
from vpp.core.site import BatteryDevice, DeviceKind, read_site

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
    assert checked[0].value == pytest.approx(976.0)
    out = guard_grid(SITE, snap, checked, IMPORT, EXPORT)
    # Stopping the extra discharge raises the import, but the state of charge comes first.
    assert out[0].value <= hi + 1e-6
    assert out[0].value == pytest.approx(976.0)


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
    out = {sp.device_id: sp.value for sp in guard_grid(SITE, snap, checked, IMPORT, EXPORT)}
    lo, hi = battery_window_w(BAT, reading, QUARTER_S)
    assert lo <= out[BAT.id] <= hi
    # The batch as a whole relieves the breach (880 kW -> 812.6 kW): nothing to hold back.
    assert out == {BAT.id: -3800.0, hp.id: 28_800.0}
