"""Benchmark: the heat demand forecast from issued temperatures, with and without its nowcast.

At as-of times every ``--every-h`` hours over the year (from 20 January, so that the
forecast has the days it scales by), the heat demand is forecast as the plans forecast it
(the rules of :mod:`vpp.forecast` with the synthetic issued temperature forecasts of
:mod:`vpp.weather`, seed as the demo site's) over 36 h, once with the nowcast of the
network's departure from its model (``ForecastSettings`` defaults) and once without
(``heat_nowcast_h = 0``, the baseline, in the same run), and compared with what happened:
mean absolute error over the first hour and over the 36 h, in W per MWh/a of annual demand,
for the shipped year and for noisy worlds (:mod:`vpp.data.world`) of the given seeds.

Usage: ``python bench/heat_forecast.py [--seeds 2018 7] [--every-h 53]``
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.data import read_inputs, shipped_inputs
from vpp.data.world import noisy_world, read_household
from vpp.forecast import ForecastSettings, forecast, forecast_index
from vpp.weather import ForecastSpec, SyntheticTemperatureForecast

H36 = timedelta(hours=36)
COLUMNS = ["heat_w_per_mwh_a", "outdoor_temp_c"]
CASES = {"without nowcast": ForecastSettings(heat_nowcast_h=0.0), "with": ForecastSettings()}


def errors(data: pd.DataFrame, every_h: float) -> dict[str, tuple[float, float]]:
    """Mean absolute error (first hour, 36 h) per case."""
    weather = SyntheticTemperatureForecast(data["outdoor_temp_c"], ForecastSpec())
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in CASES}
    start = pd.Timestamp("2018-01-20T05:10Z")
    end = pd.Timestamp(data.index[-1]) - pd.Timedelta(days=3)
    for now in pd.date_range(start, end, freq=f"{every_h}h"):
        window = (data.index >= now - pd.Timedelta(days=8)) & (data.index < now + 4 * H36)
        history = data.loc[window, COLUMNS]
        truth = data.loc[forecast_index(now, H36), "heat_w_per_mwh_a"].to_numpy()
        for name, settings in CASES.items():
            got = forecast(history, now, H36, weather=weather, settings=settings)
            err = np.abs(got["heat_w_per_mwh_a"].to_numpy() - truth)
            out[name][0].append(float(err[:4].mean()))
            out[name][1].append(float(err.mean()))
    return {k: (float(np.mean(a)), float(np.mean(b))) for k, (a, b) in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[2018, 7])
    parser.add_argument("--every-h", type=float, default=53.0)
    args = parser.parse_args()
    load, tic = os.getloadavg(), time.perf_counter()
    year = read_inputs(shipped_inputs(2018))
    worlds = {"shipped 2018": year}
    for seed in args.seeds:
        worlds[f"noisy world, seed {seed}"] = noisy_world(year, read_household(), seed)
    table = Table(title=f"heat demand forecast, as-of every {args.every_h:g} h, W per MWh/a")
    for head in ("world", "horizon", *CASES, "with / without"):
        table.add_column(head)
    for name, data in worlds.items():
        got = errors(data, args.every_h)
        base, new = got["without nowcast"], got["with"]
        for i, horizon in enumerate(("first hour: MAE", "36 h: MAE")):
            ratio = new[i] / base[i] if base[i] else float("nan")
            table.add_row(name, horizon, f"{base[i]:.2f}", f"{new[i]:.2f}", f"{ratio:.2f}")
    end = os.getloadavg()
    table.caption = (
        f"{time.perf_counter() - tic:.0f} s; load average {load[0]:.1f} at the start, "
        f"{end[0]:.1f} at the end"
    )
    Console().print(table)


if __name__ == "__main__":
    main()
