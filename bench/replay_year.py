"""Benchmark: a replayed day and a replayed year of the demo site on the shipped 2018 data.

Measures, for ``config/demo.toml`` on ``data/inputs_2018.parquet`` (every column real):

* one day in this process, with where the time goes: the live controller's jobs on the
  replay plant (forecasts and plans, one per quarter hour; polls every 10 s; dispatch,
  correction and keep-alive through the live safety code), the plant model's one-minute
  sub-steps, the oracle's plan;
* scaling: the same few days, each on its own, on 1 and on ``--workers`` worker processes;
* the year: every day of it with ``--full``, in chains of ``--chain-days`` days (each
  strategy starts a day where it ended the day before; chains run in parallel); by default
  a sample of ``--sample`` days spread evenly over the year, each on its own (the sample's
  mean time per day times 365 estimates the year's time; its quality is only a rough guide,
  as days on their own value, rather than use, what is stored at midnight);
* quality: the share of the oracle's savings (over no control) that the controller captured
  over the days replayed.

Targets (issue "Replay historic days offline"): a day in under 10 s, a year in under 30 min on
2 cores, at least 90 % of the oracle's savings captured.

With ``--out DIR`` the year's (or the sample's) report folder is written there too.

Usage: ``python bench/replay_year.py [--workers 2] [--sample 30 | --full] [--chain-days 7]
[--scaling-days 6] [--out DIR]``
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.core.site import Site, read_site
from vpp.replay.data import read_replay_inputs
from vpp.replay.kpi import day_table
from vpp.replay.parallel import ReplayResult, make_jobs, run_jobs
from vpp.replay.runner import DayResult, ReplayOptions

ROOT = Path(__file__).resolve().parents[1]
YEAR = 2018
#: First day with a full week of history before it (asof forecasts need it).
FIRST = date(YEAR, 1, 8)
ONE_DAY = date(YEAR, 5, 16)


def sample_days(n: int | None) -> list[date]:
    """``n`` days spread evenly over the year from :data:`FIRST`; None = every day."""
    last = date(YEAR, 12, 31)
    span = (last - FIRST).days
    if n is None:
        return [date(YEAR, 1, 1) + timedelta(days=i) for i in range(365)]
    return [FIRST + timedelta(days=round(i * span / max(n - 1, 1))) for i in range(n)]


def timed(
    site: Site, data: pd.DataFrame, days: list[date], workers: int, chain_days: int = 1
) -> tuple[list[DayResult], float]:
    """Replay ``days`` on ``workers`` processes; results and wall time [s]."""
    jobs = make_jobs(site, data, days, ReplayOptions(chain_days=chain_days))
    tic = time.perf_counter()
    results = run_jobs(jobs, workers=workers)
    return results, time.perf_counter() - tic


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
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.toml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=30, help="days of the year to replay")
    parser.add_argument("--full", action="store_true", help="replay every day of the year")
    parser.add_argument(
        "--full-days", type=int, default=None, help="with --full: only the year's first N days"
    )
    parser.add_argument(
        "--chain-days", type=int, default=ReplayOptions().chain_days, help="days per chain"
    )
    parser.add_argument("--scaling-days", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None, help="write the report folder here")
    args = parser.parse_args()
    site = read_site(args.config)
    data = read_replay_inputs(site, date(YEAR, 1, 1), date(YEAR, 12, 31))
    console = Console()
    rows: list[tuple[str, str, str]] = []

    one, wall = timed(site, data, [ONE_DAY], 1)
    rows += day_rows(one[0], wall)
    scaling = [ONE_DAY + timedelta(days=i) for i in range(args.scaling_days)]
    _, serial = timed(site, data, scaling, 1)
    _, parallel = timed(site, data, scaling, args.workers)
    rows.append(
        (
            f"scaling, {len(scaling)} days: 1 / {args.workers} workers",
            f"{serial:.0f} s / {parallel:.0f} s ({serial / parallel:.2f}x)",
            "",
        )
    )
    days = sample_days(None if args.full else args.sample)[: args.full_days if args.full else None]
    results, year_wall = timed(site, data, days, args.workers, args.chain_days)
    what = (
        f"{'year' if len(days) >= 365 else f'{len(days)} days'}, chains of {args.chain_days} days"
        if args.full
        else f"year sample ({len(days)} days on their own)"
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
                ReplayOptions(chain_days=args.chain_days),
                results,
                table,
                year_wall,
                args.workers,
                "local processes",
            ),
            args.out,
        )
    total = table[table["day"] == "total"].set_index("strategy")
    capture = total["capture_pct"].astype(float).to_dict()["controller"]
    costs = total["adjusted_cost_eur"].astype(float).to_dict()
    rows.append(
        (f"oracle savings captured by the controller ({what})", f"{capture:.1f} %", ">= 90 %")
    )
    for name in ("no_control", "self_consumption", "controller", "oracle"):
        rows.append((f"  adjusted cost, {name}", f"{costs[name]:,.0f} EUR", ""))

    out = Table(
        title=f"replay benchmark: {site.site.name}, {YEAR} data, "
        f"{os.cpu_count()} CPUs, {args.workers} workers"
    )
    for head in ("measurement", "value", "target"):
        out.add_column(head)
    for row in rows:
        out.add_row(*row)
    console.print(out)


if __name__ == "__main__":
    main()
