"""Reasons read from a plan table: binding limits, curtailment and price spreads, on plans
built to show each one and on a real plan of the demo district."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.inputs import State
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast
from vpp.control.why import explain
from vpp.core.site import Site
from vpp.testing.harness import small_site

STEPS = pd.date_range("2026-06-21T00:00Z", periods=8, freq="15min")


def frame(**cols: list[float]) -> pd.DataFrame:
    base = {
        "battery_w": [0.0] * 8,
        "price_import_eur_per_mwh": [100.0] * 8,
        "price_export_eur_per_mwh": [20.0] * 8,
        "pv_w": [0.0] * 8,
        "pv_available_w": [0.0] * 8,
        "grid_import_w": [50_000.0] * 8,
        "grid_export_w": [0.0] * 8,
        "import_cap_w": [120_000.0] * 8,
        "export_cap_w": [80_000.0] * 8,
        "heat_pump_el_w": [0.0] * 8,
        "heat_pump_th_w": [0.0] * 8,
        "waste_heat_th_w": [0.0] * 8,
        "boiler_th_w": [0.0] * 8,
        "store_th_w": [0.0] * 8,
    }
    base.update(cols)
    return pd.DataFrame(base, index=STEPS)


@pytest.fixture(scope="module")
def site() -> Site:
    return small_site()


def test_charging_and_discharging_name_the_spread(site: Site) -> None:
    prices = [40.0, 41.0, 90.0, 120.0, 150.0, 110.0, 80.0, 60.0]
    bat = [-10_000.0, -10_000.0, 0.0, 0.0, 12_000.0, 0.0, 0.0, 0.0]
    why = explain(frame(battery_w=bat, price_import_eur_per_mwh=prices), site)
    # 04:00 UTC is 06:00 in Leipzig in June.
    assert why[0].battery == "charging: 40 EUR/MWh now against 150 at 03:00"
    assert (
        why[4].battery
        == "discharging: 150 EUR/MWh now, the stored energy is worth less by the end of the plan"
    )
    assert why[2].battery is None and why[2].text.startswith("nothing to shift")


def test_limits_that_bind(site: Site) -> None:
    hp_max = site.heat_pump.max_el_w if site.heat_pump else 0.0
    why = explain(
        frame(
            pv_w=[60_000.0] * 8,
            pv_available_w=[90_000.0] * 8,
            grid_export_w=[80_000.0] * 8,
            grid_import_w=[0.0] * 8,
            heat_pump_el_w=[hp_max] * 8,
            heat_pump_th_w=[3 * hp_max] * 8,
            waste_heat_th_w=[5 * hp_max] * 8,
            boiler_th_w=[100_000.0] * 8,
        ),
        site,
    )
    assert why[0].pv == "PV curtailed by 30 kW: held at the export cap 80 kW"
    assert why[0].heat == "boiler on: heat pump at its rating"
    capped = explain(frame(grid_import_w=[60_000.0] * 8, import_cap_w=[60_000.0] * 8), site)
    assert capped[0].grid == "import held at the operator or grid cap 60 kW"
    negative = explain(
        frame(pv_w=[1e4] * 8, pv_available_w=[3e4] * 8, price_export_eur_per_mwh=[-12.0] * 8),
        site,
    )
    assert negative[0].pv == "PV curtailed by 20 kW: export price -12 EUR/MWh"


def test_a_real_plan_has_a_reason_for_every_step(site: Site) -> None:
    start = pd.Timestamp("2026-06-21T00:00Z")
    forecast = synthetic_forecast(site, start, 96)
    plan = Planner(site).plan(State.from_site(site), forecast, start)
    assert plan.info.status == "optimal"
    why = explain(plan.frame, site)
    assert len(why) == len(plan.frame)
    f = plan.frame
    for w, (_, row) in zip(why, f.iterrows(), strict=True):
        assert w.text
        if row["battery_w"] < -500:
            assert w.battery is not None and w.battery.startswith("charging")
        if row["battery_w"] > 500:
            assert w.battery is not None and w.battery.startswith("discharging")
        if row["pv_available_w"] - row["pv_w"] > 500:
            assert w.pv is not None and "curtailed" in w.pv
        if row["boiler_th_w"] > 500:
            assert w.heat is not None and w.heat.startswith("boiler on")
    # The synthetic day has an evening price peak: the batteries shift energy into it.
    assert any(w.battery and w.battery.startswith("charging") for w in why)
    assert any(w.battery and w.battery.startswith("discharging") for w in why)


_W = st.floats(min_value=0.0, max_value=200_000.0, allow_nan=False)
_COL = st.lists(_W, min_size=8, max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    hp_el=_COL,
    hp_th=_COL,
    boiler=_COL,
    store=st.lists(st.floats(-50_000.0, 50_000.0), min_size=8, max_size=8),
    battery=st.lists(st.floats(-20_000.0, 20_000.0), min_size=8, max_size=8),
    prices=st.lists(st.floats(-100.0, 400.0), min_size=8, max_size=8),
)
def test_any_plan_table_gets_reasons_without_error(
    hp_el: list[float],
    hp_th: list[float],
    boiler: list[float],
    store: list[float],
    battery: list[float],
    prices: list[float],
) -> None:
    """Reasons never fail on a table, whatever its values (a heat pump drawing power with no
    heat output while the store fills once raised a TypeError)."""
    site = small_site()
    why = explain(
        frame(
            heat_pump_el_w=hp_el,
            heat_pump_th_w=hp_th,
            boiler_th_w=boiler,
            store_th_w=store,
            battery_w=battery,
            price_import_eur_per_mwh=prices,
        ),
        site,
    )
    assert len(why) == 8
    assert all(w.text for w in why)


def test_heat_pump_without_heat_output_filling_the_store(site: Site) -> None:
    why = explain(
        frame(heat_pump_el_w=[5_000.0] * 8, heat_pump_th_w=[0.0] * 8, store_th_w=[-3_000.0] * 8),
        site,
    )
    assert why[0].heat == "heat pump filling the store"
