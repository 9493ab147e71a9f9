from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from adapters.snapshot import BatteryReading, CommsHealth, DeviceState, MeterReading, Snapshot
from vpp.control.dispatch import correct_batteries, plan_row, pv_cap_w, setpoints_from_row
from vpp.control.safety import Setpoint
from vpp.core.site import DeviceKind, Site
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
    limits = SITE.model_copy(update={"run": SITE.run.model_copy(update={"correction": "limits"})})
    assert corrections(limits, snap(26_000), row(), active, imp, exp, 300) == []
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


# -- run.correction = "value" -----------------------------------------------------------------

#: A plan step with no exchange planned, every battery charging 2 kW from the surplus, and the
#: plan's value of stored energy 100 EUR/MWh: stored, a MWh from the grid side is worth
#: keep = 95 EUR, and a MWh given to it costs give = 100 / 0.95 + 20 = 125.3 EUR.
VALUE_ROW = {
    "grid_import_w": 0.0,
    "grid_export_w": 0.0,
    "value_stored_eur_per_mwh": 100.0,
    "price_import_eur_per_mwh": 200.0,
    "price_export_eur_per_mwh": 40.0,
    "co2_g_per_kwh": 0.0,
    **{f"{b.id}.battery_w": -2000.0 for b in SITE.batteries},
}
PLANNED_W = -2000.0 * len(SITE.batteries)


def snap_at(grid_w: float, battery_w: float | None, soc_pct: float = 50.0) -> Snapshot:
    """The grid meter at ``grid_w`` and every battery at ``soc_pct`` measuring ``battery_w``."""
    devices = {
        SITE.grid.meter: DeviceState(SITE.grid.meter, "meter", MeterReading(grid_w, 0, 0), OK, T0)
    }
    for b in SITE.batteries:
        reading = BatteryReading(
            soc_pct, battery_w, b.capacity_wh, b.max_charge_w, b.max_discharge_w
        )
        devices[b.id] = DeviceState(b.id, "battery", reading, OK, T0)
    return Snapshot(T0, devices)


def follow(
    grid_w: float,
    active_w: float = -2000.0,
    battery_w: float | None = -2000.0,
    ahead_wh: float | None = None,
    site: Site = SITE,
    soc_pct: float = 50.0,
    kept_wh: float = 0.0,
    **values: float,
) -> list[Setpoint]:
    """``follow_value`` on ``VALUE_ROW`` (with ``values`` changed), the meter at ``grid_w``,
    every battery in force at ``active_w`` and measuring ``battery_w`` at ``soc_pct``; 500 W
    deadband, 300 s horizon; ``ahead_wh``: the plan's export over the next hours,
    ``kept_wh`` the room it keeps for energy it values below its export price."""
    from vpp.control.dispatch import ExportAhead, follow_value

    active = {b.id: active_w for b in SITE.batteries}
    r = row(**{**VALUE_ROW, **values})
    imp, exp = SITE.grid.import_limit_w, SITE.grid.export_limit_w
    snap = snap_at(grid_w, battery_w, soc_pct)
    ahead = ExportAhead(ahead_wh, kept_wh) if ahead_wh is not None else None
    return follow_value(site, snap, r, active, imp, exp, 300, 500, ahead)


def test_value_correction_stores_an_unforeseen_surplus_where_storing_it_pays() -> None:
    # 6 kW exported against none planned: the batteries charge 6 kW more (95 > 40 EUR) ...
    out = follow(-6000.0)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W - 6000.0)
    assert all("plan's value" in sp.reason and sp.power_w < 0 for sp in out)
    # ... not where the export earns more than the energy is worth stored.
    assert follow(-6000.0, price_export_eur_per_mwh=120.0) == []
    # A plan without duals (a fallback plan) keeps its setpoints inside the limits.
    assert follow(-6000.0, value_stored_eur_per_mwh=float("nan")) == []


