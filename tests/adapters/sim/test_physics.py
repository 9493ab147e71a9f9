"""Pure physics and profile functions of the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.sim import physics, profiles
from adapters.sim.physics import BatteryLimits

LEIPZIG = (51.34, 12.37)
LIMITS = BatteryLimits(capacity_wh=10_000, max_charge_w=5_000, max_discharge_w=4_000,
                       soc_min_pct=10, soc_max_pct=90, charge_efficiency=0.95,
                       discharge_efficiency=0.9)  # fmt: skip


def test_pv_output_follows_irradiance_until_clipping() -> None:
    dc = physics.pv_dc_power_w(500.0, peak_wp=10_000)
    assert dc == pytest.approx(10_000 * 0.5 * physics.PV_PERFORMANCE_RATIO)
    assert physics.pv_available_ac_w(dc, rated_w=8_000) == pytest.approx(
        dc * physics.INVERTER_EFFICIENCY
    )
    assert physics.pv_available_ac_w(20_000, rated_w=8_000) == 8_000
    assert physics.pv_dc_power_w(-5.0, peak_wp=10_000) == 0.0


def test_pv_limit_caps_output_at_share_of_rating() -> None:
    assert physics.pv_limited_ac_w(7_000, rated_w=10_000, limit_pct=40) == 4_000
    assert physics.pv_limited_ac_w(3_000, rated_w=10_000, limit_pct=40) == 3_000
    assert physics.pv_limited_ac_w(7_000, rated_w=10_000, limit_pct=None) == 7_000


def test_revert_timer() -> None:
    assert not physics.timer_expired(100.0, 159.9, 60)
    assert physics.timer_expired(100.0, 160.0, 60)
    assert not physics.timer_expired(100.0, 1e9, 0)  # 0 = never reverts
    assert not physics.timer_expired(None, 1e9, 60)


def test_battery_integrates_with_efficiency() -> None:
    stored = 5_000.0
    p = physics.battery_power_w(-2_000, stored, 3600, LIMITS)
    assert p == -2_000
    assert physics.battery_stored_wh(stored, p, 3600, LIMITS) == pytest.approx(5_000 + 1_900)
    p = physics.battery_power_w(1_800, stored, 3600, LIMITS)
    assert physics.battery_stored_wh(stored, p, 3600, LIMITS) == pytest.approx(5_000 - 2_000)


def test_battery_power_limits_and_soc_window() -> None:
    assert physics.battery_power_w(9_000, 5_000, 1, LIMITS) == 4_000
    assert physics.battery_power_w(-9_000, 5_000, 1, LIMITS) == -5_000
    # 500 Wh of room below 90 %: one hour can take only 500 / 0.95 Wh from the grid.
    p = physics.battery_power_w(-5_000, 8_500, 3600, LIMITS)
    assert p == pytest.approx(-500 / 0.95)
    assert physics.battery_stored_wh(8_500, p, 3600, LIMITS) == pytest.approx(9_000)
    assert physics.battery_power_w(-5_000, 9_000, 3600, LIMITS) == 0.0
    assert physics.battery_power_w(3_000, 1_000, 3600, LIMITS) == 0.0
    assert physics.battery_power_w(3_000, 1_000, 0, LIMITS) == 0.0
    assert physics.battery_power_w(3_000, 1_100, 0, LIMITS) == 3_000


def test_carnot_cop() -> None:
    cop = physics.carnot_cop(70.0, 30.0, 0.5)
    assert cop == pytest.approx(0.5 * 343.15 / 40.0)
    assert physics.carnot_cop(70.0, 70.0, 0.5) == pytest.approx(0.5 * 343.15)


def test_ramp_water_flow_and_grid_balance() -> None:
    assert physics.ramp(0.0, 100.0, 10.0, 3.0) == 30.0
    assert physics.ramp(50.0, 10.0, 10.0, 30.0) == 10.0
    # 1 MW at 10 K: 1e6 / (4186 * 10) kg/s.
    flow = physics.water_flow_m3_per_h(1e6, 10.0)
    assert flow == pytest.approx(1e6 / 41_860 / physics.WATER_DENSITY_KG_PER_M3 * 3600)
    assert physics.dry_cooler_power_w(100_000, 60_000, 0.05) == pytest.approx(2_000)
    assert physics.dry_cooler_power_w(100_000, 160_000, 0.05) == 0.0
    grid = physics.grid_power_w(base_load_w=1000, heat_pump_el_w=500, dry_cooler_w=50,
                                 pv_w=2000, battery_w=-300)  # fmt: skip
    assert grid == pytest.approx(1000 + 500 + 50 - 2000 + 300)


def test_sun_is_south_and_high_at_solar_noon_in_midsummer() -> None:
    # Solar noon in Leipzig is about 11:10 UTC in late June.
    zenith, azimuth = profiles.solar_position(datetime(2024, 6, 21, 11, 10, tzinfo=UTC), *LEIPZIG)
    assert 180 - 3 < azimuth < 180 + 3
    assert zenith == pytest.approx(51.34 - 23.44, abs=0.5)
    night_zenith, _ = profiles.solar_position(datetime(2024, 6, 21, 23, 0, tzinfo=UTC), *LEIPZIG)
    assert night_zenith > 90


def test_clear_sky_profile_shape() -> None:
    profile = profiles.clear_sky_profile(*LEIPZIG)
    noon = datetime(2024, 6, 21, 11, 10, tzinfo=UTC)
    south = profile(noon, 30.0, 180.0)
    assert 850 < south < 1100
    assert profile(noon, 30.0, 0.0) < south  # a north-facing roof gets less
    assert profile(datetime(2024, 6, 21, 22, 0, tzinfo=UTC), 30.0, 180.0) == 0.0
    morning = datetime(2024, 6, 21, 6, 0, tzinfo=UTC)
    assert profile(morning, 30.0, 90.0) > profile(morning, 30.0, 270.0)  # east before west


def test_clouds_and_load_profiles_stay_in_range() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(minutes=7 * i) for i in range(2000)]
    clouds = [profiles.cloud_factor(t) for t in moments]
    assert min(clouds) >= 0.25 and max(clouds) == 1.0 and min(clouds) < 0.6
    assert profiles.cloud_factor(moments[5]) == profiles.cloud_factor(moments[5])
    loads = [profiles.household_load_ratio(h / 4) for h in range(96)]
    assert max(loads) == pytest.approx(1.0, abs=1e-3) and min(loads) > 0.25
    assert profiles.household_load_ratio(19.0) > profiles.household_load_ratio(3.0)
    ratios = [profiles.it_load_ratio(t, t.hour) for t in moments[:200]]
    assert min(ratios) > 0.9 and max(ratios) < 1.1
