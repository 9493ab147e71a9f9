"""Where a large plan's time goes, and what each way of starting HiGHS costs.

On the benchmark fleet of ``bench/optimizer_scaling.py`` (half PV, half batteries, 4 feeders,
the heat system; 10,000 devices and 96 quarter hours by default) it prints three tables:

1. **plans**: a first plan and a re-plan one quarter hour later (state carried from the
   first plan's first step, import prices revised by N(0, 2) EUR/MWh), each with the
   planner's default start (``SolveOptions(start="idle")``: a new model from the
   batteries-idle basis, a re-plan from the last basis moved by one step) and with the
   baseline measured in the same run (``start="slack"``: HiGHS's own start, the last basis
   as it is). Wall and CPU seconds, the planner's build / solve / split, the first solve's
   simplex iterations, the split rounds run and the round kept, the energy the grid takes
   for devices that could not follow their unit, and the plan's cost; then the ratio
   default / baseline.
2. **solver options** on the first plan's LP, solved once each: HiGHS's dual simplex with and
   without presolve, primal simplex, the interior-point solver IPX with and without crossover,
   dual simplex with two threads, and the dual and primal simplex from the idle basis.
3. **fill groups** (``OptimizerParams.soc_groups``): units, the first LP's iterations and CPU
   from the idle basis, the plan's cost and its gap to the unit LP's optimum. The unit LP
   relaxes the device-level LP (a unit may share power in ways its devices cannot), so its
   optimum is a lower bound and the gap printed bounds the gap to the device-level optimum
   from above (``bench/optimizer_scaling.py`` solves the device-level LP itself).

With ``--replans K``, K re-plans in a row after a first plan, each a quarter hour later with
the state carried and prices revised: their median time and each one's split rounds.

Times are per single run on a shared machine: compare the CPU columns, and print ``uptime``
with them. Run: ``.venv/bin/python bench/plan_speed.py [--devices 10000] [--steps 96]
[--groups 4 8 12 16] [--skip-options] [--replans K] [--demo]``; ``--demo`` re-plans the demo site
(``config/demo.toml``) 20 quarter hours in a row with each start instead
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import highspy
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from optimizer.basis import idle_basis, to_highs
from optimizer.direct import build_lp
from optimizer.inputs import State
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.plan import Plan
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast, synthetic_site
from vpp.core.site import Site, read_site

START = pd.Timestamp("2024-03-04T00:00Z")
STEP = pd.Timedelta(minutes=15)


def _site(devices: int, steps: int) -> Site:
    site = synthetic_site(devices // 2, devices - devices // 2, feeders=4, seed=1)
    settings = site.optimizer.model_copy(update={"horizon_h": steps // 4, "time_limit_s": 120.0})
    return site.model_copy(update={"optimizer": settings})


def _timed(run: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _left_wh(plan: Plan) -> float:
    return float(plan.units.filter(like="shortfall").to_numpy().sum()) * 0.25


def replans(site: Site, steps: int, count: int) -> dict[str, Any]:
    """``count`` re-plans in a row, a quarter hour apart, after a first plan (state carried,
    import prices revised by N(0, 2) EUR/MWh each time): the median and spread of their
    times and their split rounds. One re-plan's time depends on how many split rounds it
    happens to need; the median over several is the steadier figure."""
    state = State.from_site(site)
    forecast = synthetic_forecast(site, START, steps + count + 8, seed=1)
    planner = Planner(site)
    rng = np.random.default_rng(5)
    walls, cpus, rounds = [], [], []
    for q in range(count + 1):
        revised = forecast.copy()
        if q:
            revised["price_import_eur_per_mwh"] += rng.normal(0, 2, len(revised))
        plan, wall, cpu = _timed(partial(planner.plan, state, revised, START + q * STEP))
        if q:
            walls.append(wall)
            cpus.append(cpu)
            rounds.append(plan.info.split_rounds)
        step0 = plan.frame.iloc[0]
        socs = {b.id: float(step0[f"{b.id}.soc_wh"]) for b in site.batteries}
        state = dataclasses.replace(state, battery_soc_wh=socs)
    return {
        "re-plans": count,
        "median wall s": float(np.median(walls)),
        "median cpu s": float(np.median(cpus)),
        "cpu s min-max": f"{min(cpus):.3f}-{max(cpus):.3f}",
        "rounds": " ".join(str(r) for r in rounds),
    }


def plans(site: Site, steps: int) -> list[dict[str, Any]]:
    """First plan and re-plan, default start and baseline."""
    state = State.from_site(site)
    forecast = synthetic_forecast(site, START, steps + 8, seed=1)
    rows = []
    starts: tuple[Literal["idle", "slack"], ...] = ("idle", "slack")
    for start in starts:
        planner = Planner(site, options=SolveOptions(start=start))
        first, wall, cpu = _timed(partial(planner.plan, state, forecast, START))
        rows.append(_row(f"first plan, {start}", first, wall, cpu))
        step0 = first.frame.iloc[0]
        carried = dataclasses.replace(
            state, battery_soc_wh={b.id: float(step0[f"{b.id}.soc_wh"]) for b in site.batteries}
        )
        revised = forecast.copy()
        noise = np.random.default_rng(5).normal(0, 2, len(revised))
        revised["price_import_eur_per_mwh"] += noise
        again, wall, cpu = _timed(partial(planner.plan, carried, revised, START + STEP))
        rows.append(_row(f"re-plan, {start}", again, wall, cpu))
    return rows


def _row(name: str, plan: Plan, wall: float, cpu: float) -> dict[str, Any]:
    info = plan.info
    return {
        "plan": name,
        "wall s": wall,
        "cpu s": cpu,
        "build s": info.build_s,
        "solve s": info.solve_s,
        "split s": info.split_s,
        "rounds/kept": f"{info.split_rounds}/{info.split_round_kept}",
        "left Wh": _left_wh(plan),
        "cost EUR": info.cost_eur["objective_eur"],
    }


def solver_options(site: Site, steps: int) -> list[dict[str, Any]]:
    """The first plan's LP (before any split round) under each HiGHS setting."""
    state = State.from_site(site)
    forecast = synthetic_forecast(site, START, steps + 8, seed=1)
    data = Planner(site).problem(state, forecast, START, SolveOptions()).data
    lp = build_lp(data)
    arrays = lp.arrays()
    idle = idle_basis(lp.n_col, lp.n_row, lp.blocks, lp.row_blocks)
    variants: list[tuple[str, dict[str, Any], bool]] = [
        ("dual simplex, presolve (HiGHS default)", {}, False),
        ("dual simplex, no presolve", {"presolve": "off"}, False),
        ("primal simplex", {"solver": "simplex", "simplex_strategy": 4}, False),
        ("IPX + crossover", {"solver": "ipm"}, False),
        ("IPX, no crossover", {"solver": "ipm", "run_crossover": "off"}, False),
        ("dual simplex, 2 threads (PAMI)", {"threads": 2, "simplex_strategy": 2}, False),
        ("dual simplex from the idle basis (planner)", {}, True),
        ("primal simplex from the idle basis", {"simplex_strategy": 4}, True),
    ]
    rows = []
    for name, options, from_idle in variants:
        # HiGHS's thread pool is global and sized at its first use: resize it per variant.
        highspy.Highs.resetGlobalScheduler(True)
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", options.pop("threads", 1))
        for key, value in options.items():
            h.setOptionValue(key, value)
        h.passModel(arrays.highs_lp())
        if from_idle:
            h.setBasis(to_highs(idle))
        _, wall, cpu = _timed(h.run)
        info = h.getInfo()
        rows.append(
            {
                "solver": name,
                "wall s": wall,
                "cpu s": cpu,
                "simplex it": int(info.simplex_iteration_count),
                "ipm it": int(info.ipm_iteration_count),
                "objective EUR": float(info.objective_function_value),
                "status": h.modelStatusToString(h.getModelStatus()),
            }
        )
    highspy.Highs.resetGlobalScheduler(True)
    return rows


