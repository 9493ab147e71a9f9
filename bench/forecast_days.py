"""The plans' forecast error by weekday and holiday, from a replay report.

Reads ``steps.parquet`` of a replay report folder (``bench/replay_year.py --out DIR`` or
``vpp replay``) and compares, per quarter hour, what the plan in force forecast for it
(``planned_load_w``, ``planned_pv_available_w``, ``planned_heat_demand_th_w``) with what
happened (``load_w``, ``pv_available_w``, ``heat_demand_th_w``). Per local weekday, with
the holidays in Saxony as a row of their own: the mean error (what happened less the
forecast, kW: > 0 where the forecast was low) and the mean absolute error, each over the
quarter hours of those days. A rule that forecasts a day from a day that is lived
differently shows here as a bias on its weekday.

``--homes SEED [SEED ...]`` instead looks at the household load itself, with no replay:
the measured household's mean power by weekday (``data/household_htw_2010_quarter.parquet``,
all day and 10-18 h), and the mean absolute error of two day-ahead rules, each day of the
year from its 15th forecast from the latest earlier day of its BDEW day type (of its month
where there is one, as the forecasts do) or from the same weekday of the week before (where
that is of its type), on the measured household and on the noisy world's load of each seed
(:func:`vpp.data.world.noisy_world` on the shipped 2018 table).

Usage: ``python bench/forecast_days.py REPORT_DIR [--strategy controller]`` or
``python bench/forecast_days.py --homes 2018 7``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.data import read_inputs
from vpp.data.profiles import saxony_holidays_in, slp_day_types
from vpp.data.world import noisy_world, read_household

ROOT = Path(__file__).resolve().parents[1]
TZ = "Europe/Berlin"
#: (label, forecast column, actual column) in a report's steps.
QUANTITIES = (
    ("load", "planned_load_w", "load_w"),
    ("PV", "planned_pv_available_w", "pv_available_w"),
    ("heat", "planned_heat_demand_th_w", "heat_demand_th_w"),
)
DAY_ROWS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "holiday")


def by_day(steps: pd.DataFrame) -> pd.DataFrame:
    """Rows ``DAY_ROWS``; per quantity its bias and MAE [kW], and the days counted."""
    local = pd.DatetimeIndex(steps.index).tz_convert(TZ)
    dates = local.tz_localize(None).normalize()
    holidays = saxony_holidays_in(dates.year)
    kind = np.where(
        np.isin(dates.date, np.array(sorted(holidays), dtype=object)),
        "holiday",
        dates.day_name().str[:3],
    )
    out = pd.DataFrame(index=list(DAY_ROWS))
    for label, planned, actual in QUANTITIES:
        error = (steps[actual] - steps[planned]) / 1e3
        ok = error.notna().to_numpy()
        groups = pd.Series(error.to_numpy()[ok]).groupby(kind[ok])
        out[f"{label} bias"] = groups.mean()
        out[f"{label} MAE"] = groups.apply(lambda e: e.abs().mean())
    out["days"] = pd.Series(dates).groupby(kind).nunique()
    return out


def day_rules_mae(days: pd.DatetimeIndex, values: np.ndarray) -> tuple[float, float]:
    """Mean absolute error of the day-type rule and of the week before over ``values``
    (``(len(days), 96)``, local days), each day from the 15th."""
    types = slp_day_types(pd.Series(days), saxony_holidays_in(days.year))
    by_type, by_week = [], []
    for i in range(14, len(days)):
        earlier = [j for j in range(i - 1, -1, -1) if types[j] == types[i]]
        same_month = [j for j in earlier if days[j].month == days[i].month]
        rule = values[(same_month or earlier)[0]]
        week = values[i - 7] if types[i - 7] == types[i] else rule
        by_type.append(float(np.abs(rule - values[i]).mean()))
        by_week.append(float(np.abs(week - values[i]).mean()))
    return float(np.mean(by_type)), float(np.mean(by_week))


def homes(seeds: list[int]) -> None:
    """Print the measured household by weekday and the two rules' errors (``--homes``)."""
    measured = read_household()
    days = pd.date_range("2010-01-01", periods=measured.size // 96, freq="D")
    grid = measured[: len(days) * 96].reshape(len(days), 96)
    week = Table(title="measured household, mean power by weekday, W")
    week.add_column("")
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    for name in names:
        week.add_column(name[:3], justify="right")
    for label, part in (("all day", grid), ("10-18 h", grid[:, 40:72])):
        means = pd.Series(part.mean(axis=1), index=days).groupby(days.day_name()).mean()
        week.add_row(label, *(f"{means[n]:.0f}" for n in names))
    Console().print(week)
    rules = Table(title="day-ahead mean absolute error of two rules")
    for column in ("load", "unit", "latest day of its type", "same weekday a week before"):
        rules.add_column(column, justify="right")
    by_type, by_week = day_rules_mae(days, grid)
    rules.add_row("measured household 2010", "W", f"{by_type:.1f}", f"{by_week:.1f}")
    table = read_inputs(ROOT / "data" / "inputs_2018.parquet")
    for seed in seeds:
        load = noisy_world(table, measured, seed=seed)["load_w_per_mwh_a"]
        at = pd.DatetimeIndex(load.index).tz_convert(TZ)
        frame = pd.DataFrame(
            {
                "value": load.to_numpy(),
                "day": at.tz_localize(None).normalize(),
                "slot": at.hour * 4 + at.minute // 15,
            }
        )
        daily = frame.pivot_table(index="day", columns="slot", values="value", aggfunc="first")
        daily = daily.ffill(axis=1)  # the spring day's skipped hour
        by_type, by_week = day_rules_mae(pd.DatetimeIndex(daily.index), daily.to_numpy())
        name = f"noisy world, seed {seed}"
        rules.add_row(name, "W per MWh/a", f"{by_type:.2f}", f"{by_week:.2f}")
    Console().print(rules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, nargs="?")
    parser.add_argument("--strategy", default="controller")
    parser.add_argument("--homes", type=int, nargs="+", metavar="SEED")
    args = parser.parse_args()
    if args.homes:
        homes(args.homes)
        return
    if args.report is None:
        parser.error("give a report folder or --homes SEED")
    steps = pd.read_parquet(args.report / "steps.parquet")
    steps = steps[steps["strategy"] == args.strategy]
    if steps.empty:
        raise SystemExit(f"{args.report}: no steps of strategy {args.strategy!r}")
    table_data = by_day(steps)
    table = Table(title=f"{args.strategy}: forecast error by day, kW (> 0: forecast low)")
    table.add_column("day")
    for column in table_data.columns:
        table.add_column(column, justify="right")
    for day, row in table_data.iterrows():
        cells = [f"{v:.0f}" if c == "days" else f"{v:.1f}" for c, v in row.items()]
        table.add_row(str(day), *cells)
    Console().print(table)


if __name__ == "__main__":
    main()
