"""The heat correction: between quarter hours the heat pump follows the measured heat demand
where the plan's heat pump falls short and is cheaper than the boiler, or the store would
overflow; the setpoint never leaves the rating, the grid-operator bounds or the grid limits."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.snapshot import Snapshot
from vpp.control.cycle import correction
from vpp.control.dispatch import (
    boiler_eur_per_mwh_th,
    correct_heat_pump,
    heat_pump_eur_per_mwh_th,
    heat_pump_target_w,
)
from vpp.control.envelope import Bound
from vpp.control.state import OperatorCap
from vpp.control.store import StoreEstimate
from vpp.core.site import DeviceKind, HeatPumpDevice
from vpp.testing.harness import small_site

from .snapshots import T0, heat_snapshot, plan_row

SITE = small_site()
_HP = SITE.heat_pump
assert _HP is not None and SITE.datacentre is not None
HP: HeatPumpDevice = _HP
COP = 3.0
HORIZON_S = 60.0


def row(**values: float) -> pd.Series:
    """A winter plan step: the heat pump at 10 kW (30 kW of heat), the store giving 20 kW,
    no boiler, a cheap hour (heat-pump heat well below the boiler's)."""
    return plan_row(10_000.0, 20_000.0, **values)


def snap(demand_w: float | None, el_w: float = 10_000.0, **other: float) -> Snapshot:
    return heat_snapshot(SITE, demand_w, el_w, **other)


def test_cheap_heat_pump_covers_the_demand_the_plan_missed() -> None:
    # Demand 80 kW against the planned 50: the store keeps to its planned 20 kW and the heat
    # pump makes the other 60 kW (20 kW electric at COP 3) instead of the store or boiler.
    assert heat_pump_eur_per_mwh_th(SITE, row(), COP) < boiler_eur_per_mwh_th(SITE)
    (sp,) = correct_heat_pump(SITE, snap(80_000.0), row(), 400_000.0, HORIZON_S)
    assert sp.device_id == HP.id and sp.kind == DeviceKind.HEAT_PUMP
    assert sp.power_w == pytest.approx(20_000.0)
    assert sp.planned_w == 10_000.0
    assert "heat demand 80000 W" in sp.reason


def test_cheap_heat_pump_displaces_the_planned_boiler() -> None:
    # The plan burns 30 kW in the boiler (it expected less waste heat than there is); with
    # the demand as planned the heat pump takes those 30 kW over: 60 kW of heat, 20 kW.
    planned = row(heat_pump_el_w=0.0, boiler_th_w=30_000.0)
    (sp,) = correct_heat_pump(SITE, snap(80_000.0, el_w=0.0), planned, 400_000.0, HORIZON_S)
    assert sp.power_w == pytest.approx(20_000.0)


def test_the_rating_caps_the_raise() -> None:
    (sp,) = correct_heat_pump(SITE, snap(200_000.0), row(), 400_000.0, HORIZON_S)
    assert sp.power_w == HP.max_el_w


def test_the_waste_heat_on_offer_caps_the_raise() -> None:
    # 24 kW of waste heat feeds at most 12 kW electric at COP 3 (source = (COP - 1) * el).
    (sp,) = correct_heat_pump(SITE, snap(80_000.0, waste_w=24_000.0), row(), 4e5, HORIZON_S)
    assert sp.power_w == pytest.approx(12_000.0)


def test_no_raise_when_the_boiler_is_cheaper() -> None:
    dear = row(price_import_eur_per_mwh=400.0)
    assert heat_pump_eur_per_mwh_th(SITE, dear, COP) > boiler_eur_per_mwh_th(SITE)
    assert correct_heat_pump(SITE, snap(80_000.0), dear, 400_000.0, HORIZON_S) == []


def test_while_exporting_electricity_costs_the_export_price() -> None:
    # At 400 EUR/MWh import the boiler is cheaper; while the site exports at 40 it is not.
    dear = row(price_import_eur_per_mwh=400.0)
    (sp,) = correct_heat_pump(SITE, snap(80_000.0, grid_w=-5_000.0), dear, 4e5, HORIZON_S)
    assert sp.power_w == pytest.approx(20_000.0)


def test_the_measured_cop_counts() -> None:
    # The unit runs at COP 4 (not the plan's 3): 60 kW of heat need 15 kW.
    (sp,) = correct_heat_pump(SITE, snap(80_000.0, cop=4.0), row(), 400_000.0, HORIZON_S)
    assert sp.power_w == pytest.approx(15_000.0)


def test_lowered_when_the_store_would_overflow() -> None:
    # Demand 10 kW against the planned 50: the heat pump's 30 kW would push 20 kW into a
    # store with 100 Wh of room before the next correction (6 kW over 60 s): 16 kW of heat.
    full = SITE.heat.store_capacity_wh - 100.0
    (sp,) = correct_heat_pump(SITE, snap(10_000.0), row(), full, HORIZON_S)
    assert sp.power_w == pytest.approx(16_000.0 / COP)
    # With room in the store the surplus goes there, as planned.
    assert correct_heat_pump(SITE, snap(10_000.0), row(), 400_000.0, HORIZON_S) == []


def test_below_the_minimum_part_load_the_unit_stops_or_runs_at_it() -> None:
    floor_w = HP.min_part_load_pct / 100 * HP.max_el_w
    full = SITE.heat.store_capacity_wh
    # Lowered below the minimum: off.
    low = heat_pump_target_w(SITE, row(), 5_000.0, COP, full, HORIZON_S)
    assert low == 0.0
    # Raised from off to less than the minimum: the minimum.
    up = heat_pump_target_w(SITE, row(heat_pump_el_w=0.0, store_th_w=0.0), 6_000.0, COP, 0.0, 60)
    assert up == floor_w


def test_nothing_without_the_heat_meter_or_inside_the_deadband() -> None:
    assert correct_heat_pump(SITE, snap(None), row(), 400_000.0, HORIZON_S) == []
    # 51 kW against 50: 1 kW of heat is inside the site's deadband.
    assert correct_heat_pump(SITE, snap(51_000.0), row(), 400_000.0, HORIZON_S) == []


def test_back_to_the_plan_when_the_demand_returns_to_it() -> None:
    # The unit runs at the corrected 20 kW; the demand is back at the planned 50 kW.
    s = snap(50_000.0, el_w=20_000.0)
    (sp,) = correct_heat_pump(SITE, s, row(), 400_000.0, HORIZON_S)
    assert sp.power_w == pytest.approx(10_000.0)


def test_switched_off_by_the_site() -> None:
    site = SITE.model_copy(update={"run": SITE.run.model_copy(update={"heat_correction": False})})
    out = correction(site, row(), snap(80_000.0), {}, [], T0)
    assert out == []


@settings(max_examples=300, deadline=None)
@given(
    demand=st.floats(0.0, 2e6),
    planned_el=st.floats(0.0, 40_000.0),
    running_el=st.floats(0.0, 40_000.0),
    cop=st.floats(1.0, 8.0),
    store_frac=st.floats(0.0, 1.0),
    store_th=st.floats(-2e5, 2e5),
    boiler=st.floats(0.0, 4e5),
    price=st.floats(-500.0, 3000.0),
    grid=st.floats(-2e5, 3e5),
    waste=st.floats(0.0, 2e5),
    signal_cap=st.none() | st.floats(0.0, 40_000.0),
    import_cap=st.none() | st.floats(0.0, 2e5),
    spare=st.none() | st.floats(-1e6, 1e6),
)
def test_the_corrected_setpoint_never_leaves_the_rating_the_signals_or_the_limits(
    demand: float,
    planned_el: float,
    running_el: float,
    cop: float,
    store_frac: float,
    store_th: float,
    boiler: float,
    price: float,
    grid: float,
    waste: float,
    signal_cap: float | None,
    import_cap: float | None,
    spare: float | None,
) -> None:
    r = row(
        heat_pump_el_w=planned_el,
        heat_pump_cop=max(cop, 1.01),
        store_th_w=store_th,
        boiler_th_w=boiler,
        price_import_eur_per_mwh=price,
    )
    s = snap(demand, grid_w=grid, waste_w=waste, el_w=running_el, cop=cop)
    bounds = None
    if signal_cap is not None:
        bounds = {HP.id: [Bound(0.0, signal_cap, "grid-operator signal")]}
    caps = []
    if import_cap is not None:
        caps.append(OperatorCap("import", import_cap, T0, T0 + timedelta(hours=1)))
    store = store_frac * SITE.heat.store_capacity_wh
    # spare: the store's spare under run.heat_correction_rule = "spare" (None: "plan").
    out = correction(SITE, r, s, {}, caps, T0, bounds, store_wh=store, spare_wh=spare)
    for sp in out:
        if sp.kind != DeviceKind.HEAT_PUMP:
            continue
        assert 0.0 <= sp.power_w <= HP.max_el_w
        if signal_cap is not None:
            assert sp.power_w <= signal_cap + 1e-9
        if import_cap is not None and sp.power_w > running_el:
            # A raise never pushes the measured import past the operator's cap.
            assert grid + (sp.power_w - running_el) <= max(import_cap, grid) + 1e-6


def test_the_store_estimate_follows_the_measured_heat() -> None:
    # The plan's store ends the quarter hour at 400 kWh, its boiler making 20 kW; the network
    # takes 150 kW for 60 s while the heat pump makes 30: the store gives all 120 kW (the
    # boiler fires only when it is empty), 2 kWh, and loses 0.3 % an hour of its content.
    plan = {"store_wh": 400_000.0, "store_th_w": 0.0, "heat_pump_th_w": 30_000.0,
            "heat_demand_th_w": 50_000.0}  # fmt: skip
    est = StoreEstimate.for_site(SITE.heat, 400_000.0)
    est.on_poll(plan, 30_000.0, 60.0, 1.0, measured_demand_th_w=150_000.0)
    keep = (1 - SITE.heat.store_loss_pct_per_h / 100) ** (60 / 3600)
    assert est.energy_wh == pytest.approx(400_000.0 * keep - 120_000.0 * 60 / 3600)
    # Without the meter the estimate follows the plan and the heat pump only.
    est = StoreEstimate.for_site(SITE.heat, 400_000.0)
    est.on_poll(plan, 30_000.0, 60.0, 1.0)
    assert est.energy_wh == pytest.approx(400_000.0)


def test_a_demand_below_a_plan_that_burns_gas_does_not_fill_an_empty_store() -> None:
    # A winter hour: the plan empties the store and burns 300 kW; the network takes 100 kW
    # less than planned, the heat pump its planned 400 kW. The boiler makes 100 kW less; the
    # store, empty, stays empty (following the plan's boiler it would gain 100 kW for an
    # hour, heat that a correction would then count on).
    plan = {"store_wh": 0.0, "store_th_w": 0.0, "heat_pump_th_w": 400_000.0,
            "heat_demand_th_w": 800_000.0, "boiler_th_w": 400_000.0}  # fmt: skip
    est = StoreEstimate.for_site(SITE.heat, 0.0)
    for _ in range(360):
        est.on_poll(plan, 400_000.0, 10.0, 0.5, measured_demand_th_w=700_000.0)
    assert est.energy_wh == 0.0
    # The heat pump making more than the network takes does fill it, within its rating.
    est.on_poll(plan, 400_000.0, 60.0, 0.5, measured_demand_th_w=100_000.0)
    assert est.energy_wh == pytest.approx(SITE.heat.store_max_charge_th_w * 60 / 3600)


def test_not_raised_to_the_minimum_part_load_into_a_full_store() -> None:
    # From off, 6 kW of heat more than planned is asked; the minimum part load would make
    # more heat than the network takes and the store is full: the unit stays off.
    floor_w = HP.min_part_load_pct / 100 * HP.max_el_w
    assert COP * floor_w > 6_000.0
    full = SITE.heat.store_capacity_wh
    off = heat_pump_target_w(SITE, row(heat_pump_el_w=0.0, store_th_w=0.0), 6_000.0, COP, full, 60)
    assert off == 0.0


@settings(max_examples=200, deadline=None)
@given(
    planned=st.floats(0.0, 60_000.0),
    store_th=st.floats(-40_000.0, 40_000.0),
    demand=st.floats(0.0, 200_000.0),
    room_wh=st.floats(0.0, 5_000.0),
    cop=st.floats(1.5, 6.0),
)
def test_never_raised_above_the_plan_into_heat_the_store_cannot_take(
    planned: float, store_th: float, demand: float, room_wh: float, cop: float
) -> None:
    """Whatever the demand: where the correction raises the heat pump above the plan, its heat
    goes to the network or into the store's room until the next correction, no more."""
    store_wh = SITE.heat.store_capacity_wh - room_wh
    r = row(heat_pump_el_w=planned, store_th_w=store_th, boiler_th_w=0.0)
    target = heat_pump_target_w(SITE, r, demand, cop, store_wh, HORIZON_S)
    assert 0.0 <= target <= HP.max_el_w
    planned_w = min(planned, HP.max_el_w)
    if target > planned_w + 1e-6:
        charge_w = min(room_wh * 3600.0 / HORIZON_S, SITE.heat.store_max_charge_th_w)
        into_store = cop * target - demand
        assert into_store <= max(charge_w, -store_th) + 1e-6
