"""Benchmark: replayed weeks and a replayed year of the demo site on a shipped year (2018).

Measures, for ``config/demo.toml`` on ``data/inputs_2018.parquet`` (every column real):

* one day in this process, with where the time goes: the live controller's jobs on the
  replay plant (forecasts and plans, one per quarter hour; polls every 10 s; dispatch,
  correction and keep-alive through the live safety code), the plant model's one-minute
  sub-steps, the oracle's plan, the bound's LP solves (``--skip-day`` leaves this out);
* scaling: the same few days, each on its own, on 1 and on ``--workers`` worker processes
  (``--scaling-days 0`` leaves it out);
* the year: every day of it with ``--full``, in chains of ``--chain-days`` days; by default
  ``--weeks`` chains of 7 days spread evenly over the year (the sample's mean time per day
  times 365 estimates the year's time);
* quality, over the days replayed: the costs of no control, self-consumption, the
  controller, the oracle and the bound (:mod:`vpp.replay.bound`: perfect foresight over each
  chain, ending where the controller ended); the controller's share of the bound's savings
  against no control and against self-consumption (``1 - regret / regret_reference``, no
  valuation of stored energy), the old adjusted capture of the oracle's savings as a
  secondary figure; CO2, waste heat used against boiler heat; how far the controller's
  plans missed the grid exchange (plan made from forecasts vs what happened, MAE); each
  month's shares (does the controller beat self-consumption in every month?).

Targets (issue "Control quality you can defend"): >= 90 % of the bound's savings over the
year, better than self-consumption in every month, a year in under 30 min on 2 cores.

With ``--out DIR`` the report folder is written there too.

``--world SEED`` replays the noisy world of :mod:`vpp.data.world` (stochastic homes, heat,
IT load, local PV; real prices) made with that seed instead of the shipped year, with each
inverter's PV from its roof and the minute cloud process of :mod:`vpp.data.clouds` (same
seed): the controller's polls see PV move inside the quarter hour (``--no-clouds``: without).

``--year 2023`` replays the second shipped file instead: real 2023 day-ahead prices (301
negative hours, down to -500 EUR/MWh), PV and heat demand from the typical-year weather, no
CO2 column (CO2 is then not priced); see docs/replay-world.md for what was and was not
chosen on it.

Usage: ``python bench/replay_year.py [--workers 2] [--weeks 4 | --full] [--chain-days 7]
[--scaling-days 6] [--skip-day] [--world SEED [--no-clouds]] [--week-starts DATE,DATE]
[--forecaster rules|learned] [--pv rules|issued] [--year 2018|2023] [--out DIR]
[--progress CSV]``

``--progress CSV`` appends every day's KPI rows to ``CSV`` as its chain finishes, so a run
cut short still leaves the chains it finished (``bench/regret_causes.py --progress CSV``
sums them).

``--forecaster`` overrides the site file's ``[forecast] method`` (``learned``: the quantile
forecasts of :mod:`vpp.learned`, refitted once a day on the 28 days before it); ``--pv``
its ``[forecast] pv`` (``issued``, the default: synthetic issued PV forecasts weighed against
the rules, :class:`vpp.weather.SyntheticSolarForecast`; ``rules``: the rules alone).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.core.site import Site, read_site
from vpp.data import read_inputs, shipped_inputs
from vpp.data.clouds import CloudParams
from vpp.data.world import noisy_world, read_household
from vpp.replay.baselines import BOUND, CONTROLLER, NO_CONTROL, ORACLE, SELF_CONSUMPTION
from vpp.replay.data import read_replay_inputs
from vpp.replay.kpi import day_table, forecast_summary, monthly
from vpp.replay.parallel import ReplayResult, make_jobs, run_jobs
from vpp.replay.runner import DayResult, ReplayOptions

ROOT = Path(__file__).resolve().parents[1]
#: The year replayed by default; ``--year 2023`` replays the second shipped file (real 2023
#: prices, PV and heat from the typical-year weather, no CO2 column: see data/README.md).
YEAR = 2018
YEARS = (2018, 2023)


def first_day(year: int) -> date:
    """First day with a full week of history before it (asof forecasts need it)."""
    return date(year, 1, 8)


def one_day(year: int) -> date:
    """The day timed on its own."""
    return date(year, 5, 16)


def sample_days(weeks: int | None, year: int = YEAR) -> list[date]:
    """``weeks`` runs of 7 days spread evenly over ``year`` from :func:`first_day`; None =
    every day."""
    if weeks is None:
        return [date(year, 1, 1) + timedelta(days=i) for i in range(365)]
    first = first_day(year)
    span = (date(year, 12, 24) - first).days
    starts = [first + timedelta(days=round(i * span / max(weeks - 1, 1))) for i in range(weeks)]
    return [s + timedelta(days=d) for s in starts for d in range(7)]


def timed(
    site: Site,
    data: pd.DataFrame,
    days: list[date],
    workers: int,
    options: ReplayOptions,
    progress: Path | None = None,
) -> tuple[list[DayResult], float]:
    """Replay ``days`` on ``workers`` processes; results and wall time [s]. With
    ``progress``, each day's KPI rows are appended to that CSV as its chain finishes."""
    jobs = make_jobs(site, data, days, options)
    tic = time.perf_counter()
    on_day = None if progress is None else _appender(progress)
    results = run_jobs(jobs, workers=workers, on_day=on_day)
    return results, time.perf_counter() - tic


