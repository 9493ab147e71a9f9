"""Random sites, states and forecasts: always a plan, never an exception, limits hold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from tests.optimizer.checks import check_plan, pv_available
from tests.optimizer.conftest import START, make_site


def _site(rng: np.random.Generator, n_pv: int, n_bat: int, heat: bool) -> Any:
    devices: list[dict[str, Any]] = []
    for i in range(n_pv):
        rated = float(rng.uniform(2_000, 30_000))
        devices.append(
            {
                "id": f"pv{i}",
                "kind": "pv",
                "rated_w": rated,
                "peak_wp": rated * rng.uniform(0.8, 1.3),
                "min_limit_pct": float(rng.uniform(1, 30)),
                "feeder": f"F{rng.integers(2)}",
            }
        )
    for i in range(n_bat):
        cap = float(rng.uniform(2_000, 30_000))
        lo = float(rng.uniform(0, 40))
        devices.append(
            {
                "id": f"bat{i}",
                "kind": "battery",
                "capacity_wh": cap,
                "max_charge_w": cap / rng.uniform(0.5, 4),
                "max_discharge_w": cap / rng.uniform(0.5, 4),
                "charge_efficiency": float(rng.uniform(0.8, 1.0)),
                "discharge_efficiency": float(rng.uniform(0.8, 1.0)),
                "soc_min_pct": lo,
                "soc_max_pct": float(rng.uniform(lo + 5, 100)),
                "wear_cost_eur_per_mwh": float(rng.uniform(0, 40)),
                "feeder": f"F{rng.integers(2)}",
            }
        )
    heat_cfg: dict[str, Any] = {}
    if heat:
        devices += [
            {
                "id": "dc",
                "kind": "datacentre",
                "it_power_w": float(rng.uniform(1e4, 5e5)),
                "dry_cooler_el_per_th": float(rng.uniform(0, 0.2)),
            },
            {
                "id": "hp",
                "kind": "heat_pump",
                "max_el_w": float(rng.uniform(1e4, 2e5)),
                "min_part_load_pct": float(rng.choice([0.0, 30.0])),
            },
        ]
        heat_cfg = {
            "store_capacity_wh": float(rng.choice([0.0, 2e6])),
            "store_max_charge_th_w": 5e5,
            "store_max_discharge_th_w": 5e5,
            "store_initial_pct": float(rng.uniform(0, 100)),
            "boiler_max_th_w": float(rng.choice([0.0, 1e6])),
            "annual_demand_wh": 1e9,
        }
    return make_site(
        devices,
        horizon_h=int(rng.integers(1, 7)),
        import_limit_w=float(rng.uniform(1e4, 1e6)),
        export_limit_w=float(rng.uniform(1e4, 1e6)),
        heat=heat_cfg,
        economics={"co2_price_eur_per_t": float(rng.uniform(0, 150))},
    )


def _forecast(rng: np.random.Generator, steps: int) -> pd.DataFrame:
    index = pd.date_range(START, periods=steps, freq="15min", tz="UTC")
    price = rng.normal(80, 120, steps)
    caps = rng.choice([np.nan, 0.0, 5e4], (2, steps), p=[0.8, 0.1, 0.1])
    return pd.DataFrame(
        {
            "pv_w_per_kwp": np.clip(rng.normal(300, 300, steps), 0, None),
            "load_w": rng.uniform(0, 2e5, steps),
            "heat_demand_th_w": rng.uniform(0, 5e5, steps),
            "it_power_w": rng.uniform(0, 5e5, steps),
            "waste_heat_temp_c": rng.uniform(5, 60, steps),
            "price_import_eur_per_mwh": price + rng.uniform(0, 150),
            "price_export_eur_per_mwh": price - rng.uniform(0, 20),
            "co2_g_per_kwh": rng.uniform(0, 800, steps),
            "import_limit_w": caps[0],
            "export_limit_w": caps[1],
        },
        index=index,
    )


def _state(rng: np.random.Generator, site: Any) -> State:
    socs = {b.id: float(b.capacity_wh * rng.uniform(-0.1, 1.1)) for b in site.batteries}
    offline = {d.id for d in site.devices if rng.random() < 0.15}
    return State(
        battery_soc_wh=socs,
        store_wh=site.heat.store_capacity_wh * rng.uniform(0, 1),
        offline=frozenset(offline),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_pv=st.integers(0, 4),
    n_bat=st.integers(0, 5),
    heat=st.booleans(),
    mode=st.sampled_from(["aggregated", "device"]),
    milp=st.booleans(),
    fail=st.sampled_from([None, "time", "error"]),
)
def test_random_site_always_gets_a_plan_within_its_limits(
    seed: int, n_pv: int, n_bat: int, heat: bool, mode: str, milp: bool, fail: str | None
) -> None:
    rng = np.random.default_rng(seed)
    site = _site(rng, n_pv, n_bat, heat)
    forecast = _forecast(rng, 4 * site.optimizer.horizon_h + 4)
    state = _state(rng, site)
    options = SolveOptions(
        mode=mode,
        milp=milp,  # type: ignore[arg-type]
        time_limit_s=0.0 if fail == "time" else None,
        force_failure=fail == "error",
    )
    plan = Planner(site).plan(state, forecast, START, options)
    if fail == "time":  # presolve may still finish a tiny model within "0 s"
        assert plan.info.status == "optimal" or "time limit" in str(plan.info.fallback_reason)
    else:
        assert plan.info.status == ("optimal" if fail is None else "fallback")
    assert len(plan.frame) == 4 * site.optimizer.horizon_h
    check_plan(plan, site, state, pv_available(site, forecast, plan.frame.index))