def test_value_correction_does_not_buy_a_surplus_that_falls_short() -> None:
    # Importing 5 kW where the plan had the batteries charging from a surplus: they charge
    # 5 kW less (the import, 200 EUR, costs more than the 95 EUR the energy is worth stored).
    out = follow(5000.0)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W + 5000.0)
    assert all(sp.power_w <= 0.0 for sp in out)  # less charging, no discharge for it
    # 12 kW short: the 8 kW of planned charging is dropped, and discharging the other 4 kW
    # pays too (200 > 125.3 EUR) ...
    out = follow(12_000.0)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W + 12_000.0)
    # ... but not at an import price between keep and give: only the charging goes.
    out = follow(12_000.0, price_import_eur_per_mwh=110.0)
    assert sum(sp.power_w for sp in out) == pytest.approx(0.0, abs=1e-6)
    # The import's CO2 price counts as the plan counts it: 110 + 80 EUR/t x 0.5 t/MWh > give.
    out = follow(12_000.0, price_import_eur_per_mwh=110.0, co2_g_per_kwh=500.0)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W + 12_000.0)
    # Storing from the grid where the plan's value says it pays (import 80 < keep 95).
    assert follow(5000.0, price_import_eur_per_mwh=80.0) == []


def test_value_correction_never_exports_stored_energy_beyond_the_plan() -> None:
    # The plan exports 10 kW with the batteries discharging 2 kW each; only 4 kW go out:
    # 6 kW short of the plan, but no import to cut, so nothing changes.
    planned = {f"{b.id}.battery_w": 2000.0 for b in SITE.batteries}
    out = follow(-4000.0, active_w=2000.0, battery_w=2000.0, grid_export_w=10_000.0, **planned)
    assert out == []
    # Importing 3 kW instead: at most those 3 kW are discharged.
    out = follow(3000.0, active_w=2000.0, battery_w=2000.0, grid_export_w=10_000.0, **planned)
    assert sum(sp.power_w for sp in out) == pytest.approx(8000.0 + 3000.0)


def test_value_correction_reads_the_departure_from_the_batteries_measured_power() -> None:
    """The grid reading covers the last minute, when the batteries still ran at the power
    they measured, not at a setpoint written since: the same readings give the same
    setpoints whatever is in force now (a correction is not taken twice)."""
    first = follow(-6000.0)
    assert sum(sp.power_w for sp in first) == pytest.approx(PLANNED_W - 6000.0)
    # The first correction's setpoints in force, the batteries not yet at them: nothing
    # more to write (a correction from the setpoints in force would charge 6 kW more again).
    assert follow(-6000.0, active_w=-3500.0) == []
    # In force with other setpoints (a correction since undone): the same target.
    again = follow(-6000.0, active_w=-1000.0)
    assert sum(sp.power_w for sp in again) == pytest.approx(PLANNED_W - 6000.0)
    # Once the batteries run at the corrected power the grid shows no export: they stay.
    assert follow(0.0, active_w=-3500.0, battery_w=-3500.0) == []
    # When the cloud has passed (the plan's exchange again at the plan's power), back to
    # the plan.
    back = follow(0.0, active_w=-3500.0, battery_w=-2000.0)
    assert sum(sp.power_w for sp in back) == pytest.approx(PLANNED_W)
    # Without a measured power the setpoint in force stands for it.
    none = follow(-6000.0, battery_w=None)
    assert sum(sp.power_w for sp in none) == pytest.approx(PLANNED_W - 6000.0)


#: The small site's batteries at 50 %: 45 % of 45 kWh to fill, over eta_c 0.95.
ROOM_WH = 0.45 * 45_000.0 / 0.95


