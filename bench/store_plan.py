"""Diagnostic: a midnight plan with perfect forecasts against the bound, quarter hour by quarter
hour, on the heat side.

The bound (:mod:`vpp.replay.bound`) is solved over a chain of days (default the week from
14 May 2018) from the site file's start and ending where it started; at local midnight of
``--day`` the planner (the oracle's: perfect forecasts, the site's horizon, its terminal
values) plans from the bound's own state at that moment. The table compares the two over the
plan's first day: heat store, heat pump, boiler, store charge and discharge, prices, heat
demand, waste heat, and the plan's value of heat (dual of its heat balance). Variants of
the plan show which modelling choice moves the store: the terminal value, the horizon,
the store's end held at the bound's level.

Usage: ``python bench/store_plan.py [--day 2018-05-16] [--chain-start 2018-05-14]
[--chain-days 7] [--world SEED] [--csv OUT.csv]``
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import date, timedelta
from pathlib import Path

import highspy
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from optimizer.data import ModelData, heat_cost_eur_per_mwh
from optimizer.direct import build_lp
from optimizer.inputs import State, forecast_from_raw
from optimizer.model.base import KW
from optimizer.params import DETERMINISTIC, OptimizerParams
from optimizer.planner import Planner
from vpp.core.site import Site, read_site
from vpp.data import read_inputs, shipped_inputs
from vpp.data.world import noisy_world, read_household
from vpp.forecast import forecast
from vpp.replay import plant as k
from vpp.replay.baselines import with_signals
from vpp.replay.bound import Bound
from vpp.replay.data import read_replay_inputs
from vpp.replay.layout import PlantInputs, plant_inputs, plant_params
from vpp.replay.runner import day_index

ROOT = Path(__file__).resolve().parents[1]
HISTORY = timedelta(days=8)
HOUR = timedelta(hours=1)
COLUMNS = (
    "variant",
    "store mean MWh (24 h)",
    "store at 24 h",
    "store at end",
    "HP MWh_el (24 h)",
    "boiler MWh (24 h)",
    "terminal EUR/MWh",
)


def chain_inputs(site: Site, raw: pd.DataFrame, first: date, days: int) -> PlantInputs:
    """The truth of ``days`` local days from ``first`` as the replay plant sees it."""
    index = day_index(site, first).union(day_index(site, first + timedelta(days=days - 1)))
    start, end = index[0], day_index(site, first + timedelta(days=days - 1))[-1]
    return plant_inputs(site, raw.loc[start:end])


def import_heat_value(data: ModelData, q: float) -> float:
    """The store's terminal value as it was before it followed the LP's own margin: the
    ``q`` quantile of the cheaper of boiler heat and import cost / COP [EUR/MWh]."""
    boiler = data.boiler_eur_per_mwh_th() if data.boiler_max_w > 0 else np.inf
    runs = (data.hp_max_el_w > 0) & (data.cop > 0)
    hp = np.where(runs, data.import_eur_per_mwh() / np.where(runs, data.cop, 1.0), np.inf)
    cheapest = np.minimum(boiler, hp)
    finite = cheapest[np.isfinite(cheapest)]
    return max(0.0, float(np.quantile(finite, q))) if finite.size else 0.0


def surplus_heat_value(data: ModelData, q: float) -> float:
    """The store's terminal value with the heat pump's electricity at the export price where
    the site's PV covers its load and dry coolers (what the LP pays for it there), the
    import price elsewhere, less the dry coolers' saving [EUR/MWh]."""
    cost = heat_cost_eur_per_mwh(data).copy()
    surplus = data.pv_avail_w.sum(axis=0) > data.load_w + data.dry_cooler_el_per_th * (
        data.waste_heat_w
    )
    runs = (data.hp_max_el_w > 0) & (data.cop > 0) & surplus
    cop = data.cop[runs]
    saved = 1.0 - data.dry_cooler_el_per_th * (cop - 1.0)
    cost[runs] = np.minimum(cost[runs], data.price_export_eur_per_mwh[runs] * saved / cop)
    finite = cost[np.isfinite(cost)]
    return max(0.0, float(np.quantile(finite, q))) if finite.size else 0.0


