from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from adapters.snapshot import BatteryReading, CommsHealth, DeviceState, MeterReading, Snapshot
from vpp.control.dispatch import correct_batteries, plan_row, pv_cap_w, setpoints_from_row
from vpp.core.site import DeviceKind
from vpp.testing.harness import small_site

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
SITE = small_site()
OK = CommsHealth(last_success=T0)


def row(**values: float) -> pd.Series:
    base = {"grid_import_w": 20_000.0, "grid_export_w": 0.0, "heat_pump_el_w": 5_000.0}
    base.update({f"{b.id}.battery_w": 1000.0 for b in SITE.batteries})
    base.update({f"{p.id}.pv_limit_w": p.rated_w for p in SITE.pv})
    base.update(values)
    return pd.Series(base)


def test_plan_row_is_the_quarter_hour_containing_now() -> None:
    index = pd.date_range(T0, periods=4, freq="15min", tz="UTC")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}, index=index)
    assert plan_row(frame, T0 + timedelta(minutes=29, seconds=59))["x"] == 2.0  # type: ignore[index]
    assert plan_row(frame, T0 - timedelta(seconds=1)) is None
    assert plan_row(frame, T0 + timedelta(hours=1)) is None


def test_a_planned_pv_cap_without_a_cap_is_the_rating() -> None:
    assert pv_cap_w(float("nan"), 10_000) == 10_000.0
    assert pv_cap_w(12_000, 10_000) == 10_000.0
    assert pv_cap_w(2_500, 10_000) == 2_500.0
    assert pv_cap_w(-5, 10_000) == 0.0


def test_setpoints_only_for_online_devices() -> None:
    pv0 = SITE.pv[0]
    hp = SITE.heat_pump
    assert hp is not None
    online = {SITE.batteries[0].id, pv0.id, hp.id}
    r = row(**{f"{pv0.id}.pv_limit_w": pv0.rated_w / 2})
    sps = {sp.device_id: sp for sp in setpoints_from_row(SITE, r, online)}
    assert set(sps) == online
    assert sps[pv0.id].power_w == pytest.approx(pv0.rated_w / 2)
    assert sps[pv0.id].kind == DeviceKind.PV
    assert sps[hp.id].power_w == 5000.0
    assert sps[SITE.batteries[0].id].power_w == 1000.0


def snap(grid_w: float, soc: float = 50.0) -> Snapshot:
    devices = {
        SITE.grid.meter: DeviceState(SITE.grid.meter, "meter", MeterReading(grid_w, 0, 0), OK, T0)
    }
    for b in SITE.batteries:
        reading = BatteryReading(soc, 1000.0, b.capacity_wh, b.max_charge_w, b.max_discharge_w)
        devices[b.id] = DeviceState(b.id, "battery", reading, OK, T0)
    return Snapshot(T0, devices)


def test_correction_cancels_the_departure_from_the_planned_grid_exchange() -> None:
    active = {b.id: 1000.0 for b in SITE.batteries}
    # Importing 6 kW more than planned (e.g. PV below forecast): discharge 6 kW more.
    out = correct_batteries(SITE, snap(26_000), row(), active, 300, 2000)
    assert sum(sp.power_w - 1000.0 for sp in out) == pytest.approx(6000.0)
    for sp in out:
        bat = SITE.device(sp.device_id)
        assert sp.power_w <= bat.max_discharge_w and "correction" in sp.reason
    # Exporting more than planned: charge instead.
    out = correct_batteries(SITE, snap(14_000), row(), active, 300, 2000)
    assert sum(sp.power_w - 1000.0 for sp in out) == pytest.approx(-6000.0)


def test_correction_is_bounded_by_headroom_and_ignores_noise() -> None:
    active = {b.id: 1000.0 for b in SITE.batteries}
    assert correct_batteries(SITE, snap(21_000), row(), active, 300, 2000) == []
    out = correct_batteries(SITE, snap(500_000), row(), active, 300, 2000)
    assert all(sp.power_w == pytest.approx(SITE.device(sp.device_id).max_discharge_w) for sp in out)
    # Batteries at their floor cannot discharge more.
    floor = SITE.batteries[0].soc_min_pct
    assert correct_batteries(SITE, snap(26_000, soc=floor), row(), active, 300, 2000) == []


def test_export_over_the_limit_is_cut_from_the_inverters() -> None:
    from adapters.snapshot import PvReading
    from vpp.control.dispatch import curtail_export

    limit = SITE.grid.export_limit_w
    devices = dict(snap(-(limit + 9000.0)).devices)
    for pv in SITE.pv:
        reading = PvReading(0.6 * pv.rated_w, 0.0, None, None, pv.rated_w)
        devices[pv.id] = DeviceState(pv.id, "pv", reading, OK, T0)
    snapshot = Snapshot(T0, devices)
    out = curtail_export(SITE, snapshot, limit, charge_added_w=3000.0)
    cut_w = sum(0.6 * pv.rated_w - sp.power_w for pv, sp in zip(SITE.pv, out, strict=True))
    assert cut_w == pytest.approx(6000.0)  # 9 kW over, 3 kW of it taken by extra charging
    assert all(sp.kind == DeviceKind.PV and "over its limit" in sp.reason for sp in out)
    assert curtail_export(SITE, snapshot, limit + 10_000.0) == []


def test_limits_mode_corrects_only_past_the_connection_limits() -> None:
    from vpp.control.dispatch import corrections, hold_limits

    active = {b.id: 1000.0 for b in SITE.batteries}
    imp, exp = SITE.grid.import_limit_w, SITE.grid.export_limit_w
    # 6 kW off the plan but inside the limits: nothing to do in "limits" mode ...
    assert hold_limits(SITE, snap(26_000), row(), active, imp, exp, 300, 2000) == []
    assert SITE.run.correction == "limits"
    assert corrections(SITE, snap(26_000), row(), active, imp, exp, 300) == []
    # ... while "schedule" holds the planned exchange.
    schedule = SITE.model_copy(
        update={"run": SITE.run.model_copy(update={"correction": "schedule"})}
    )
    out = corrections(schedule, snap(26_000), row(), active, imp, exp, 300)
    assert sum(sp.power_w - 1000.0 for sp in out) == pytest.approx(6000.0)
    # 7 kW past the import limit: the batteries discharge 7 kW more.
    out = hold_limits(SITE, snap(imp + 7000.0), row(), active, imp, exp, 300, 2000)
    assert sum(sp.power_w - 1000.0 for sp in out) == pytest.approx(7000.0)
    assert all("past its limit" in sp.reason for sp in out)
    # 4 kW past the export limit: they charge 4 kW more; under the deadband: nothing.
    out = hold_limits(SITE, snap(-exp - 4000.0), row(), active, imp, exp, 300, 2000)
    assert sum(sp.power_w - 1000.0 for sp in out) == pytest.approx(-4000.0)
    assert hold_limits(SITE, snap(-exp - 1000.0), row(), active, imp, exp, 300, 2000) == []
