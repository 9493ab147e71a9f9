"""Independent checks of a plan table against the site: balances, recursions and limits.

Everything is recomputed from the site file, the state and the plan's own columns, not from
the optimiser's internals, so a bug in the model or the split shows up here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.carnot import effective_carnot_efficiency
from optimizer.inputs import State
from optimizer.plan import Plan
from vpp.core.site import Site

#: Absolute tolerance on powers, W (the solver works to ~1e-7 kW), and energies, Wh.
TOL_W = 1e-3


def close(
    a: np.ndarray | pd.Series,
    b: np.ndarray | pd.Series | float,
    tol: float = TOL_W,
    rel: float = 1e-7,
) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(np.abs(a - b) <= tol + rel * np.maximum(np.abs(a), np.abs(b))))


def dt_hours(frame: pd.DataFrame) -> float:
    return float((frame.index[1] - frame.index[0]) / pd.Timedelta(hours=1))


def check_plan(
    plan: Plan, site: Site, state: State, pv_available: pd.DataFrame | None = None
) -> None:
    """Assert every balance and limit of ``plan`` (raises AssertionError naming the check)."""
    f = plan.frame
    assert f.index.tz is not None and str(f.index.tz) == "UTC", "index must be UTC"
    assert not f.isna().any().any(), f"NaN in plan columns {list(f.columns[f.isna().any()])}"
    check_electric(f)
    check_heat(f, site)
    check_store(f, site, state)
    check_batteries(f, site, state)
    check_pv(f, site, state, pv_available)
    check_grid(f, site)


def check_electric(f: pd.DataFrame) -> None:
    supply = (
        f.grid_import_w - f.grid_export_w + f.pv_w + f.battery_w + f.unserved_el_w - f.spilled_el_w
    )
    demand = f.load_w + f.heat_pump_el_w + f.dry_cooler_el_w
    assert close(supply, demand, tol=1e-2), "electric balance"
    for col in (
        "grid_import_w",
        "grid_export_w",
        "pv_w",
        "unserved_el_w",
        "spilled_el_w",
        "heat_pump_el_w",
        "dry_cooler_el_w",
    ):
        assert (f[col] >= -TOL_W).all(), f"{col} negative"


def check_heat(f: pd.DataFrame, site: Site) -> None:
    supply = f.heat_pump_th_w + f.boiler_th_w + f.store_th_w + f.unmet_heat_th_w
    assert close(supply, f.heat_demand_th_w, tol=1e-2), "heat balance"
    assert close(f.heat_pump_th_w, f.heat_pump_cop * f.heat_pump_el_w), "heat pump COP"
    source = f.heat_pump_th_w - f.heat_pump_el_w
    assert (source <= f.waste_heat_th_w + 1e-2).all(), "heat pump takes more than the waste heat"
    assert close(f.dry_cooler_th_w, f.waste_heat_th_w - source, tol=1e-2), "must-cool balance"
    dc = site.datacentre
    k = dc.dry_cooler_el_per_th if dc is not None else 0.0
    assert close(f.dry_cooler_el_w, k * f.dry_cooler_th_w), "dry cooler power"
    hp = site.heat_pump
    if hp is not None:
        assert (f.heat_pump_el_w <= hp.max_el_w + TOL_W).all(), "heat pump power"
        eta = effective_carnot_efficiency(hp)
        assert eta > 0
    assert (f.boiler_th_w >= -TOL_W).all() and (
        f.boiler_th_w <= site.heat.boiler_max_th_w + TOL_W
    ).all(), "boiler limits"
    assert (f.unmet_heat_th_w >= -TOL_W).all()


def check_store(f: pd.DataFrame, site: Site, state: State) -> None:
    heat = site.heat
    dt = dt_hours(f)
    keep = (1 - heat.store_loss_pct_per_h / 100) ** dt
    start = heat.store_capacity_wh * heat.store_initial_pct / 100
    e0 = float(
        np.clip(start if state.store_wh is None else state.store_wh, 0, heat.store_capacity_wh)
    )
    prev = np.concatenate(([e0], f.store_wh.to_numpy()[:-1]))
    assert close(f.store_wh, keep * prev - f.store_th_w * dt, tol=1e-2), "store recursion"
    assert (f.store_wh >= -TOL_W).all() and (f.store_wh <= heat.store_capacity_wh + 1e-2).all()
    assert (f.store_th_w <= heat.store_max_discharge_th_w + TOL_W).all(), "store discharge"
    assert (-f.store_th_w <= heat.store_max_charge_th_w + TOL_W).all(), "store charge"


def check_batteries(f: pd.DataFrame, site: Site, state: State) -> None:
    dt = dt_hours(f)
    total = np.zeros(len(f))
    energy = np.zeros(len(f))
    for b in site.batteries:
        if b.id in state.offline:
            assert f"{b.id}.battery_w" not in f.columns, f"offline {b.id} planned"
            continue
        p = f[f"{b.id}.battery_w"].to_numpy()
        soc = f[f"{b.id}.soc_wh"].to_numpy()
        soc0 = float(
            np.clip(
                state.battery_soc_wh.get(b.id, b.capacity_wh * b.soc_initial_pct / 100),
                0,
                b.capacity_wh,
            )
        )
        prev = np.concatenate(([soc0], soc[:-1]))
        expect = (
            prev
            + b.charge_efficiency * np.maximum(-p, 0) * dt
            - np.maximum(p, 0) * dt / b.discharge_efficiency
        )
        assert close(soc, expect, tol=1e-3), f"{b.id} SoC recursion"
        assert (p <= b.max_discharge_w + TOL_W).all(), f"{b.id} discharge limit"
        assert (-p <= b.max_charge_w + TOL_W).all(), f"{b.id} charge limit"
        lo, hi = b.capacity_wh * b.soc_min_pct / 100, b.capacity_wh * b.soc_max_pct / 100
        # Inside the window, or on the way back to it (never further out than at the start).
        assert (soc >= min(lo, soc0) - 1e-3).all(), f"{b.id} below its SoC window"
        assert (soc <= max(hi, soc0) + 1e-3).all(), f"{b.id} above its SoC window"
        if lo - 1e-3 <= soc0 <= hi + 1e-3:
            assert (soc >= lo - 1e-3).all() and (soc <= hi + 1e-3).all(), f"{b.id} SoC window"
        total += p
        energy += soc
    assert close(f.battery_w, total), "site battery power = sum of batteries"
    assert close(f.battery_soc_wh, energy), "site battery energy = sum of batteries"


def check_pv(f: pd.DataFrame, site: Site, state: State, available: pd.DataFrame | None) -> None:
    total = np.zeros(len(f))
    for pv in site.pv:
        if pv.id in state.offline:
            assert f"{pv.id}.pv_w" not in f.columns, f"offline {pv.id} planned"
            continue
        out = f[f"{pv.id}.pv_w"].to_numpy()
        limit = f[f"{pv.id}.pv_limit_w"].to_numpy()
        min_limit = pv.rated_w * pv.min_limit_pct / 100
        assert (limit >= min_limit - TOL_W).all(), f"{pv.id} limit below its minimum"
        assert (limit <= pv.rated_w + TOL_W).all(), f"{pv.id} limit above rating"
        assert (out >= -TOL_W).all() and (out <= pv.rated_w + TOL_W).all()
        if available is not None:
            avail = available[pv.id].to_numpy()
            assert (out <= avail + TOL_W).all(), f"{pv.id} above available"
            assert close(out, np.minimum(avail, limit)), f"{pv.id} output != min(avail, limit)"
        total += out
    assert close(f.pv_w, total), "site PV = sum of inverters"


def check_grid(f: pd.DataFrame, site: Site) -> None:
    assert (f.grid_import_w <= f.import_cap_w + TOL_W).all(), "import cap"
    assert (f.grid_export_w <= f.export_cap_w + TOL_W).all(), "export cap"
    assert (f.import_cap_w <= site.grid.import_limit_w + TOL_W).all()
    assert (f.export_cap_w <= site.grid.export_limit_w + TOL_W).all()


def pv_available(site: Site, forecast: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Available AC power per inverter on the plan's steps, W (profile x kWp, clipped)."""
    fc = forecast.reindex(index, method="ffill")
    out = {}
    for pv in site.pv:
        col = f"{pv.id}.pv_w"
        series = fc[col] if col in fc.columns else fc["pv_w_per_kwp"] * pv.dc_peak_w / 1000
        out[pv.id] = series.clip(lower=0, upper=pv.rated_w).to_numpy()
    return pd.DataFrame(out, index=index)