def test_a_planned_export_is_stored_where_the_plan_counts_on_a_later_surplus() -> None:
    """The plan exports 6 kW now (the batteries charging 2 kW each) and little later on:
    the export is stored as well, since a later surplus that falls short is bought back at
    the import price (200 EUR/MWh, of which 180.5 displaced after losses, against 40 for
    the export)."""
    planned = {"grid_export_w": 6000.0}
    assert follow(-6000.0, **planned) == []  # no departure: the plan stands as before
    out = follow(-6000.0, ahead_wh=0.0, **planned)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W - 6000.0)
    assert all(sp.power_w < 0 for sp in out)
    # Later exports up to 4 times the batteries' room: still stored.
    out = follow(-6000.0, ahead_wh=3.99 * ROOM_WH, **planned)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W - 6000.0)
    # Exporting more than that later on, the batteries fill anyway: the plan's timing stands.
    assert follow(-6000.0, ahead_wh=4.01 * ROOM_WH, **planned) == []
    # Where the export earns more than the import it would displace: exported.
    assert follow(-6000.0, ahead_wh=0.0, price_export_eur_per_mwh=181.0, **planned) == []
    assert follow(-6000.0, ahead_wh=0.0, price_export_eur_per_mwh=180.0, **planned) != []
    # Full batteries have no room; a plan without duals only holds the limits.
    assert follow(-6000.0, ahead_wh=0.0, soc_pct=95.0, **planned) == []
    nan = float("nan")
    assert follow(-6000.0, ahead_wh=0.0, value_stored_eur_per_mwh=nan, **planned) == []
    # Under the deadband nothing moves; with the setting off the plan's export stands.
    assert follow(-400.0, ahead_wh=0.0, grid_export_w=400.0) == []
    off = SITE.model_copy(
        update={"run": SITE.run.model_copy(update={"store_surplus_first": False})}
    )
    assert follow(-6000.0, ahead_wh=0.0, site=off, **planned) == []


def test_a_planned_export_is_stored_after_the_departure_and_never_beyond_it() -> None:
    """An unforeseen surplus on top of a planned export: both are stored, as far as the
    batteries can take them in the correction's horizon, and nothing is charged from the
    grid for it."""
    out = follow(-9000.0, ahead_wh=0.0, grid_export_w=4000.0)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W - 9000.0)
    # Importing although the plan exports: nothing to store; the import is cut as before.
    importing = follow(1000.0, ahead_wh=0.0, grid_export_w=4000.0)
    assert importing == follow(1000.0, grid_export_w=4000.0)
    assert sum(sp.power_w for sp in importing) == pytest.approx(PLANNED_W + 1000.0)


def test_a_planned_export_leaves_the_room_the_plan_keeps_for_energy_worth_less() -> None:
    """Where the plan fills the batteries later from energy it values below its export price
    (a surplus above the export limit, at a negative price), a morning export stored now
    would push that energy into curtailment: only the room beyond it is filled."""
    planned = {"grid_export_w": 6000.0}
    assert follow(-6000.0, ahead_wh=0.0, kept_wh=ROOM_WH, **planned) == []
    assert follow(-6000.0, ahead_wh=0.0, kept_wh=2 * ROOM_WH, **planned) == []
    # 200 Wh of room left: at most 200 Wh over the 300 s horizon, 2.4 kW more charging.
    out = follow(-6000.0, ahead_wh=0.0, kept_wh=ROOM_WH - 200.0, **planned)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W - 2400.0)
    # Room enough for the whole export: all of it stored, as without kept room.
    out = follow(-6000.0, ahead_wh=0.0, kept_wh=ROOM_WH - 1000.0, **planned)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W - 6000.0)
    # An unforeseen surplus is still stored where it pays, whatever room the plan keeps.
    out = follow(-6000.0, ahead_wh=0.0, kept_wh=ROOM_WH)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W - 6000.0)
    # No horizon left (a correction due at once): the room is not spread over it.
    from vpp.control.dispatch import ExportAhead, follow_value

    r = row(**{**VALUE_ROW, **planned})
    active = {b.id: -2000.0 for b in SITE.batteries}
    imp, exp = SITE.grid.import_limit_w, SITE.grid.export_limit_w
    snap = snap_at(-6000.0, -2000.0, 50.0)
    ahead = ExportAhead(0.0, ROOM_WH - 200.0)
    assert follow_value(SITE, snap, r, active, imp, exp, 0.0, 500, ahead) != []


def test_export_ahead_sums_the_plans_export_after_the_quarter_hour() -> None:
    from vpp.control.dispatch import EXPORT_AHEAD_H, export_ahead

    index = pd.date_range(T0, periods=48, freq="15min")
    frame = pd.DataFrame({"grid_export_w": 4000.0}, index=index)
    # The quarter hour now is left out; the next 8 hours' 32 quarter hours count, 1 kWh each.
    assert export_ahead(frame, T0).export_wh == pytest.approx(4000.0 * 0.25 * EXPORT_AHEAD_H * 4)
    assert export_ahead(frame, index[-1]).export_wh == 0.0
    assert export_ahead(frame[[]], T0) == (0.0, 0.0)
    assert export_ahead(frame, T0).kept_wh == 0.0  # no duals: no room kept


