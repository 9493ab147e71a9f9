"""Waste heat beyond the plan's stored where the plan values stored heat above what the heat
pump's heat costs now (``vpp.control.dispatch.stored_waste_el_w``): the plan set the heat
pump for the waste heat it expected; when the data centre offers more (a batch job, a warm
hall), the heat pump takes it into the store as far as the store has room, and never where
the plan's own value of a stored MWh is below the heat's cost."""

from __future__ import annotations

import pandas as pd
import pytest

from adapters.snapshot import Snapshot
from vpp.control.dispatch import (
    heat_pump_eur_per_mwh_th,
    heat_pump_setpoint,
    stored_waste_el_w,
)
from vpp.core.site import HeatPumpDevice
from vpp.testing.harness import small_site

from .snapshots import heat_snapshot, plan_row

SITE = small_site()
_HP = SITE.heat_pump
assert _HP is not None
HP: HeatPumpDevice = _HP
COP = 3.0
HORIZON_S = 60.0
#: The plan: the heat pump at 10 kW (30 kW of heat) for all the waste heat it expected
#: (20 kW), the demand 50 kW, the store giving 20 kW.
PLANNED_EL_W = 10_000.0


#: The store's content: half of the small site's 800 kWh.
STORE_WH = 400_000.0


def row(value_store: float, **values: float) -> pd.Series:
    return plan_row(PLANNED_EL_W, 20_000.0, value_store_eur_per_mwh=value_store, **values)


def snap(waste_w: float, demand_w: float = 50_000.0) -> Snapshot:
    return heat_snapshot(SITE, demand_w, PLANNED_EL_W, waste_w=waste_w)


def cost() -> float:
    return heat_pump_eur_per_mwh_th(SITE, row(0.0), COP)


def test_more_waste_heat_than_planned_is_stored_where_the_plan_values_it() -> None:
    # 30 kW of waste heat feeds 15 kW electric at COP 3 (source = (COP - 1) * el): 45 kW of
    # heat, 15 kW more than planned, into a store with room.
    found = heat_pump_setpoint(SITE, snap(30_000.0), row(cost() + 5.0), STORE_WH, HORIZON_S)
    assert found is not None
    assert found[0] == pytest.approx(15_000.0)


def test_not_where_the_plan_values_stored_heat_below_its_cost() -> None:
    found = heat_pump_setpoint(SITE, snap(30_000.0), row(cost() - 5.0), STORE_WH, HORIZON_S)
    assert found is not None
    assert found[0] == pytest.approx(PLANNED_EL_W)


def test_the_store_room_until_the_next_correction_caps_it() -> None:
    # 40 kW of waste heat would feed the rating (20 kW); 100 Wh of room in 60 s takes 6 kW
    # more than the demand: 56 kW of heat, 18.67 kW. A full store takes none: the heat pump
    # makes the demand and the store keeps what the plan had it give.
    full = SITE.heat.store_capacity_wh - 100.0
    found = heat_pump_setpoint(SITE, snap(40_000.0), row(cost() + 5.0), full, HORIZON_S)
    assert found is not None
    assert found[0] == pytest.approx(56_000.0 / COP)
    at_capacity = SITE.heat.store_capacity_wh
    assert stored_waste_el_w(
        SITE, row(cost() + 5.0), 50_000.0, COP, at_capacity, HORIZON_S, False, 20_000.0
    ) == pytest.approx(50_000.0 / COP)


def test_nothing_without_the_store_content_or_the_plan_value() -> None:
    args = (50_000.0, COP)
    assert stored_waste_el_w(SITE, row(1e3), *args, None, HORIZON_S, False, 2e4) == 0.0
    no_value = plan_row(PLANNED_EL_W, 20_000.0)
    assert stored_waste_el_w(SITE, no_value, *args, STORE_WH, HORIZON_S, False, 2e4) == 0.0
    nan_value = row(float("nan"))
    assert stored_waste_el_w(SITE, nan_value, *args, STORE_WH, HORIZON_S, False, 2e4) == 0.0


def test_below_the_minimum_part_load_it_does_not_start_the_unit() -> None:
    floor_w = HP.min_part_load_pct / 100.0 * HP.max_el_w
    assert floor_w > 0
    reach = 0.5 * floor_w
    assert stored_waste_el_w(SITE, row(1e3), 0.0, COP, STORE_WH, HORIZON_S, False, reach) == 0.0


def test_never_above_the_rating() -> None:
    found = heat_pump_setpoint(SITE, snap(1e7), row(1e4), 0.0, HORIZON_S)
    assert found is not None
    assert found[0] == pytest.approx(HP.max_el_w)


def test_switched_off_by_the_site() -> None:
    off = SITE.model_copy(update={"run": SITE.run.model_copy(update={"heat_store_waste": False})})
    found = heat_pump_setpoint(off, snap(30_000.0), row(cost() + 5.0), STORE_WH, HORIZON_S)
    assert found is not None
    assert found[0] == pytest.approx(PLANNED_EL_W)


def test_not_where_the_plan_cools_waste_heat_away_itself() -> None:
    # A plan that dry-cools part of the waste heat it expected runs its heat pump below its
    # reach: the store's value there is the heat's cost, and more waste heat is not wanted.
    cooling = row(cost() + 5.0, dry_cooler_th_w=8_000.0)
    found = heat_pump_setpoint(SITE, snap(30_000.0), cooling, STORE_WH, HORIZON_S)
    assert found is not None
    assert found[0] == pytest.approx(PLANNED_EL_W)
