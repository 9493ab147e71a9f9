"""Targets put onto a district's plan: whatever the coordinator asks, each device's share
stays inside its own ratings and SoC window, and the shares add up to the target where the
district can deliver it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.inputs import State
from optimizer.plan import Plan
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast, synthetic_site
from vpp.city import schema as s
from vpp.city.flex import overlay
from vpp.core.site import Site

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
STEPS = 8


@pytest.fixture(scope="module")
def planned() -> tuple[Site, Plan, pd.DataFrame, State]:
    site = synthetic_site(6, 6, heat=False, overrides={"optimizer": {"horizon_h": 2}})
    forecast = synthetic_forecast(site, START, STEPS)
    state = State.from_site(site)
    return site, Planner(site).plan(state, forecast, START), forecast, state


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    battery=st.lists(st.floats(-200_000, 200_000), min_size=STEPS, max_size=STEPS),
    pv=st.lists(st.floats(0, 500_000), min_size=STEPS, max_size=STEPS),
)
def test_each_device_stays_inside_its_ratings(
    planned: tuple[Site, Plan, pd.DataFrame, State], battery: list[float], pv: list[float]
) -> None:
    site, plan, forecast, state = planned
    t = s.Targets(
        agent="a", seq=1, sent_at=START, start=START, planned_at=START,
        expires_at=START + timedelta(minutes=15 * STEPS), battery_w=battery, pv_w=pv,
    )  # fmt: skip
    frame = overlay(site, plan, t, state, forecast["pv_w_per_kwp"]).frame
    total = np.zeros(STEPS)
    for b in site.batteries:
        p = frame[f"{b.id}.battery_w"].to_numpy(float)
        assert (p <= b.max_discharge_w + 1e-6).all() and (p >= -b.max_charge_w - 1e-6).all()
        soc = frame[f"{b.id}.soc_wh"].to_numpy(float)
        lo, hi = b.capacity_wh * b.soc_min_pct / 100, b.capacity_wh * b.soc_max_pct / 100
        assert (soc >= lo - 1e-6).all() and (soc <= hi + 1e-6).all()
        total += p
    assert frame["battery_w"].to_numpy(float) == pytest.approx(total)
    # Where every battery has headroom left, the district delivers the target exactly.
    head = sum(b.max_discharge_w for b in site.batteries) * 0.2
    first = battery[0]
    if abs(first) < head:
        assert total[0] == pytest.approx(first, abs=1e-3)
    for p in site.pv:
        limit = frame[f"{p.id}.pv_limit_w"].to_numpy(float)
        out = frame[f"{p.id}.pv_w"].to_numpy(float)
        assert (limit >= 0).all() and (limit <= p.rated_w + 1e-6).all()
        assert (out <= limit + 1e-6).all()
    # PV follows its cap, down to the inverters' lowest limits (they stand by below those).
    floor = sum(p.rated_w * p.min_limit_pct / 100 for p in site.pv)
    assert (frame["pv_w"].to_numpy(float) <= np.maximum(pv, floor) + 1e-3).all()
    # The balance holds: import - export moves by what supply moved.
    net_old = plan.frame["grid_import_w"] - plan.frame["grid_export_w"]
    net_new = frame["grid_import_w"] - frame["grid_export_w"]
    moved = (frame["pv_w"] - plan.frame["pv_w"]) + (frame["battery_w"] - plan.frame["battery_w"])
    assert (net_old - net_new).to_numpy(float) == pytest.approx(moved.to_numpy(float), abs=1e-3)
