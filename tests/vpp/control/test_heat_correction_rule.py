"""The heat correction's ``"spare"`` rule: where the measured heat demand exceeds the plan,
the store gives what it holds above what the plan needs of it until its next recharge, and
the heat pump is raised only for the rest (``"plan"``: the store keeps to the plan's
discharge and the heat pump makes all of the difference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.snapshot import Snapshot
from vpp.control.cycle import correction
from vpp.control.dispatch import (
    boiler_eur_per_mwh_th,
    heat_pump_eur_per_mwh_th,
    heat_pump_setpoint,
    heat_pump_target_w,
    plan_store_ahead,
    store_spare_wh,
)
from vpp.core.site import DeviceKind, HeatPumpDevice, Site, parse_site
from vpp.core.site_load import ConfigError
from vpp.testing.harness import small_site

from .snapshots import T0, heat_snapshot, plan_row

SITE = small_site()
_HP = SITE.heat_pump
assert _HP is not None and SITE.datacentre is not None
HP: HeatPumpDevice = _HP
COP = 3.0
HORIZON_S = 60.0
STEP_H = 0.25
CAP = SITE.heat.store_capacity_wh
MAX_DIS = SITE.heat.store_max_discharge_th_w


def with_rule(rule: str) -> Site:
    run = SITE.run.model_copy(update={"heat_correction_rule": rule})
    return SITE.model_copy(update={"run": run})


def trajectory(start_wh: float, flows_w: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """A plan's store energy at each step's end [Wh] and net discharge [W] (no loss)."""
    flow = np.asarray(flows_w, dtype=float)
    return start_wh - np.cumsum(flow) * STEP_H, flow


def row(**values: float) -> pd.Series:
    """An evening plan step: the heat pump at 5 kW (15 kW of heat), the store giving 35 kW,
    no boiler; the heat pump's heat cheaper than the boiler's."""
    return plan_row(5_000.0, 35_000.0, **values)


def snap(demand_w: float, el_w: float = 5_000.0, **other: float) -> Snapshot:
    return heat_snapshot(SITE, demand_w, el_w, **other)


# -- what the plan needs of the store -------------------------------------------------------


def test_the_need_runs_to_the_next_recharge() -> None:
    # 500 kWh now; the plan gives 40 kW for 2 h (80 kWh), then charges 60 kW for 2 h, then
    # gives 100 kW for 4 h (400 kWh). Until the recharge it needs 80 kWh: 420 kWh spare.
    energy, flow = trajectory(500_000.0, [40_000.0] * 8 + [-60_000.0] * 8 + [100_000.0] * 16)
    assert store_spare_wh(500_000.0, energy, flow, 0.0) == pytest.approx(420_000.0)
    # The estimate 30 kWh below the plan: 30 kWh less to spare.
    assert store_spare_wh(470_000.0, energy, flow, 0.0) == pytest.approx(390_000.0)
    # Half of the first step gone: the plan's level now is 5 kWh lower, and so is its need.
    assert store_spare_wh(495_000.0, energy, flow, 0.5) == pytest.approx(420_000.0)


def test_a_charge_before_the_discharge_does_not_end_the_window() -> None:
    # Charging now (+120 kWh in 2 h), then giving 150 kW for 4 h (-600 kWh) down to 20 kWh,
    # then recharging: the store has 20 kWh to spare, not its 500.
    energy, flow = trajectory(500_000.0, [-60_000.0] * 8 + [150_000.0] * 16 + [-50_000.0] * 8)
    assert float(energy.min()) == pytest.approx(20_000.0)
    assert store_spare_wh(500_000.0, energy, flow, 0.0) == pytest.approx(20_000.0)


def test_a_plan_that_empties_the_store_leaves_nothing_to_spare() -> None:
    energy, flow = trajectory(200_000.0, [50_000.0] * 16 + [0.0] * 8)
    assert store_spare_wh(200_000.0, energy, flow, 0.0) == pytest.approx(0.0, abs=1e-6)
    # Below the plan: less than nothing (the store is already short of what the plan needs).
    assert store_spare_wh(190_000.0, energy, flow, 0.0) == pytest.approx(-10_000.0)


def test_a_plan_that_never_discharges_spares_all_it_holds() -> None:
    energy, flow = trajectory(300_000.0, [0.0] * 4 + [-40_000.0] * 8)
    assert store_spare_wh(300_000.0, energy, flow, 0.0) == pytest.approx(300_000.0)
    assert store_spare_wh(300_000.0, np.zeros(0), np.zeros(0), 0.0) == 0.0


def test_the_plans_store_ahead_is_read_from_the_step_now_to_the_end() -> None:
    index = pd.date_range(T0 - pd.Timedelta(minutes=30), periods=8, freq="15min")
    energy, flow = trajectory(400_000.0, [10_000.0] * 8)
    frame = pd.DataFrame({"store_wh": energy, "store_th_w": flow}, index=index)
    frame.loc[index[-1], "store_wh"] = np.nan  # a step the plan did not fill ends it
    got_e, got_f = plan_store_ahead(frame, T0 + pd.Timedelta(minutes=7))
    assert list(got_e) == list(energy[2:7]) and list(got_f) == list(flow[2:7])
    assert plan_store_ahead(frame[["store_wh"]], T0)[0].size == 0


# -- the rule against main's ----------------------------------------------------------------


def test_the_store_covers_the_excess_from_its_spare_where_the_old_rule_raised_the_pump() -> None:
    """A summer evening: the plan gives 35 kW from a store with 600 kWh and a trough of 450
    kWh before the next midday recharge; the network takes 30 kW more than planned. The old
    rule (``"plan"``) buys that heat now from the heat pump; the new one takes it from the
    store's spare and leaves the heat pump at the plan."""
    energy, flow = trajectory(600_000.0, [35_000.0] * 16 + [25_000.0] * 16 + [-80_000.0] * 8)
    spare = store_spare_wh(600_000.0, energy, flow, 0.0)
    assert spare == pytest.approx(600_000.0 - 35_000.0 * 4 - 25_000.0 * 4)
    r, s = row(), snap(80_000.0)
    assert heat_pump_eur_per_mwh_th(SITE, r, COP) < boiler_eur_per_mwh_th(SITE)
    old = correction(with_rule("plan"), r, s, {}, [], T0, store_wh=600_000.0)
    (raised,) = [sp for sp in old if sp.kind == DeviceKind.HEAT_PUMP]
    assert raised.power_w == pytest.approx((80_000.0 - 35_000.0) / COP)
    new = correction(with_rule("spare"), r, s, {}, [], T0, store_wh=6e5, spare_wh=spare)
    assert [sp for sp in new if sp.kind == DeviceKind.HEAT_PUMP] == []


