"""Active signals as constraints of the next plan, solved with HiGHS: per-device caps, the
§14a floor, zero export at negative prices and grid caps hold in the plan itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.inputs import DEVICE_CAP_SUFFIX, State
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast
from vpp.control.cycle import plan_limits
from vpp.core.site import Site, parse_site
from vpp.signals import Signal, SignalKind
from vpp.signals.plan import plan_caps
from vpp.signals.rules import FLOOR_14A_W, ems_floor_w
from vpp.signals.standing import negative_price_signals, solarspitzen_cap, spot_from_forecast
from vpp.testing.harness import small_site

START = pd.Timestamp("2026-06-21 04:00", tz="UTC")
STEPS = 48
TOL_W = 1.0


def site_under_rules() -> Site:
    """Two new PV systems without gateway, every battery and the heat pump under §14a."""
    data = small_site().model_dump(mode="json")
    pvs = [d for d in data["devices"] if d["kind"] == "pv"]
    for d in pvs[:2]:
        d["commissioned_on"] = "2025-06-01"
    for d in data["devices"]:
        if d["kind"] in ("battery", "heat_pump"):
            d["enwg_14a"] = True
    data["optimizer"]["horizon_h"] = 12
    return parse_site(data, "<rules>")


def forecast_with_negative_noon(site: Site) -> pd.DataFrame:
    f = synthetic_forecast(site, START, STEPS, seed=3)
    noon = (f.index.hour >= 10) & (f.index.hour < 13)
    f.loc[noon, "price_export_eur_per_mwh"] = -30.0 - site.grid.export_fee_eur_per_mwh
    f.loc[noon, "price_import_eur_per_mwh"] = -30.0 + site.grid.import_fee_eur_per_mwh
    return f


def solve(site: Site, forecast: pd.DataFrame, signals: list[Signal]) -> Any:
    limited = plan_limits(site, forecast, [], signals)
    return Planner(site).plan(State.from_site(site), limited, START), limited


def test_caps_reach_the_plan_per_step_and_device() -> None:
    site = site_under_rules()
    forecast = forecast_with_negative_noon(site)
    t = START.to_pydatetime()
    dim = Signal(
        "box-1",
        SignalKind.CONSUMPTION,
        t + timedelta(hours=2),
        t + timedelta(hours=5, minutes=7),  # ends inside a step: that step is capped too
        limit_w=0.0,
    )
    signals = [
        *solarspitzen_cap(site, t),
        *negative_price_signals(site, spot_from_forecast(site, forecast)),
        dim,
    ]
    plan, limited = solve(site, forecast, signals)
    assert plan.info.status == "optimal"
    f = plan.frame
    # The 60 % cap of the two new systems, in every step.
    for pv in site.pv[:2]:
        assert (f[f"{pv.id}.pv_w"] <= 0.6 * pv.dc_peak_w + TOL_W).all()
        assert limited[f"{pv.id}{DEVICE_CAP_SUFFIX}"].eq(0.6 * pv.dc_peak_w).all()
    for pv in site.pv[2:]:
        assert f"{pv.id}{DEVICE_CAP_SUFFIX}" not in limited
    # The §14a dim: each battery charges at most its floor, the heat pump (20 kW > 11 kW)
    # draws at most 40 % of its rating, in the dim's steps and not outside them.
    in_dim = (f.index >= START + pd.Timedelta(hours=2)) & (
        f.index < START + pd.Timedelta(hours=5, minutes=15)
    )
    for bat in site.batteries:
        charge = -f[f"{bat.id}.battery_w"].clip(upper=0.0)
        assert (charge[in_dim] <= FLOOR_14A_W + TOL_W).all(), bat.id
        cap = limited[f"{bat.id}{DEVICE_CAP_SUFFIX}"]
        assert cap[in_dim].eq(FLOOR_14A_W).all() and cap[~in_dim].isna().all()
    hp = site.heat_pump
    assert hp is not None
    assert (f["heat_pump_el_w"][in_dim] <= 0.4 * hp.max_el_w + TOL_W).all()
    # Zero export at negative prices: no export, or what cannot be curtailed is reported.
    negative = (f.index.hour >= 10) & (f.index.hour < 13)
    assert limited["export_limit_w"][negative].eq(0.0).all()
    exported = f["grid_export_w"][negative]
    spilled = f["spilled_el_w"][negative]
    assert (exported <= TOL_W).all()
    if (spilled > TOL_W).any():
        assert plan.info.slacks.get("spilled_el_wh", 0.0) > 0.0


def test_without_signals_the_plan_is_what_it_was() -> None:
    site = site_under_rules()
    forecast = forecast_with_negative_noon(site)
    limited = plan_limits(site, forecast, [])
    assert not [c for c in limited.columns if str(c).endswith(DEVICE_CAP_SUFFIX)]
    caps = plan_caps(site, pd.DatetimeIndex(forecast.index), [])
    assert caps.devices.empty and caps.export_cap_w.isna().all()


def test_the_ems_floor_is_kept_over_all_controllable_devices_behind_the_connection() -> None:
    site = site_under_rules()
    consumers = [*site.batteries, site.heat_pump]
    t = START.to_pydatetime()
    dim = Signal("box-1", SignalKind.CONSUMPTION, t, limit_w=0.0, ems=True)
    caps = plan_caps(site, pd.DatetimeIndex(synthetic_forecast(site, START, 8).index), [dim])
    per_device = [caps.devices[f"{d.id}{DEVICE_CAP_SUFFIX}"].iloc[0] for d in consumers]
    floors = [FLOOR_14A_W] * len(site.batteries) + [0.4 * site.heat_pump.max_el_w]
    assert sum(per_device) == pytest.approx(ems_floor_w(floors))
    assert np.all(np.asarray(per_device) > 0)


def test_the_stricter_of_two_signals_is_the_one_the_plan_keeps() -> None:
    site = site_under_rules()
    t = START.to_pydatetime()
    index = pd.DatetimeIndex(synthetic_forecast(site, START, 8).index)
    loose = Signal("op", SignalKind.EXPORT_CAP, t, limit_w=30_000)
    strict = Signal("box-1", SignalKind.EXPORT_CAP, t + timedelta(hours=1), limit_w=10_000)
    caps = plan_caps(site, index, [loose, strict])
    assert caps.export_cap_w.iloc[:4].eq(30_000).all()
    assert caps.export_cap_w.iloc[4:].eq(10_000).all()
    stage = Signal("box-1", SignalKind.FEED_IN, t, feed_in_pct=30)
    caps = plan_caps(site, index, [*solarspitzen_cap(site, t), stage])
    for pv in site.pv[:2]:
        expected = min(0.3 * pv.rated_w, 0.6 * pv.dc_peak_w)
        assert caps.devices[f"{pv.id}{DEVICE_CAP_SUFFIX}"].eq(expected).all()


def one_battery_unit_site() -> Site:
    """The rules' site with four alike batteries on one feeder (one unit when aggregated),
    each controllable under §14a."""
    data = site_under_rules().model_dump(mode="json")
    bats = [d for d in data["devices"] if d["kind"] == "battery"]
    same = {k: v for k, v in bats[0].items() if k not in ("id", "name", "modbus")}
    for d in bats[1:]:
        d.update(same)
    return parse_site(data, "<one unit>")


#: Batteries in one unit whatever their fill levels.
ONE_GROUP = OptimizerParams(soc_groups=1, soc_groups_min=1, soc_group_members=100)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), dimmed=st.integers(1, 3), cap_w=st.floats(0.0, 4_000.0))
def test_aggregated_plan_keeps_each_battery_under_its_own_cap(
    seed: int, dimmed: int, cap_w: float
) -> None:
    """Batteries planned as one unit with a cap on the charging of only some of them: every
    device's planned setpoint keeps its own cap, not only the unit's sum (the safety layer
    would otherwise clamp it afterwards and the plant would miss the plan)."""
    site = one_battery_unit_site()
    forecast = plan_limits(site, synthetic_forecast(site, START, STEPS, seed=seed), [], [])
    forecast["price_import_eur_per_mwh"] = -20.0  # charging pays: every battery wants to
    capped = [b.id for b in site.batteries[:dimmed]]
    for ident in capped:
        forecast[f"{ident}{DEVICE_CAP_SUFFIX}"] = cap_w
    planner = Planner(site, ONE_GROUP, SolveOptions(mode="aggregated"))
    plan = planner.plan(State.from_site(site), forecast, START)
    assert plan.info.status == "optimal"
    assert plan.info.n_units["battery"] == 1
    f = plan.frame
    for ident in capped:
        charge = -f[f"{ident}.battery_w"].clip(upper=0.0)
        assert (charge <= cap_w + TOL_W).all(), (ident, float(charge.max()))
    free = [b for b in site.batteries if b.id not in capped]
    # The others do charge: the plan is not trivially idle.
    assert min(f[f"{b.id}.battery_w"].min() for b in free) < -TOL_W
