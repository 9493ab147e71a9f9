from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    DeviceState,
    MeterReading,
    PvReading,
    Snapshot,
)
from vpp.control.safety import (
    Setpoint,
    battery_window_w,
    check_setpoints,
    grid_limits_w,
    guard_grid,
)
from vpp.control.state import OperatorCap
from vpp.core.site import BatteryDevice, DeviceKind
from vpp.testing.harness import small_site

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
OK = CommsHealth(last_success=T0)
SITE = small_site()
BAT: BatteryDevice = SITE.batteries[0]


def bat_reading(soc: float, power: float = 0.0) -> BatteryReading:
    return BatteryReading(
        soc_pct=soc,
        power_w=power,
        capacity_wh=BAT.capacity_wh,
        max_charge_w=BAT.max_charge_w,
        max_discharge_w=BAT.max_discharge_w,
    )


def snapshot(grid_w: float, **readings: object) -> Snapshot:
    devices = {
        SITE.grid.meter: DeviceState(
            SITE.grid.meter, "meter", MeterReading(grid_w, 0.0, 0.0), OK, T0
        )
    }
    for device_id, reading in readings.items():
        kind = SITE.device(device_id).kind.value
        devices[device_id] = DeviceState(device_id, kind, reading, OK, T0)  # type: ignore[arg-type]
    return Snapshot(T0, devices)


def test_battery_window_follows_ratings_and_state_of_charge() -> None:
    lo, hi = battery_window_w(BAT, bat_reading(50), 900)
    assert (lo, hi) == (-BAT.max_charge_w, BAT.max_discharge_w)
    # 1 % above the floor: a quarter hour may discharge at most that energy, times efficiency.
    soc = BAT.soc_min_pct + 1
    _, hi = battery_window_w(BAT, bat_reading(soc), 900)
    assert hi == pytest.approx(0.01 * BAT.capacity_wh * BAT.discharge_efficiency / 0.25)
    lo, hi = battery_window_w(BAT, bat_reading(BAT.soc_min_pct - 2), 900)
    assert hi == 0.0 and lo == -BAT.max_charge_w
    lo, _ = battery_window_w(BAT, bat_reading(BAT.soc_max_pct), 900)
    assert lo == 0.0


def test_live_rating_below_config_wins() -> None:
    reading = BatteryReading(50, 0, BAT.capacity_wh, max_charge_w=1000, max_discharge_w=1500)
    assert battery_window_w(BAT, reading, 900) == (-1000, 1500)


def test_setpoints_are_clamped_and_say_why() -> None:
    pv, hp = SITE.pv[0], SITE.heat_pump
    assert hp is not None
    sps = [
        Setpoint(BAT.id, DeviceKind.BATTERY, 1e6, 1e6),
        Setpoint(pv.id, DeviceKind.PV, 0.0, 0.0),
        Setpoint(pv.id, DeviceKind.PV, 1.4 * pv.rated_w, 1.4 * pv.rated_w),
        Setpoint(hp.id, DeviceKind.HEAT_PUMP, hp.max_el_w * 2, hp.max_el_w * 2),
        Setpoint(BAT.id, DeviceKind.BATTERY, float("nan"), 0.0),
    ]
    out = check_setpoints(SITE, snapshot(0, **{BAT.id: bat_reading(50)}), sps, 900)
    assert out[0].power_w == BAT.max_discharge_w and out[0].clamped and "discharge" in out[0].reason
    assert out[1].power_w == pytest.approx(pv.min_limit_pct / 100 * pv.rated_w)
    assert "minimum" in out[1].reason
    assert out[2].power_w == pv.rated_w
    assert out[3].power_w == hp.max_el_w
    assert out[4].power_w == 0.0 and "finite" in out[4].reason


def test_caps_tighten_grid_limits_only_inside_their_window() -> None:
    cap = OperatorCap("import", 50_000, T0, T0 + timedelta(hours=1))
    assert grid_limits_w(SITE, [cap], T0) == (50_000, SITE.grid.export_limit_w)
    assert grid_limits_w(SITE, [cap], T0 + timedelta(hours=1))[0] == SITE.grid.import_limit_w