def test_without_a_spare_the_heat_pump_is_raised_as_before() -> None:
    # The plan empties the store by morning: nothing to spare, the heat pump makes it all.
    # (35 kW for 8 h from 280 kWh), and the store holds 20 kWh less than the plan says.
    energy, flow = trajectory(280_000.0, [35_000.0] * 32 + [-80_000.0] * 8)
    spare = store_spare_wh(280_000.0 - 20_000.0, energy, flow, 0.0)
    assert spare == pytest.approx(-20_000.0)
    target = heat_pump_target_w(SITE, row(), 80_000.0, COP, 3e5, HORIZON_S, spare_wh=spare)
    assert target == pytest.approx((80_000.0 - 35_000.0) / COP)


def test_a_small_spare_covers_part_and_the_heat_pump_the_rest() -> None:
    # 250 Wh to spare over the next 60 s is 15 kW; of the 30 kW excess the heat pump makes 15.
    target = heat_pump_target_w(SITE, row(), 80_000.0, COP, 3e5, HORIZON_S, spare_wh=250.0)
    assert target == pytest.approx((80_000.0 - 35_000.0 - 15_000.0) / COP)


def test_the_store_gives_no_more_than_its_discharge_rating() -> None:
    # A full spare, the plan already giving 140 of the store's 150 kW: 10 kW more at most;
    # of a demand 50 kW above the plan's store discharge the heat pump makes the other 40.
    r = row(store_th_w=MAX_DIS - 10_000.0, heat_pump_el_w=0.0)
    target = heat_pump_target_w(SITE, r, MAX_DIS + 40_000.0, COP, CAP, HORIZON_S, spare_wh=CAP)
    assert target == pytest.approx(40_000.0 / COP)


def test_a_bad_rule_names_the_field() -> None:
    data = SITE.model_dump(mode="json")
    data["run"]["heat_correction_rule"] = "store-first"
    with pytest.raises(ConfigError, match=r"run\.heat_correction_rule: Input should be 'plan'"):
        parse_site(data)
    assert SITE.run.heat_correction_rule == "spare"


# -- invariants -----------------------------------------------------------------------------


@st.composite
def plans(draw: st.DrawFn) -> tuple[float, np.ndarray, np.ndarray]:
    """A plan's store: a start level and net flows that keep it within 0..capacity."""
    start = draw(st.floats(0.0, CAP))
    steps = draw(st.integers(1, 48))
    level, flows = start, []
    for _ in range(steps):
        lo = max(-SITE.heat.store_max_charge_th_w, (level - CAP) / STEP_H)
        hi = min(MAX_DIS, level / STEP_H)
        step_flow = draw(st.sampled_from([0.0, lo, hi]) | st.floats(lo, hi))
        level -= step_flow * STEP_H
        flows.append(step_flow)
    energy, flow = trajectory(start, flows)
    return start, np.clip(energy, 0.0, CAP), flow