def _appender(path: Path) -> Callable[[DayResult], None]:
    """A callback that appends a finished day's KPI rows (no totals) to the CSV ``path``."""
    path.unlink(missing_ok=True)

    def append(result: DayResult) -> None:
        table = day_table([(result.day.isoformat(), result.kpis)])
        rows = table[table["day"] != "total"]
        rows.to_csv(path, mode="a", header=not path.exists(), index=False, float_format="%.9g")

    return append


def day_rows(result: DayResult, wall_s: float) -> list[tuple[str, str, str]]:
    """Where one day's time went."""
    t = result.timings
    plans = result.kpis["controller"]["plans"]
    writes_s = sum(t.get(f"controller_{j}_s", 0.0) for j in ("dispatch", "correct", "keepalive"))
    rows = [
        (f"one day ({result.day}), 1 process", f"{wall_s:.1f} s", "< 10 s"),
        ("  forecasts (one per quarter hour)", f"{t['controller_forecast_s']:.1f} s", ""),
        (
            "  plans",
            f"{t['controller_planner_s']:.1f} s ({plans:.0f} x "
            f"{t['controller_planner_s'] / max(plans, 1):.3f} s)",
            "",
        ),
        ("  polls (every 10 s)", f"{t.get('controller_poll_s', 0.0):.2f} s", ""),
        (
            "  dispatch, correction, keep-alive",
            f"{writes_s:.2f} s",
            "",
        ),
        ("  plant model (1-min sub-steps)", f"{t['controller_plant_s']:.2f} s", ""),
        ("  oracle (model build + plan + loop)", f"{t['oracle_s']:.1f} s", ""),
        ("  bound (LP build + 4 solves)", f"{t.get('bound_s', 0.0):.2f} s", ""),
    ]
    return rows


