"""Benchmark: the data centre's IT-load forecast against the latest day of its kind.

At as-of times every ``--every-h`` hours from the tenth day of 2018, the forecast of
:func:`vpp.forecast.forecast_it_load` (the median of the latest days of the kind plus the
latest departure, fading) and the rule it replaced (the latest complete day of the same BDEW
day type, weekly persistence where none is known) are made from the eight days before, as
the plans make them, and compared with the IT load ratio that came, on the shipped year and
on noisy worlds of :mod:`vpp.data.world`: mean absolute error over the first four hours and
over 36 h, mean error (bias), and the time per forecast; ratios new / before from this run.

``--history-days`` gives the forecasts more days than the plans' eight, ``--it-load-days``
the new forecast more days in its median.

Usage: ``python bench/it_load_forecast.py [--seeds 2018 7] [--every-h 7.25]
[--history-days 8] [--it-load-days 5]``
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
from vpp.data.world import noisy_world, read_household
from vpp.forecast import ForecastSettings, forecast_index, forecast_it_load
from vpp.forecast.common import WEEK, shift_persistence
from vpp.forecast.demand import by_day_type

COLUMN = "it_load_ratio"
H36 = pd.Timedelta(hours=36)


def latest_of_kind(
    known: pd.Series, index: pd.DatetimeIndex, cutoff: pd.Timestamp, settings: ForecastSettings
) -> np.ndarray:
    """The rule before: the latest complete known day of the same day type, else a week ago."""
    values = by_day_type(known, index, dynamise=False)
    weekly = shift_persistence(known, index, cutoff, WEEK)
    return np.where(np.isnan(values), weekly, values)


RULES = {"latest day of its kind": latest_of_kind, "median and departure": forecast_it_load}


def errors(
    series: pd.Series, every_h: float, history: pd.Timedelta, settings: ForecastSettings
) -> dict[str, tuple[float, float, float, float]]:
    """Per rule: MAE first 4 h, MAE 36 h, bias 36 h, seconds per forecast."""
    out: dict[str, list[list[float]]] = {name: [[], [], [], []] for name in RULES}
    start = pd.Timestamp(series.index[0]) + pd.Timedelta(days=10)
    end = pd.Timestamp(series.index[-1]) - H36
    for now in pd.date_range(start, end, freq=pd.Timedelta(hours=every_h)):
        known = series[(series.index < now) & (series.index >= now - history)]
        index = forecast_index(now.to_pydatetime(), H36.to_pytimedelta())
        truth = series.reindex(index).to_numpy()
        for name, rule in RULES.items():
            tic = time.perf_counter()
            got = rule(known, index, now, settings)
            spent = time.perf_counter() - tic
            err = got - truth
            for i, value in enumerate(
                (np.abs(err[:16]).mean(), np.abs(err).mean(), err.mean(), spent)
            ):
                out[name][i].append(float(value))
    return {
        name: (
            float(np.mean(v[0])),
            float(np.mean(v[1])),
            float(np.mean(v[2])),
            float(np.mean(v[3])),
        )
        for name, v in out.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[2018, 7])
    parser.add_argument("--every-h", type=float, default=7.25)
    parser.add_argument("--history-days", type=int, default=8)
    parser.add_argument("--it-load-days", type=int, default=ForecastSettings().it_load_days)
    args = parser.parse_args()
    history = pd.Timedelta(days=args.history_days)
    settings = ForecastSettings(it_load_days=args.it_load_days)
    load, tic = os.getloadavg(), time.perf_counter()
    year = read_inputs(shipped_inputs(2018))
    worlds = {"shipped 2018": year[COLUMN]}
    for seed in args.seeds:
        worlds[f"noisy world, seed {seed}"] = noisy_world(year, read_household(), seed)[COLUMN]
    before, new = RULES
    table = Table(
        title=f"IT load ratio forecast, as-of every {args.every_h:g} h, "
        f"{args.history_days} days of history, median of {args.it_load_days} days"
    )
    for head in ("world", "measure", before, new, "new / before"):
        table.add_column(head)
    for name, series in worlds.items():
        got = errors(series, args.every_h, history, settings)
        labels = ("first 4 h: MAE", "36 h: MAE", "36 h: bias", "ms per forecast")
        for i, label in enumerate(labels):
            scale = 1e3 if i == 3 else 1.0
            a, b = got[before][i] * scale, got[new][i] * scale
            # No ratio of a bias, nor of errors within rounding of zero (the shipped year).
            ratio = f"{b / a:.2f}" if i != 2 and a >= 1e-4 * scale else ""
            digits = 2 if i == 3 else 4
            table.add_row(name, label, f"{a:.{digits}f}", f"{b:.{digits}f}", ratio)
    end = os.getloadavg()
    table.caption = (
        f"{time.perf_counter() - tic:.0f} s; load average {load[0]:.1f} at the start, "
        f"{end[0]:.1f} at the end"
    )
    Console().print(table)


if __name__ == "__main__":
    main()
