"""Benchmark: the forecast a plan makes with the store reserve's tiers, against the issue alone.

Times :func:`vpp.control.planning.forecast_with_weather` on the demo site over ``--plans``
consecutive quarter hours from 10 May 2018 (the shipped year, the synthetic issued
temperature forecasts), as the controller calls it before each plan: with the default
``[forecast] reserve_quantiles`` (the heat side forecast twice past the horizon, on the issue
and on its 0.1 quantile, and a reserve worked out for each quantile) and, the baseline in
the same run, with ``reserve_quantiles = [0.5]`` (the issue alone, one forecast and one
reserve). Best of ``--rounds`` rounds, milliseconds per plan.

Usage: ``python bench/reserve_forecast.py [--plans 100] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.control.planning import forecast_with_weather
from vpp.core.site import Site, read_site
from vpp.data import read_inputs, shipped_inputs
from vpp.weather import SyntheticTemperatureForecast

ROOT = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2018-05-10T00:00Z")
HORIZON = timedelta(hours=36)


def with_quantiles(site: Site, quantiles: tuple[float, ...]) -> Site:
    forecast = site.forecast.model_copy(update={"reserve_quantiles": quantiles})
    return site.model_copy(update={"forecast": forecast})


def per_plan_ms(site: Site, year: pd.DataFrame, weather: object, plans: int) -> float:
    ahead = HORIZON + timedelta(hours=site.forecast.reserve_lookahead_h + 8)
    tic = time.perf_counter()
    for k in range(plans):
        at = START + pd.Timedelta(minutes=15 * k)
        used = year.loc[at - pd.Timedelta(days=8) : at + ahead]
        forecast_with_weather(site, used, at.to_pydatetime(), HORIZON, weather)
    return (time.perf_counter() - tic) / plans * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    year = read_inputs(shipped_inputs(2018))
    weather = SyntheticTemperatureForecast(year["outdoor_temp_c"])
    demo = read_site(ROOT / "config" / "demo.toml")
    cases = {
        "issue alone [0.5] (baseline)": with_quantiles(demo, (0.5,)),
        f"tiers {list(demo.forecast.reserve_quantiles)}": demo,
    }
    best = {name: float("inf") for name in cases}
    for _ in range(args.rounds):  # interleaved, so that both see the same load
        for name, site in cases.items():
            best[name] = min(best[name], per_plan_ms(site, year, weather, args.plans))
    base = best["issue alone [0.5] (baseline)"]
    title = f"forecast with the store reserve, {args.plans} plans from {START:%d %b %Y}"
    table = Table(title=title)
    for head in ("reserve", "ms per plan (best)", "ratio"):
        table.add_column(head)
    for name, ms in best.items():
        table.add_row(name, f"{ms:.1f}", f"{ms / base:.2f}")
    table.caption = (
        f"best of {args.rounds} rounds; load average {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    Console().print(table)


if __name__ == "__main__":
    main()