def fill_groups(site: Site, steps: int, groups: list[int]) -> list[dict[str, Any]]:
    state = State.from_site(site)
    forecast = synthetic_forecast(site, START, steps + 8, seed=1)
    rows = []
    for g in groups:
        planner = Planner(site, OptimizerParams(soc_groups=g))
        data = planner.problem(state, forecast, START, SolveOptions()).data
        lp = build_lp(data)
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.passModel(lp.highs_lp())
        h.setBasis(to_highs(idle_basis(lp.n_col, lp.n_row, lp.blocks, lp.row_blocks)))
        _, _, lp_cpu = _timed(h.run)
        bound = float(h.getInfo().objective_function_value)
        plan, wall, cpu = _timed(partial(planner.plan, state, forecast, START))
        cost = plan.info.cost_eur["objective_eur"]
        rows.append(
            {
                "groups": g,
                "units b/pv": f"{data.n_bat}/{data.n_pv}",
                "LP it": int(h.getInfo().simplex_iteration_count),
                "LP cpu s": lp_cpu,
                "plan wall s": wall,
                "plan cpu s": cpu,
                "rounds/kept": f"{plan.info.split_rounds}/{plan.info.split_round_kept}",
                "cost EUR": cost,
                "gap to LP bound %": 100 * (cost - bound) / abs(bound),
            }
        )
    return rows


