"""Skill of the synthetic issued PV forecasts (:class:`vpp.weather.SyntheticSolarForecast`)
against day-ahead persistence, hourly, on one column of a shipped year.

For every run (every 6 h of the year but the first two and last three days) the issue
usable 3 h after its run is read on the 48 h after that; hourly means are compared with the
observed hourly means, and day-ahead persistence (the same hour a day earlier) with the
same truth, over daylight hours, per band of hours after the run. Prints each band's RMSE
(and as % of the mean daylight value), persistence's, their ratio and the mean error.

The spread table ``vpp.weather.PV_ERROR_BY_LEAD`` was set on the shipped typical-year GHI
(``--column ghi_w_per_m2``, the default) to a ratio of about one half at 24-48 h, the skill
Perez et al. (2013) report for the best NWP-based forecasts.

Usage: ``python bench/pv_issued_skill.py [--year 2018|2023] [--column pv_w_per_kwp]``
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.data import read_inputs, shipped_inputs
from vpp.weather import SyntheticSolarForecast

#: Bands of hours after the run (the issue is usable from 3 h).
BANDS = {"3-9 h": (3, 9), "9-24 h": (9, 24), "24-48 h": (24, 48)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2018)
    parser.add_argument("--column", default="ghi_w_per_m2")
    args = parser.parse_args()
    data = read_inputs(shipped_inputs(args.year))[args.column]
    data.index = pd.DatetimeIndex(data.index).tz_convert("UTC")
    source = SyntheticSolarForecast(data)
    hourly = data.resample("h").mean()
    errors: dict[str, list[float]] = {b: [] for b in BANDS}
    persistence: dict[str, list[float]] = {b: [] for b in BANDS}
    first = data.index[0] + pd.Timedelta(days=2)
    runs = pd.date_range(first.floor("D"), data.index[-1] - pd.Timedelta(days=3), freq="6h")
    for run in runs:
        now = run + pd.Timedelta(hours=3)
        index = pd.date_range(now, periods=4 * 48, freq="15min")
        got = pd.Series(source.at(now, index), index=index).resample("h").mean()
        truth = hourly.reindex(got.index).to_numpy()
        lagged = hourly.reindex(got.index - pd.Timedelta(hours=24)).to_numpy()
        after = np.asarray((got.index - run) / pd.Timedelta(hours=1))
        day = (truth > 0) | (got.to_numpy() > 0)
        for band, (lo, hi) in BANDS.items():
            m = day & (after >= lo) & (after < hi)
            errors[band] += list(got.to_numpy()[m] - truth[m])
            persistence[band] += list(lagged[m] - truth[m])
    mean = float(hourly[hourly > 0].mean())
    table = Table(title=f"issued forecasts of {args.column}, {args.year}: hourly, daylight")
    for name in ("hours after the run", "RMSE", "% of mean", "persistence RMSE", "ratio",
                 "mean error"):  # fmt: skip
        table.add_column(name, justify="right")
    for band in BANDS:
        e, p = np.array(errors[band]), np.array(persistence[band])
        rmse, rmse_p = float(np.sqrt(np.nanmean(e**2))), float(np.sqrt(np.nanmean(p**2)))
        table.add_row(band, f"{rmse:.1f}", f"{100 * rmse / mean:.0f} %", f"{rmse_p:.1f}",
                      f"{rmse / rmse_p:.2f}", f"{np.nanmean(e):+.1f}")  # fmt: skip
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