def test_guard_holds_back_charging_that_would_breach_the_import_limit() -> None:
    bats = SITE.batteries[:2]
    readings = {b.id: bat_reading(50, power=0.0) for b in bats}
    snap = snapshot(SITE.grid.import_limit_w - 3000, **readings)
    sps = [Setpoint(b.id, DeviceKind.BATTERY, -2500.0, -2500.0) for b in bats]
    out = guard_grid(SITE, snap, sps, SITE.grid.import_limit_w, SITE.grid.export_limit_w)
    predicted = SITE.grid.import_limit_w - 3000 - sum(sp.power_w for sp in out)
    assert predicted == pytest.approx(SITE.grid.import_limit_w)
    assert all(sp.clamped and "import" in sp.reason for sp in out)


def test_guard_never_makes_a_breach_worse_but_lets_batteries_relieve_it() -> None:
    bats = SITE.batteries[:2]
    readings = {b.id: bat_reading(50, power=0.0) for b in bats}
    over = SITE.grid.import_limit_w + 10_000
    worse = [Setpoint(b.id, DeviceKind.BATTERY, -2000.0, -2000.0) for b in bats]
    out = guard_grid(SITE, snapshot(over, **readings), worse, SITE.grid.import_limit_w, 1e9)
    assert [sp.power_w for sp in out] == [0.0, 0.0]
    relief = [Setpoint(b.id, DeviceKind.BATTERY, 2000.0, 2000.0) for b in bats]
    out = guard_grid(SITE, snapshot(over, **readings), relief, SITE.grid.import_limit_w, 1e9)
    assert [sp.power_w for sp in out] == [2000.0, 2000.0]


def test_guard_caps_pv_limit_raises_that_could_breach_export() -> None:
    pv = SITE.pv[0]
    reading = PvReading(
        ac_power_w=0.2 * pv.rated_w,
        energy_wh=0,
        dc_power_w=None,
        status=None,
        rated_w=pv.rated_w,
        limit_pct=20.0,
    )
    exp = SITE.grid.export_limit_w
    snap = snapshot(-exp + 100.0, **{pv.id: reading})
    uncapped = Setpoint(pv.id, DeviceKind.PV, pv.rated_w, pv.rated_w)
    out = guard_grid(SITE, snap, [uncapped], 1e9, exp)
    # The new cap lets output rise by at most the 100 W of headroom left.
    assert out[0].power_w == pytest.approx(0.2 * pv.rated_w + 100.0)


def test_guard_leaves_inverters_that_already_give_all_they_have() -> None:
    pv = SITE.pv[0]
    # Unlimited and below rating: output is all the sun gives; a 100 % limit changes nothing.
    free = PvReading(
        ac_power_w=0.4 * pv.rated_w,
        energy_wh=0,
        dc_power_w=None,
        status=None,
        rated_w=pv.rated_w,
        limit_pct=None,
    )
    exp = SITE.grid.export_limit_w
    snap = snapshot(-exp + 100.0, **{pv.id: free})
    uncapped = Setpoint(pv.id, DeviceKind.PV, pv.rated_w, pv.rated_w)
    out = guard_grid(SITE, snap, [uncapped], 1e9, exp)
    assert out[0].power_w == pv.rated_w and not out[0].clamped
    # Limited at 50 % but producing only 30 %: not held by its cap either.
    below = PvReading(0.3 * pv.rated_w, 0, None, None, pv.rated_w, limit_pct=50.0)
    snap = snapshot(-exp + 100.0, **{pv.id: below})
    out = guard_grid(SITE, snap, [uncapped], 1e9, exp)
    assert out[0].power_w == pv.rated_w


def test_extra_bounds_narrow_the_envelope_after_the_devices_own() -> None:
    from vpp.control.envelope import Bound

    pv = SITE.pv[0]
    snap = snapshot(0, **{BAT.id: bat_reading(50)})
    bounds = {
        BAT.id: [Bound(-4200.0, math.inf, "§14a EnWG")],  # charge at most 4.2 kW
        pv.id: [Bound(-math.inf, 0.0, "feed-in cap")],  # below the inverter's minimum
    }
    sps = [
        Setpoint(BAT.id, DeviceKind.BATTERY, -5000.0, -5000.0),
        Setpoint(pv.id, DeviceKind.PV, pv.rated_w, pv.rated_w),
    ]
    out = check_setpoints(SITE, snap, sps, 900, bounds)
    assert out[0].power_w == -4200.0 and "§14a EnWG" in out[0].reason
    # The inverter's own minimum comes first.
    assert out[1].power_w == pytest.approx(pv.min_limit_pct / 100 * pv.rated_w)
    assert out[0].envelope is not None and out[0].envelope.lo_source == "§14a EnWG"
