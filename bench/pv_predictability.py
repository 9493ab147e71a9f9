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
  that band, in % of the true energy; the same for the synthetic issued PV forecast
  (:class:`vpp.weather.SyntheticSolarForecast`) alone and for the rule forecast weighed
  with it by their track record (:func:`vpp.forecast.issued_solar_weight`, the weight's
  mean and range shown).

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
from vpp.forecast import (
    ForecastSettings,
    clear_sky_ghi,
    forecast,
    issued_solar_weight,
    known_series,
)
from vpp.weather import SyntheticSolarForecast

LEADS_H = ((0, 1), (1, 4), (4, 10), (10, 24), (24, 36))
COLUMN = "pv_w_per_kwp"
#: The rule forecast, the synthetic issued forecast alone (vpp.weather), the two weighed.
VARIANTS = ("rules", "issued", "combined")


def day_stats(data: pd.DataFrame) -> tuple[float, float]:
    """Standard deviation and lag-1 autocorrelation of the daily clear-sky index of PV."""
    index = pd.DatetimeIndex(data.index)
    sky = pd.Series(clear_sky_ghi(index, ForecastSettings()), index=index)
    days = index.tz_convert("Europe/Berlin").normalize()
    ratio = data[COLUMN].groupby(days).sum() / sky.groupby(days).sum()
    return float(ratio.std()), float(ratio.autocorr(1))


def lead_errors(
    data: pd.DataFrame,
    year: int,
    variant: str = "rules",
    weights: list[float] | None = None,
    settings: ForecastSettings | None = None,
    hour: int = 7,
) -> pd.DataFrame:
    """Bias and MAE [% of the true energy] per band of lead of the rule forecast
    (``variant`` "rules"), the synthetic issued forecast alone ("issued") or the two
    weighed by their track record ("combined"; the weights are appended to ``weights``)."""
    rows = []
    starts = pd.date_range(f"{year}-01-08", f"{year}-12-28", freq="3D", tz="Europe/Berlin")
    solar = None if variant == "rules" else SyntheticSolarForecast(data[COLUMN])
    for day in starts:
        now = (day + pd.Timedelta(hours=hour)).tz_convert("UTC")
        weight = 1.0 if variant == "issued" else None
        if variant == "combined":
            cutoff = now.floor("15min")
            known = known_series(data[COLUMN], cutoff)
            weight = issued_solar_weight(known, solar, cutoff, settings or ForecastSettings())  # type: ignore[arg-type]
            if weights is not None:
                weights.append(weight)
        got = forecast(
            data, now.to_pydatetime(), timedelta(hours=36), settings=settings, solar=solar,
            solar_weight=weight,
        )[COLUMN]  # fmt: skip
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
    parser.add_argument(
        "--nowcast",
        choices=("sky", "forecast"),
        default=ForecastSettings().solar_nowcast_reference,
        help="what the nowcast's index is measured against (ForecastSettings)",
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--hour", type=int, default=7, help="local hour the forecasts are made")
    args = parser.parse_args()
    settings = ForecastSettings(solar_nowcast_reference=args.nowcast)
    worlds: list[tuple[str, pd.DataFrame, int]] = [
        (f"shipped {y}", read_inputs(shipped_inputs(y)), y) for y in args.years
    ]
    if args.world is not None:
        base = read_inputs(shipped_inputs(2018))
        worlds.append(
            (f"noisy world (seed {args.world})", noisy_world(base, read_household(), args.world),
             2018)
        )  # fmt: skip
    table = Table(
        title=f"PV: day-to-day weather and the forecasts' error (made at {args.hour:02d}:00)"
    )
    table.add_column("world")
    table.add_column("forecast")
    table.add_column("daily clear-sky index: sd", justify="right")
    table.add_column("lag-1 autocorrelation", justify="right")
    for lo, hi in LEADS_H:
        table.add_column(f"{lo}-{hi} h: bias / MAE %", justify="right")
    for name, data, year in worlds:
        sd, autocorr = day_stats(data)
        for variant in args.variants:
            weights: list[float] = []
            errors = lead_errors(data, year, variant, weights, settings, args.hour)
            cells = [f"{b:+.1f} / {m:.1f}" for b, m in errors.to_numpy()]
            label = variant
            if weights:
                label += f" (weight {np.mean(weights):.2f}, {min(weights):.2f}-{max(weights):.2f})"
            table.add_row(name, label, f"{sd:.2f}", f"{autocorr:.2f}", *cells)
    Console(width=200).print(table)
    if not np.isfinite(sd):
        raise SystemExit("no PV in the data")


if __name__ == "__main__":
    main()
