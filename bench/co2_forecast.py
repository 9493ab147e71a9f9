"""Benchmark: the grid's CO2-intensity forecast from the price against yesterday's intensity.

At as-of times every ``--every-h`` hours from the tenth day of 2018, the CO2 intensity is
forecast as the plans forecast it (:func:`vpp.forecast.forecast` on the eight days before,
prices as published by then): with yesterday's intensity moved by the price change times
the intensity's slope in the price over the known days (``ForecastSettings`` defaults,
:func:`vpp.forecast.forecast_co2`), and with the rule it replaced, yesterday's intensity
(``co2_fit_days = 0``), and compared with the intensity that came: mean absolute error over
the first four hours and over 36 h, mean error (bias), the error of the 36 h's shape (mean
absolute error after each forecast's own mean error is taken off: what a battery's timing
sees), and the time per forecast; ratios new / before from this run. The intensity is the
same real series in the shipped year and the noisy worlds; the 2023 file has none.

Usage: ``python bench/co2_forecast.py [--every-h 7.25] [--fit-days 7]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.data import read_inputs, shipped_inputs
from vpp.forecast import ForecastSettings, forecast

COLUMN = "co2_g_per_kwh"
PRICE = "price_eur_per_mwh"
H36 = pd.Timedelta(hours=36)
HISTORY = pd.Timedelta(days=8)
LABELS = ("first 4 h: MAE", "36 h: MAE", "36 h: bias", "36 h shape: MAE", "ms per forecast")


def errors(
    year: pd.DataFrame, every_h: float, rules: dict[str, ForecastSettings]
) -> dict[str, list[float]]:
    """Per rule, the means of :data:`LABELS` over the as-of times."""
    out: dict[str, list[list[float]]] = {name: [[] for _ in LABELS] for name in rules}
    data = year[[PRICE, COLUMN]]
    start = pd.Timestamp(data.index[0]) + pd.Timedelta(days=10)
    end = pd.Timestamp(data.index[-1]) - H36
    for now in pd.date_range(start, end, freq=pd.Timedelta(hours=every_h)):
        window = data[(data.index >= now - HISTORY) & (data.index < now + H36 + H36)]
        for name, settings in rules.items():
            tic = time.perf_counter()
            got = forecast(window, now.to_pydatetime(), H36.to_pytimedelta(), settings=settings)
            spent = time.perf_counter() - tic
            truth = data[COLUMN].reindex(got.index).to_numpy()
            err = got[COLUMN].to_numpy() - truth
            shape = err - err.mean()
            values = (
                np.abs(err[:16]).mean(),
                np.abs(err).mean(),
                err.mean(),
                np.abs(shape).mean(),
                spent,
            )
            for i, value in enumerate(values):
                out[name][i].append(float(value))
    return {name: [float(np.mean(v)) for v in lists] for name, lists in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every-h", type=float, default=7.25)
    parser.add_argument("--fit-days", type=int, default=ForecastSettings().co2_fit_days)
    args = parser.parse_args()
    rules = {
        "yesterday": ForecastSettings(co2_fit_days=0),
        "moved by the price": ForecastSettings(co2_fit_days=args.fit_days),
    }
    load, tic = os.getloadavg(), time.perf_counter()
    got = errors(read_inputs(shipped_inputs(2018)), args.every_h, rules)
    before, new = rules
    table = Table(
        title=f"CO2 intensity forecast (g/kWh), 2018, as-of every {args.every_h:g} h, "
        f"slope over {args.fit_days} days"
    )
    for head in ("measure", before, new, "new / before"):
        table.add_column(head)
    for i, label in enumerate(LABELS):
        scale = 1e3 if label.startswith("ms") else 1.0
        a, b = got[before][i] * scale, got[new][i] * scale
        ratio = "" if "bias" in label else f"{b / a:.2f}"
        table.add_row(label, f"{a:.1f}", f"{b:.1f}", ratio)
    end = os.getloadavg()
    table.caption = (
        f"{time.perf_counter() - tic:.0f} s; load average {load[0]:.1f} at the start, "
        f"{end[0]:.1f} at the end"
    )
    Console().print(table)


if __name__ == "__main__":
    main()