def test_export_ahead_counts_the_charge_the_plan_takes_from_energy_worth_less() -> None:
    from vpp.control.dispatch import export_ahead

    index = pd.date_range(T0, periods=8, freq="15min")
    frame = pd.DataFrame(
        {
            "grid_export_w": 0.0,
            "battery_w": -4000.0,  # charging 1 kWh every quarter hour
            "price_export_eur_per_mwh": 50.0,
            "value_el_eur_per_mwh": 50.0,  # exporting at the margin: not counted
        },
        index=index,
    )
    frame.loc[index[1], "value_el_eur_per_mwh"] = 20.0  # the export at its limit
    frame.loc[index[2], "value_el_eur_per_mwh"] = 0.0  # curtailing
    frame.loc[index[3], ["price_export_eur_per_mwh", "value_el_eur_per_mwh"]] = (-30.0, -30.0)
    frame.loc[index[4], "value_el_eur_per_mwh"] = 200.0  # importing: not counted
    frame.loc[index[5], "value_el_eur_per_mwh"] = 49.5  # within 1 EUR/MWh: not counted
    frame.loc[index[6], ["battery_w", "value_el_eur_per_mwh"]] = (3000.0, 0.0)  # discharging
    frame.loc[index[7], "value_el_eur_per_mwh"] = float("nan")  # no dual: not counted
    assert export_ahead(frame, index[0]).kept_wh == pytest.approx(3000.0)
    # The quarter hour now never counts.
    assert export_ahead(frame, index[1]).kept_wh == pytest.approx(2000.0)


def test_value_correction_holds_the_limits_whatever_the_value() -> None:
    imp = SITE.grid.import_limit_w
    # 7 kW past the import limit with no value to go by: back to the limit.
    out = follow(imp + 7000.0, value_stored_eur_per_mwh=float("nan"), grid_import_w=imp)
    assert sum(sp.power_w for sp in out) == pytest.approx(PLANNED_W + 7000.0)
    # The mode is chosen by the site's run.correction.
    from vpp.control.dispatch import corrections

    value = SITE.model_copy(update={"run": SITE.run.model_copy(update={"correction": "value"})})
    active = {b.id: -2000.0 for b in SITE.batteries}
    r = row(**VALUE_ROW)
    out = corrections(value, snap_at(-6000.0, -2000.0), r, active, imp, 80_000.0, 300)
    assert sum(sp.power_w for sp in out if sp.kind == DeviceKind.BATTERY) == pytest.approx(
        PLANNED_W - 6000.0
    )


def test_no_correction_against_the_plan_before_the_readings_reach_its_quarter_hour() -> None:
    """Right after a quarter hour's dispatch the readings still show the previous quarter
    hour, which the new plan row does not describe: only the limits are held until they
    cover a minute of it."""
    from vpp.control.cycle import SETTLE, correction

    imp = SITE.grid.import_limit_w
    active = {b.id: -2000.0 for b in SITE.batteries}
    r = row(**VALUE_ROW)

    def batteries(site: Site, snapshot: Snapshot, now: datetime) -> float | None:
        out = correction(site, r, snapshot, active, [], now)
        bats = [sp.power_w for sp in out if sp.kind == DeviceKind.BATTERY]
        return sum(bats) if bats else None

    for mode in ("value", "schedule"):
        site = SITE.model_copy(update={"run": SITE.run.model_copy(update={"correction": mode})})
        early = snap_at(-6000.0, -2000.0)  # read at T0, the quarter hour's start
        assert batteries(site, early, T0 + timedelta(seconds=30)) is None, mode
        late = Snapshot(T0 + SETTLE, early.devices)
        assert batteries(site, late, T0 + SETTLE) == pytest.approx(PLANNED_W - 6000.0), mode
        # Past a limit the batteries act at once.
        over = Snapshot(T0, snap_at(imp + 7000.0, -2000.0).devices)
        at_once = batteries(site, over, T0 + timedelta(seconds=30))
        assert at_once == pytest.approx(PLANNED_W + 7000.0), mode