def demo_replans(quarters: int = 20) -> list[dict[str, Any]]:
    """The demo site re-planned every quarter hour, SoCs carried, with each start (twice)."""
    site = read_site(Path(__file__).parents[1] / "config" / "demo.toml", offline=True)
    begin = pd.Timestamp("2024-03-04T06:00Z")
    forecast = synthetic_forecast(site, begin, quarters + 160, seed=1)
    starts: tuple[Literal["idle", "slack"], ...] = ("idle", "slack", "idle", "slack")
    rows = []
    for start in starts:
        planner = Planner(site, options=SolveOptions(start=start))
        state = State.from_site(site)
        cpu, solve, cost = [], [], 0.0
        for q in range(quarters):
            plan, _, seconds = _timed(partial(planner.plan, state, forecast, begin + q * STEP))
            cpu.append(seconds)
            solve.append(plan.info.solve_s)
            cost += plan.info.cost_eur["objective_eur"]
            step0 = plan.frame.iloc[0]
            socs = {b.id: float(step0[f"{b.id}.soc_wh"]) for b in site.batteries}
            state = dataclasses.replace(state, battery_soc_wh=socs)
        rows.append(
            {
                "start": start,
                "first plan cpu ms": 1e3 * cpu[0],
                "median cpu ms": 1e3 * float(np.median(cpu[1:])),
                "median solve ms": 1e3 * float(np.median(solve[1:])),
                "total cost EUR": cost,
            }
        )
    return rows


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    out = Table(title=title)
    for name in rows[0]:
        out.add_column(name, justify="left" if name in ("plan", "solver", "start") else "right")
    for row in rows:
        out.add_row(*(_fmt(v) for v in row.values()))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument("--groups", type=int, nargs="*", default=[4, 8, 12, 16])
    parser.add_argument("--skip-options", action="store_true", help="leave out table 2")
    parser.add_argument(
        "--replans", type=int, default=0, help="also this many re-plans in a row: their median"
    )
    parser.add_argument(
        "--demo", action="store_true", help="only the demo site's re-plans, with each start"
    )
    args = parser.parse_args()
    console = Console(width=200)
    site = _site(args.devices, args.steps)
    warm = _site(10, 8)  # imports, numba's compiled kernels, HiGHS loaded
    Planner(warm).plan(State.from_site(warm), synthetic_forecast(warm, START, 16), START)
    if args.demo:
        console.print(f"demo site; load average {os.getloadavg()}")
        console.print(_table("demo site, 20 quarter hours re-planned", demo_replans()))
        console.print(f"load average at the end {os.getloadavg()}")
        return
    console.print(f"{args.devices:,} devices, {args.steps} steps; load average {os.getloadavg()}")
    rows = plans(site, args.steps)
    console.print(_table("plans (1 HiGHS thread)", rows))
    by = {r["plan"]: r for r in rows}
    for what in ("first plan", "re-plan"):
        new, old = by[f"{what}, idle"], by[f"{what}, slack"]
        console.print(
            f"{what}: idle start / slack start = {new['cpu s'] / old['cpu s']:.2f} (CPU), "
            f"{new['wall s'] / old['wall s']:.2f} (wall); "
            f"{new['wall s']:.2f} s against {old['wall s']:.2f} s"
        )
    if args.replans:
        row = replans(site, args.steps, args.replans)
        console.print(_table("re-plans in a row (planner's default start)", [row]))
    if not args.skip_options:
        console.print(_table("solver options on the first LP", solver_options(site, args.steps)))
    if args.groups:
        rows = fill_groups(site, args.steps, args.groups)
        console.print(_table("fill groups (soc_groups)", rows))
    console.print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