def with_forecaster(site: Site, method: str, pv: str = "site") -> Site:
    """``site`` with its ``[forecast] method`` and ``pv`` set (``site``: unchanged)."""
    update = {k: v for k, v in (("method", method), ("pv", pv)) if v != "site"}
    if not update:
        return site
    return site.model_copy(update={"forecast": site.forecast.model_copy(update=update)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.toml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--weeks", type=int, default=4, help="weeks of the year to replay")
    parser.add_argument("--full", action="store_true", help="replay every day of the year")
    parser.add_argument(
        "--full-days", type=int, default=None, help="with --full: only the year's first N days"
    )
    parser.add_argument(
        "--chain-days", type=int, default=ReplayOptions().chain_days, help="days per chain"
    )
    parser.add_argument("--scaling-days", type=int, default=6)
    parser.add_argument("--skip-day", action="store_true", help="no one-day timing")
    parser.add_argument("--out", type=Path, default=None, help="write the report folder here")
    parser.add_argument(
        "--progress",
        type=Path,
        default=None,
        help="append each replayed day's KPI rows to this CSV as its chain finishes",
    )
    parser.add_argument(
        "--world",
        type=int,
        default=None,
        metavar="SEED",
        help="replay the noisy world of vpp.data.world with this seed instead of the shipped year",
    )
    parser.add_argument(
        "--no-clouds",
        action="store_true",
        help="with --world: every inverter follows the world's PV profile (no roofs, no clouds)",
    )
    parser.add_argument(
        "--week-starts",
        type=lambda text: [date.fromisoformat(d) for d in text.split(",")],
        default=None,
        metavar="DATE,DATE",
        help="replay the weeks starting on these days instead of --weeks spread over the year",
    )
    parser.add_argument(
        "--forecaster",
        choices=("site", "rules", "learned"),
        default="site",
        help="the controller's forecasts: as the site file says, or rules or learned",
    )
    parser.add_argument(
        "--pv",
        choices=("site", "rules", "issued"),
        default="site",
        help="the controller's PV forecast: as the site file says, the rules alone, or with "
        "synthetic issued PV forecasts",
    )
    parser.add_argument(
        "--year",
        type=int,
        choices=YEARS,
        default=YEAR,
        help="the shipped year to replay (2023: see docs/replay-world.md)",
    )
    args = parser.parse_args()
    year = args.year
    site = with_forecaster(read_site(args.config), args.forecaster, args.pv)
    data = read_replay_inputs(site, date(year, 1, 1), date(year, 12, 31))
    clouds = None
    if args.world is not None:
        data = noisy_world(read_inputs(shipped_inputs(year)), read_household(), args.world)
        clouds = None if args.no_clouds else CloudParams(seed=args.world)
    single = ReplayOptions(chain_days=1, clouds=clouds)
    # The whole year in chains that start again on every month's first day: each month's
    # figures are then those of whole chains, measured against the month's own bound.
    chained = ReplayOptions(chain_days=args.chain_days, clouds=clouds, month_chains=args.full)
    console = Console()
    rows: list[tuple[str, str, str]] = []
    load = os.getloadavg()
    rows.append(("load average (1, 5, 15 min) at start", ", ".join(f"{x:.1f}" for x in load), ""))

    if not args.skip_day:
        one, wall = timed(site, data, [one_day(year)], 1, single)
        rows += day_rows(one[0], wall)
    if args.scaling_days > 0:
        scaling = [one_day(year) + timedelta(days=i) for i in range(args.scaling_days)]
        _, serial = timed(site, data, scaling, 1, single)
        _, parallel = timed(site, data, scaling, args.workers, single)
        rows.append(
            (
                f"scaling, {len(scaling)} days: 1 / {args.workers} workers",
                f"{serial:.0f} s / {parallel:.0f} s ({serial / parallel:.2f}x)",
                "",
            )
        )
    days = sample_days(None if args.full else args.weeks, year)[
        : args.full_days if args.full else None
    ]
    if args.week_starts:
        days = [start + timedelta(days=d) for start in args.week_starts for d in range(7)]
        args.weeks = len(args.week_starts)
    results, year_wall = timed(site, data, days, args.workers, chained, args.progress)
    what = (
        f"{'year' if len(days) >= 365 else f'{len(days)} days'}, chains of {args.chain_days} days"
        " cut at month ends"
        if args.full
        else f"{args.weeks} weeks from {', '.join(d.isoformat() for d in args.week_starts)}"
        if args.week_starts
        else f"{args.weeks} weeks spread over the year, chains of {args.chain_days} days"
    )
    rows.append((f"{what}, {args.workers} workers", f"{year_wall / 60:.1f} min", ""))
    rows.append(
        (
            f"year (365 days), {args.workers} workers" + ("" if len(days) >= 365 else ", est."),
            f"{year_wall / len(days) * 365 / 60:.1f} min",
            "< 30 min",
        )
    )
    table = day_table((r.day.isoformat(), r.kpis) for r in results)
    if args.out is not None:
        from vpp.replay.report import write_report

        write_report(
            ReplayResult(
                site,
                chained,
                results,
                table,
                year_wall,
                args.workers,
                "local processes",
            ),
            args.out,
        )
    rows += quality_rows(table, results)
    # A job that failed in a replayed day (kept going, as live) makes its figures suspect.
    failed = [f"{r.day}: {n}" for r in results for n in r.notes if "job " in n and " failed" in n]
    rows.append(("controller job failures (replayed days' notes)", str(len(failed)), "0"))
    rows.append(("load average (1, 5, 15 min) at end", _load(), ""))
    world = "shipped" if args.world is None else f"noisy world (seed {args.world}) of the"
    if args.world is not None:
        world += " (no PV clouds)" if clouds is None else " (PV clouds)"
    out = Table(
        title=f"replay benchmark: {site.site.name}, {world} {year} data, "
        f"{site.forecast.method} forecasts, "
        f"{os.cpu_count()} CPUs, {args.workers} workers"
    )
    for head in ("measurement", "value", "target"):
        out.add_column(head)
    for row in rows:
        out.add_row(*row)
    console.print(out)
    console.print(month_table(table, chained.month_chains))
    for note in failed[:5]:
        console.print(f"[bold red]job failed[/] {note}")


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def quality_rows(table: pd.DataFrame, results: list[DayResult]) -> list[tuple[str, str, str]]:
    """Costs, shares, CO2, heat and plan errors over the days replayed."""
    total = table[table["day"] == "total"].set_index("strategy")
    rows: list[tuple[str, str, str]] = []
    ctl = total.loc[CONTROLLER]
    rows.append(
        (
            "controller: share of the bound's savings over no control",
            f"{ctl['share_vs_no_control_pct']:.1f} %",
            ">= 90 %",
        )
    )
    rows.append(
        (
            "controller: share of the bound's savings over self-consumption",
            f"{ctl['share_vs_self_consumption_pct']:.1f} %",
            "> 0 % every month",
        )
    )
    limits = float(ctl["grid_limits_eur"])
    within = float(ctl["regret_eur"]) - limits
    kept = [
        100.0 * (1.0 - within / float(total.loc[ref, "regret_eur"]))
        for ref in (NO_CONTROL, SELF_CONSUMPTION)
    ]
    rows.append(
        (
            "  (secondary) controller's regret: of it the bound's gain past the site's grid"
            " limits / shares without that part (no control, self-cons.)",
            f"{limits:,.0f} EUR / {kept[0]:.1f} % / {kept[1]:.1f} %",
            "",
        )
    )
    rows.append(
        (
            "  (secondary) oracle's adjusted savings captured",
            f"{ctl['capture_pct']:.1f} %",
            "",
        )
    )
    for name in (NO_CONTROL, SELF_CONSUMPTION, CONTROLLER, ORACLE, BOUND):
        r = total.loc[name]
        rows.append(
            (
                f"  {name}: cost / regret / adjusted",
                f"{r['cost_eur']:,.0f} / {r['regret_eur']:,.0f} / "
                f"{r['adjusted_cost_eur']:,.0f} EUR",
                "",
            )
        )
    for name in (NO_CONTROL, SELF_CONSUMPTION, CONTROLLER, BOUND):
        r = total.loc[name]
        rows.append(
            (
                f"  {name}: CO2 / waste heat used / boiler heat",
                f"{r['co2_t']:,.1f} t / {r['waste_heat_used_mwh']:,.1f} MWh / "
                f"{r['boiler_heat_mwh']:,.1f} MWh",
                "",
            )
        )
    gap = float(total["bound_gap_eur"].max())
    rows.append(("  bound: solver optimum above its certified dual bound", f"{gap:.2g} EUR", ""))
    errors = []
    for result in results:
        f = result.frames[CONTROLLER]
        errors.append(np.abs((f["planned_grid_w"] - f["grid_w"]).to_numpy(float)))
    mae = float(np.nanmean(np.concatenate(errors))) / 1e3 if errors else float("nan")
    rows.append(
        (
            "  controller: grid exchange, plan (from forecasts) vs actual, MAE",
            f"{mae:,.1f} kW",
            "",
        )
    )
    figures = {str(c): float(v) for c, v in ctl.items() if isinstance(v, float | int)}
    summary = forecast_summary(figures)
    for quantity, label in (("load", "base load"), ("pv", "PV available"), ("heat", "heat demand")):
        e = summary[quantity]
        rows.append(
            (
                f"  controller: {label} forecast, quarter hour ahead: MAE / pinball / P10-P90",
                f"{e['mae_w'] / 1e3:,.1f} kW / {e['pinball_w'] / 1e3:,.1f} kW / "
                f"{e['coverage_pct']:.0f} %",
                "",
            )
        )
    co2 = summary["co2"]
    rows.append(
        (
            "  controller: grid CO2 intensity forecast, quarter hour ahead: MAE / bias / mean",
            f"{co2['mae_gkwh']:,.0f} / {co2['bias_gkwh']:+,.0f} / {co2['mean_gkwh']:,.0f} g/kWh"
            if not math.isnan(co2["mae_gkwh"])
            else "none in the inputs",
            "",
        )
    )
    return rows


def month_table(table: pd.DataFrame, month_chains: bool) -> Table:
    """Per month: the controller's shares, and whether it beat self-consumption.
    ``month_chains``: the chains start again on each month's first day (each month has its
    own bound); else a chain across a month's end is split by the bound's cost per day."""
    months = monthly(table)
    how = (
        "chains start on the 1st: each month's own bound"
        if month_chains
        else "chains across month ends split by the bound's cost per day"
    )
    out = Table(title=f"per month ({how})")
    for head in ("month", "share vs no control", "share vs self-cons.", "beats self-cons."):
        out.add_column(head)
    for month, group in months.groupby("day", sort=True):
        g = group.set_index("strategy")
        ctl = g.loc[CONTROLLER]
        beats = ctl["regret_eur"] < g.loc[SELF_CONSUMPTION, "regret_eur"]
        out.add_row(
            str(month),
            f"{ctl['share_vs_no_control_pct']:.1f} %",
            f"{ctl['share_vs_self_consumption_pct']:.1f} %",
            "yes" if beats else "NO",
        )
    return out


if __name__ == "__main__":
    main()
