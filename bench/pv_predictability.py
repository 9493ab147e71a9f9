"""How predictable each replayed world's PV is: the day-to-day weather in it, and the rule
forecast's error by lead time.

The shipped 2018 PV is Germany's actual solar generation over its installed capacity (a
national aggregate); the 2023 file's PV is one Leipzig roof modelled from the typical-year
weather; the noisy world (``--world SEED``) gives the district local PV from the 2018 file.
A controller's share of the bound's savings depends on how well PV can be forecast, so the
replays' figures are read next to this table.

Per world:

- the daily clear-sky index of PV (a day's PV energy over the clear-sky GHI energy of
  :func:`vpp.forecast.clear_sky_ghi`): its standard deviation over the days and its lag-1
  autocorrelation (how much today says about tomorrow, which day-to-day persistence lives on);
- the rule forecast of :mod:`vpp.forecast` made at 07:00 local every third day (from 8
  January), summed per band of lead time: bias and mean absolute error of the energy in
  that band, in % of the true energy.

Usage: ``python bench/pv_predictability.py [--years 2018 2023] [--world SEED]``
"""

from __future__ import annotations

import argparse
from datetime import timedelta

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.data import read_inputs, shipped_inputs
from vpp.data.world import noisy_world, read_household
from vpp.forecast import ForecastSettings, clear_sky_ghi, forecast

LEADS_H = ((0, 1), (1, 4), (4, 10), (10, 24), (24, 36))
COLUMN = "pv_w_per_kwp"


def day_stats(data: pd.DataFrame) -> tuple[float, float]:
    """Standard deviation and lag-1 autocorrelation of the daily clear-sky index of PV."""
    index = pd.DatetimeIndex(data.index)
    sky = pd.Series(clear_sky_ghi(index, ForecastSettings()), index=index)
    days = index.tz_convert("Europe/Berlin").normalize()
    ratio = data[COLUMN].groupby(days).sum() / sky.groupby(days).sum()
    return float(ratio.std()), float(ratio.autocorr(1))


def lead_errors(data: pd.DataFrame, year: int) -> pd.DataFrame:
    """Bias and MAE [% of the true energy] of the rule forecast per band of lead."""
    rows = []
    starts = pd.date_range(f"{year}-01-08", f"{year}-12-28", freq="3D", tz="Europe/Berlin")
    for day in starts:
        now = (day + pd.Timedelta(hours=7)).tz_convert("UTC")
        got = forecast(data, now.to_pydatetime(), timedelta(hours=36))[COLUMN]
        truth = data[COLUMN].reindex(got.index)
        lead = (pd.DatetimeIndex(got.index) - now) / pd.Timedelta(hours=1)
        for lo, hi in LEADS_H:
            band = (lead >= lo) & (lead < hi)
            error = got[band] - truth[band]
            rows.append((f"{lo}-{hi} h", float(truth[band].sum()), float(error.sum()),
                         float(error.abs().sum())))  # fmt: skip
    frame = pd.DataFrame(rows, columns=["lead", "truth", "error", "abs"])
    sums = frame.groupby("lead", sort=False)[["truth", "error", "abs"]].sum()
    return pd.DataFrame(
        {
            "bias %": 100.0 * sums["error"] / sums["truth"],
            "MAE %": 100.0 * sums["abs"] / sums["truth"],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[2018, 2023])
    parser.add_argument("--world", type=int, default=None, metavar="SEED")
    args = parser.parse_args()
    worlds: list[tuple[str, pd.DataFrame, int]] = [
        (f"shipped {y}", read_inputs(shipped_inputs(y)), y) for y in args.years
    ]
    if args.world is not None:
        base = read_inputs(shipped_inputs(2018))
        worlds.append(
            (f"noisy world (seed {args.world})", noisy_world(base, read_household(), args.world),
             2018)
        )  # fmt: skip
    table = Table(title="PV: day-to-day weather and the rule forecast's error (made at 07:00)")
    table.add_column("world")
    table.add_column("daily clear-sky index: sd", justify="right")
    table.add_column("lag-1 autocorrelation", justify="right")
    for lo, hi in LEADS_H:
        table.add_column(f"{lo}-{hi} h: bias / MAE %", justify="right")
    for name, data, year in worlds:
        sd, autocorr = day_stats(data)
        errors = lead_errors(data, year)
        cells = [f"{b:+.1f} / {m:.1f}" for b, m in errors.to_numpy()]
        table.add_row(name, f"{sd:.2f}", f"{autocorr:.2f}", *cells)
    Console(width=200).print(table)
    if not np.isfinite(sd):
        raise SystemExit("no PV in the data")


if __name__ == "__main__":
    main()