@settings(max_examples=300, deadline=None)
@given(plan=plans(), drift=st.floats(-CAP, CAP), elapsed=st.floats(0.0, 1.0))
def test_the_spare_never_takes_the_store_below_what_the_plan_needs(
    plan: tuple[float, np.ndarray, np.ndarray], drift: float, elapsed: float
) -> None:
    """Given its spare now, the store still gives every discharge the plan asks of it until
    its next recharge: the plan's trajectory moved by the estimate's departure from it and
    by the spare stays >= 0 up to that recharge, and touches 0 unless the plan never dips
    below its level now (the store then spares what it holds)."""
    _, energy, flow = plan
    e_now = float(energy[0]) + float(flow[0]) * (1.0 - elapsed) * STEP_H
    store = min(max(e_now + drift, 0.0), CAP)
    spare = store_spare_wh(store, energy, flow, elapsed)
    first = np.flatnonzero(flow > 1.0)
    end = len(flow)
    if first.size:
        later = np.flatnonzero(flow[first[0] + 1 :] < -1.0)
        end = int(first[0] + 1 + later[0]) if later.size else end
    after = energy[:end] + (store - e_now) - spare
    assert after.min() >= -1e-6
    assert spare <= store + 1e-6
    if energy[:end].min() < e_now:
        assert after.min() == pytest.approx(0.0, abs=1e-6)
    else:
        assert spare == pytest.approx(store)


@settings(max_examples=400, deadline=None)
@given(
    demand=st.floats(0.0, 400_000.0),
    planned_el=st.floats(0.0, 30_000.0),
    store_th=st.floats(-150_000.0, 150_000.0),
    cop=st.floats(1.5, 6.0),
    store_frac=st.floats(0.0, 0.99),
    spare=st.none() | st.floats(-CAP, CAP),
    waste=st.floats(0.0, 2e5),
    price=st.floats(-200.0, 600.0),
)
def test_the_store_gives_no_more_than_its_spare_and_the_heat_pump_makes_the_rest(
    demand: float,
    planned_el: float,
    store_th: float,
    cop: float,
    store_frac: float,
    spare: float | None,
    waste: float,
    price: float,
) -> None:
    """Never above the rating or what the waste heat feeds; where the heat pump's heat is
    cheaper than the boiler's and the unit has headroom, the store is asked for no more than
    the plan's discharge and its spare over the interval, and the heat balances: heat pump +
    the plan's store discharge + the store's share of the spare = the demand measured. (The
    store keeps room for a full charge over the interval: a full store is the overflow rule's.)"""
    r = row(heat_pump_el_w=planned_el, store_th_w=store_th, price_import_eur_per_mwh=price)
    store = store_frac * CAP
    found = heat_pump_setpoint(SITE, snap(demand, waste_w=waste, cop=cop), r, store, 60.0, spare)
    assert found is not None
    target, used_cop, _ = found
    assert used_cop == pytest.approx(cop)
    assert 0.0 <= target <= HP.max_el_w + 1e-9
    assert target <= waste / (cop - 1.0) + 1e-6
    allowed = (
        0.0 if spare is None else min(max(spare, 0.0) * 3600.0 / 60.0, max(0.0, MAX_DIS - store_th))
    )
    planned = min(planned_el, HP.max_el_w)
    cap = min(HP.max_el_w, waste / (cop - 1.0))
    cheaper = heat_pump_eur_per_mwh_th(SITE, r, cop) < boiler_eur_per_mwh_th(SITE)
    floor_w = HP.min_part_load_pct / 100.0 * HP.max_el_w
    asked = demand - store_th - cop * target  # what the store gives beyond the plan
    if cheaper and target < cap - 1e-6 and target > 0.0:
        assert asked <= allowed + 1e-6 * max(1.0, demand)
    if target > planned + 1e-6 and floor_w < target < cap - 1e-6:
        # Raised: exactly the rest after the plan's discharge and the spare's share.
        assert cop * target + store_th + allowed == pytest.approx(demand, rel=1e-9, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(
    demand=st.floats(0.0, 400_000.0),
    spare=st.floats(-CAP, CAP),
    store_th=st.floats(-150_000.0, 150_000.0),
)
def test_the_spare_only_ever_lowers_the_raise(demand: float, spare: float, store_th: float) -> None:
    """With a spare the heat pump is never asked for more than under the old rule."""
    r = row(store_th_w=store_th)
    old = heat_pump_target_w(SITE, r, demand, COP, 4e5, HORIZON_S)
    new = heat_pump_target_w(SITE, r, demand, COP, 4e5, HORIZON_S, spare_wh=spare)
    assert new <= old + 1e-9
    if spare <= 0.0:
        assert new == old
