"""Benchmark: what the reasons from the solver's duals cost on top of a plan.

The demo district (``config/demo.toml``) is planned over its horizon from a synthetic
forecast, as an LP (the default: the duals are read from the plan's own HiGHS solve) and as a
mixed-integer plan (``milp``: its binaries are fixed and the LP solved once more). The table
gives, per mode, the median solve time of the plan and of getting its duals
(``SolveInfo.solve_s``, ``SolveInfo.duals_s``) over the repeats, and their ratio: the
baseline is the plan's own solve, measured in the same run.

Usage: ``python bench/duals.py [--repeats 3] [--milp-repeats 1]``
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import pandas as pd

from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast
from vpp.core.site import read_site

ROOT = Path(__file__).resolve().parents[1]


def measure(milp: bool, repeats: int) -> tuple[float, float]:
    site = read_site(ROOT / "config" / "demo.toml")
    start = pd.Timestamp("2026-06-21T04:00Z")
    forecast = synthetic_forecast(site, start, 4 * int(site.optimizer.horizon_h))
    planner = Planner(site, options=SolveOptions(milp=milp))
    solve, duals = [], []
    for _ in range(repeats):
        plan = planner.plan(State.from_site(site), forecast, start)
        if plan.info.status != "optimal" or plan.info.duals_s is None:
            raise SystemExit(f"no optimal plan with duals (milp={milp}): {plan.info}")
        solve.append(plan.info.solve_s)
        duals.append(plan.info.duals_s)
    return statistics.median(solve), statistics.median(duals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--milp-repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'plan':<8} {'solve s':>9} {'duals s':>9} {'duals/solve':>12}")
    for name, milp, repeats in (("LP", False, args.repeats), ("MILP", True, args.milp_repeats)):
        solve, duals = measure(milp, repeats)
        print(f"{name:<8} {solve:>9.3f} {duals:>9.4f} {duals / solve:>12.4f}")


if __name__ == "__main__":
    main()