def solve_lp(data: ModelData, fix_store: dict[int, float] | None = None) -> dict[str, np.ndarray]:
    """Solve the planner's LP (direct build) on ``data``; the store's energy at the steps of
    ``fix_store`` held at the given Wh. Returns the columns in W/Wh and the heat duals."""
    lp = build_lp(data)
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.passModel(lp.highs_lp())
    for step, wh in (fix_store or {}).items():
        col = int(lp.blocks["store_e"][step])
        h.changeColBounds(col, wh * KW, wh * KW)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(h.modelStatusToString(h.getModelStatus()))
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    y = np.asarray(sol.row_dual)
    out = {name: x[idx] / KW for name, idx in lp.blocks.items()}
    # EUR per MWh thermal: dual per kW of one step, over dt/1000
    scale = 1.0 / (data.dt_h * 1e-3)
    out["value_heat"] = np.abs(y[lp.row_blocks["heat"]]) * scale
    out["objective"] = np.array([h.getInfo().objective_function_value])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.toml")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2018, 5, 16))
    parser.add_argument("--chain-start", type=date.fromisoformat, default=date(2018, 5, 14))
    parser.add_argument("--chain-days", type=int, default=7)
    parser.add_argument("--world", type=int, default=None, metavar="SEED")
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()

    site = read_site(args.config)
    last = args.chain_start + timedelta(days=args.chain_days - 1)
    if args.world is None:
        raw = read_replay_inputs(site, args.chain_start, last + timedelta(days=3))
    else:
        raw = noisy_world(read_inputs(shipped_inputs(2018)), read_household(), args.world)
    params = plant_params(site)
    inputs = chain_inputs(site, raw, args.chain_start, args.chain_days)
    bound = Bound(site, params, inputs)
    solve = bound.solve(params.soc0_wh, params.store0_wh)
    trace = solve.trace
    midnight = day_index(site, args.day)[0]
    at = int(inputs.index.searchsorted(midnight))
    store0 = float(params.store0_wh if at == 0 else trace.out[at - 1, k.O_STORE])
    soc0 = params.soc0_wh if at == 0 else trace.bat_soc_wh[at - 1]

    state = State(
        battery_soc_wh={b.id: float(e) for b, e in zip(site.batteries, soc0, strict=True)},
        store_wh=store0,
    )

    def problem(horizon_h: float) -> ModelData:
        s = site.model_copy(
            update={"optimizer": site.optimizer.model_copy(update={"horizon_h": horizon_h})}
        )
        horizon = timedelta(hours=horizon_h)
        inside = (raw.index >= midnight - HISTORY) & (raw.index < midnight + horizon + HOUR)
        window = raw[inside]
        fc = forecast_from_raw(s, forecast(window, midnight.to_pydatetime(), horizon, "perfect"))
        fc = with_signals(s, fc)
        planner = Planner(s, options=DETERMINISTIC)
        return planner.problem(state, fc, midnight.to_pydatetime(), DETERMINISTIC).data

    base = problem(site.optimizer.horizon_h)
    steps = base.steps
    rows = slice(at, at + steps)
    bound_store = trace.out[rows, k.O_STORE]
    variants: dict[str, dict[str, np.ndarray]] = {}
    q = OptimizerParams().terminal_price_quantile
    values = {
        "plan (oracle's)": base.store_terminal_eur_per_mwh,
        "plan, store at import / COP": import_heat_value(base, q),
        "plan, store at the surplus's margin": surplus_heat_value(base, q),
    }
    for name, value in values.items():
        variants[name] = solve_lp(dataclasses.replace(base, store_terminal_eur_per_mwh=value))
    variants["plan, no terminal value"] = solve_lp(
        dataclasses.replace(base, store_terminal_eur_per_mwh=0.0)
    )
    variants["plan, store end = bound's"] = solve_lp(
        dataclasses.replace(base, store_terminal_eur_per_mwh=0.0),
        {steps - 1: float(bound_store[-1])},
    )
    for hours in (48, 72):
        variants[f"plan, {hours} h"] = solve_lp(problem(hours))

    console = Console(width=200)
    head = Table(title=f"heat side, {args.day} (plan from local midnight, {steps} steps)")
    for c in COLUMNS:
        head.add_column(c)
    day = slice(0, 96)
    default = base.store_terminal_eur_per_mwh
    bt = trace.out[rows]
    head.add_row(
        "bound (chain)",
        f"{bt[day, k.O_STORE].mean() / 1e6:.2f}",
        f"{bt[95, k.O_STORE] / 1e6:.2f}",
        f"{bt[-1, k.O_STORE] / 1e6:.2f}",
        f"{bt[day, k.O_HP_EL].sum() * 0.25 / 1e6:.2f}",
        f"{bt[day, k.O_BOILER].sum() * 0.25 / 1e6:.2f}",
        "-",
    )
    for name, v in variants.items():
        head.add_row(
            name,
            f"{v['store_e'][day].mean() / 1e6:.2f}",
            f"{v['store_e'][95] / 1e6:.2f}",
            f"{v['store_e'][-1] / 1e6:.2f}",
            f"{v['hp_el'][day].sum() * 0.25 / 1e6:.2f}",
            f"{v['boiler_th'][day].sum() * 0.25 / 1e6:.2f}",
            f"{values.get(name, 0.0 if 'no terminal' in name else default):.1f}",
        )
    console.print(head)

    plan = variants["plan (oracle's)"]
    frame = pd.DataFrame(
        {
            "price_imp": base.import_eur_per_mwh(),
            "price_exp": base.price_export_eur_per_mwh,
            "demand_kw": base.heat_demand_w / 1e3,
            "waste_kw": base.waste_heat_w / 1e3,
            "cop": base.cop,
            "pv_kw": base.pv_avail_w.sum(axis=0) / 1e3,
            "load_kw": base.load_w / 1e3,
            "plan_store_mwh": plan["store_e"] / 1e6,
            "bound_store_mwh": bt[:, k.O_STORE] / 1e6,
            "plan_hp_kw": plan["hp_el"] / 1e3,
            "bound_hp_kw": bt[:, k.O_HP_EL] / 1e3,
            "plan_boiler_kw": plan["boiler_th"] / 1e3,
            "bound_boiler_kw": bt[:, k.O_BOILER] / 1e3,
            "plan_value_heat": plan["value_heat"],
            "plan_grid_kw": (plan["grid_import"] - plan["grid_export"]) / 1e3,
            "bound_grid_kw": bt[:, k.O_GRID] / 1e3,
        },
        index=inputs.index[rows].tz_convert(site.site.timezone),
    )
    if args.csv is not None:
        frame.to_csv(args.csv, float_format="%.4f")
    hourly = frame.iloc[:96].resample("1h").mean()
    table = Table(title="hour by hour (means)")
    table.add_column("hour")
    for c in hourly.columns:
        table.add_column(c)
    for t, r in zip(hourly.index, hourly.to_numpy(), strict=True):
        table.add_row(t.strftime("%H:%M"), *(f"{v:.2f}" for v in r))
    console.print(table)


if __name__ == "__main__":
    main()
