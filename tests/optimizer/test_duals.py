"""Shadow prices of the plan's LP (optimizer.duals) and the reasons read from them
(vpp.control.why), with real HiGHS: they are the marginal costs the plan itself shows, a cap
that binds gives the cap's reason, a price spread the charging reason, for LP and
mixed-integer plans alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.plan import DUAL_COLUMNS, Plan
from optimizer.planner import Planner
from tests.optimizer.conftest import START, battery, make_forecast, make_site, pv
from vpp.control.why import explain
from vpp.core.site import Site

# 8 quarter hours: cheap, then dear; 01:00 UTC is 02:00 in Berlin in March.
CHEAP, DEAR = 20.0, 150.0
PRICES = [CHEAP] * 4 + [DEAR] * 4


def _site(**kw: object) -> Site:
    bat = battery("b1", capacity_wh=20_000, power_w=8_000, soc_initial_pct=10.0)
    return make_site([bat], horizon_h=2, **kw)  # type: ignore[arg-type]


def _plan(site: Site, forecast: pd.DataFrame, milp: bool = False) -> Plan:
    plan = Planner(site, options=SolveOptions(milp=milp)).plan(
        State.from_site(site), forecast, START
    )
    assert plan.info.status == "optimal"
    return plan


@pytest.mark.parametrize("milp", [False, True])
def test_a_price_spread_gives_the_charging_reason(milp: bool) -> None:
    site = _site()
    forecast = make_forecast(
        8, load_w=10_000.0, price_import_eur_per_mwh=PRICES, price_export_eur_per_mwh=0.0
    )
    plan = _plan(site, forecast, milp)
    f = plan.frame
    assert plan.info.duals_s is not None
    # electricity is worth its import price: the plan imports in every step, no cap binds
    assert np.allclose(f["value_el_eur_per_mwh"], PRICES, atol=1e-6)
    assert (f["battery_w"].iloc[:4] < -500).all() and (f["battery_w"].iloc[4:] > 500).all()
    stored = f["value_stored_eur_per_mwh"].iloc[0]
    eta = 0.95
    # charging pays: a MWh bought at 20 is worth 20/eta stored at least, 150*eta at most
    assert CHEAP / eta - 1e-6 <= stored <= DEAR * eta + 1e-6
    why = explain(f, site)
    assert why[0].source == "duals"
    assert (
        why[0].battery
        == f"charging: 20 EUR/MWh now against 150 at 02:00 (stored energy worth {stored:.0f})"
    )
    assert why[4].battery is not None and why[4].battery.startswith("discharging: 150 EUR/MWh now")
    assert why[0].grid is None


@pytest.mark.parametrize("milp", [False, True])
def test_a_binding_import_cap_gives_the_cap_reason(milp: bool) -> None:
    """Flat prices, a 20 kW operator cap over 24 kW of load in the last hour: the batteries
    must carry 4 kW there, bought earlier and losing 10 % on the way, so more import at the
    cap would save money: the cap binds with a positive shadow price."""
    site = _site()
    load = [10_000.0] * 4 + [24_000.0] * 4
    cap = [1e6] * 4 + [20_000.0] * 4
    forecast = make_forecast(8, load_w=load, import_limit_w=cap, price_export_eur_per_mwh=0.0)
    plan = _plan(site, forecast, milp)
    f = plan.frame
    assert np.allclose(f["grid_import_w"].iloc[4:], 20_000.0, atol=1.0)
    shadow = f["import_cap_value_eur_per_mwh"]
    assert (shadow.iloc[4:] > 1.0).all() and (shadow.iloc[:4] == 0.0).all()
    # what a looser cap saves: the stored energy's worth above the import price
    assert shadow.iloc[4] == pytest.approx(f["value_el_eur_per_mwh"].iloc[4] - 100.0, abs=1e-6)
    why = explain(f, site)
    assert why[4].grid is not None
    assert why[4].grid.startswith("import held at the operator or grid cap 20 kW: ")
    assert why[0].grid is None


def test_the_duals_are_the_plans_marginal_costs() -> None:
    """One more kW of load in a step costs what the electricity dual says (re-planned)."""
    site = _site()
    base = make_forecast(8, load_w=10_000.0, price_import_eur_per_mwh=PRICES)
    f = _plan(site, base).frame
    t, extra_w = 5, 1_000.0
    more = base.copy()
    more.iloc[t, more.columns.get_loc("load_w")] += extra_w
    g = _plan(site, more).frame
    cost = g["cost_import_eur"].sum() - f["cost_import_eur"].sum()
    expected = f["value_el_eur_per_mwh"].iloc[t] * extra_w * 0.25 / 1e6
    assert cost == pytest.approx(expected, rel=1e-3)


def test_a_plan_without_duals_is_explained_from_its_values() -> None:
    site = _site()
    forecast = make_forecast(8, load_w=10_000.0, price_import_eur_per_mwh=PRICES)
    plan = Planner(site, options=SolveOptions(force_failure=True)).plan(
        State.from_site(site), forecast, START
    )
    assert plan.info.status == "fallback" and plan.info.duals_s is None
    assert not set(DUAL_COLUMNS) & set(plan.frame.columns)
    why = explain(plan.frame, site)
    assert all(w.source == "plan" for w in why)


@pytest.mark.parametrize("milp", [False, True])
def test_a_signal_cap_on_pv_gives_the_signal_reason(milp: bool) -> None:
    """An inverter whose feed-in a grid-operator signal caps at 3 kW (its ``.cap_w``
    column, as the controller writes it) while the sun gives 8 kW and the site takes it
    all: the plan says how much the cap holds back and what it is worth."""
    site = make_site([pv("pv1", rated_w=10_000, peak_wp=10_000)], horizon_h=2)
    forecast = make_forecast(8, load_w=20_000.0, pv_w_per_kwp=800.0)
    forecast["pv1.cap_w"] = [10_000.0] * 4 + [3_000.0] * 4
    f = _plan(site, forecast, milp).frame
    cut = f["pv_cap_cut_w"]
    assert np.allclose(cut.iloc[:4], 0.0) and (cut.iloc[4:] > 4_000).all()
    assert np.allclose(f["pv_w"].iloc[4:], 3_000.0, atol=1.0)
    why = explain(f, site)
    assert why[0].pv is None
    expected = (
        f"PV held at its signal caps: {cut.iloc[4] / 1e3:.0f} kW of sun unused, worth 100 EUR/MWh"
    )
    assert why[4].pv == expected
    # without duals (a fallback-like table) the same cap is named, without its worth
    plain = explain(f.drop(columns=list(DUAL_COLUMNS)), site)
    assert plain[4].pv == f"PV held at its signal caps: {cut.iloc[4] / 1e3:.0f} kW of sun unused"


def test_stored_energy_has_its_own_value_in_each_step() -> None:
    """Dear first, then cheap, the battery at its window's floor: energy stored by the end
    of a dear step could still be sold into it (worth the dear price, less the discharge
    loss); from the first cheap step on it is worth only what it saves against cheap
    imports. The column is per step, not one value for the whole horizon."""
    prices = [DEAR] * 2 + [CHEAP] * 6
    forecast = make_forecast(
        8, load_w=10_000.0, price_import_eur_per_mwh=prices, price_export_eur_per_mwh=0.0
    )
    stored = _plan(_site(), forecast).frame["value_stored_eur_per_mwh"].to_numpy()
    # sold at 0.95 per MWh stored, less the wear on it (20 EUR per MWh discharged)
    assert stored[:2] == pytest.approx([DEAR * 0.95 - 20.0 * 0.95] * 2, abs=1e-6)
    assert (stored[2:] < CHEAP).all()
    assert stored[0] > 5 * stored[-1]
