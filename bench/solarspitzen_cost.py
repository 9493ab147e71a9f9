"""What the 2025 rules for new PV cost the demo district: replayed days with and without them.

The demo site is replayed twice over the same days of the shipped data with the live
controller on the replay plant: once as it is (its PV commissioned before 25 Feb 2025) and
once with every inverter marked as commissioned on 1 Mar 2025 without a smart-meter gateway,
so the Solarspitzengesetz holds all of them (2-100 kWp): feed-in capped at 60 % of peak power
and zero export while the day-ahead price is negative. Both runs apply the same controller
code (the rules are signals the controller resolves, plans for and enforces). The table gives
the controller strategy's totals per run and the difference; the baseline is the run without
the rules, measured in the same invocation.

The price model is the market one of the site file (export paid at the day-ahead price less
fees), so the negative-price rule costs only what the optimizer would not have curtailed
anyway; under a fixed feed-in tariff it would cost more. The default day has the most
negative quarter hours of summer 2023 (2 July: 60 of them). The two runs go in parallel, one
process each.

A year: ``--year 2023 --samples 4 --days 7`` replays ``samples`` stretches of ``days``
consecutive days spread evenly over the year (the first starting on the year's first Monday,
each a season later for 4), every stretch a chain of its own, and scales the sampled totals
to the year's days (x 365 / sampled days). A few sampled stretches stand for the year: the
scaled figure is an estimate whose error the sample decides. Negative prices bunch on sunny
weekends, so whole weeks are sampled; the sample's negative quarter hours are printed next
to the year's, scaled the same way, to show how well it stands for them.

Usage: ``python bench/solarspitzen_cost.py [--from 2023-07-02] [--to 2023-07-02]``
or ``python bench/solarspitzen_cost.py --year 2023 [--samples 4] [--days 7]``
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vpp.core.site import Site, parse_site, read_site
from vpp.replay.data import read_replay_inputs
from vpp.replay.parallel import replay
from vpp.replay.runner import ReplayOptions, day_index
from vpp.signals.standing import solarspitzen_devices

DEMO = Path(__file__).resolve().parents[1] / "config" / "demo.toml"
FIGURES = (
    ("adjusted_cost_eur", "cost EUR (adj.)", 0),
    ("pv_generation_mwh", "PV MWh", 2),
    ("pv_curtailed_mwh", "curtailed MWh", 2),
    ("grid_export_mwh", "export MWh", 2),
    ("export_revenue_eur", "export EUR", 0),
)


def under_the_rules(site: Site) -> Site:
    data: dict[str, Any] = site.model_dump(mode="json")
    for d in data["devices"]:
        if d["kind"] == "pv":
            d["commissioned_on"] = "2025-03-01"
            d["smart_meter_gateway"] = False
    return parse_site(data, "demo under the Solarspitzengesetz")


def totals(site: Site, stretches: list[tuple[date, date]]) -> tuple[dict[str, float], float]:
    """The controller's totals summed over the stretches (each a chain of its own) and the
    wall time [s]."""
    tic = time.perf_counter()
    out = dict.fromkeys((c for c, _, _ in FIGURES), 0.0)
    for first, last in stretches:
        inputs = read_replay_inputs(site, first, last)
        result = replay(site, inputs, first, last, ReplayOptions(chain_days=7), workers=1)
        k = result.kpis
        row = k[(k["day"] == "total") & (k["strategy"] == "controller")].iloc[0]
        for c in out:
            out[c] += float(row[c])
    return out, time.perf_counter() - tic


def sampled(year: int, samples: int, days: int) -> list[tuple[date, date]]:
    """``samples`` stretches of ``days`` days, evenly spread over ``year`` from its first
    Monday."""
    first = date(year, 1, 1)
    first += timedelta(days=(7 - first.weekday()) % 7)
    gap = (date(year, 12, 31) - first).days // samples
    starts = [first + timedelta(days=(i * gap) // 7 * 7) for i in range(samples)]
    return [(d, d + timedelta(days=days - 1)) for d in starts]


def year_days(year: int) -> list[tuple[date, date]]:
    """The whole year as one stretch."""
    return [(date(year, 1, 1), date(year, 12, 31))]


def negative_quarters(site: Site, stretches: list[tuple[date, date]]) -> int:
    """Quarter hours with a negative day-ahead price on the stretches' local days."""
    count = 0
    for first, last in stretches:
        raw = read_replay_inputs(site, first, last)
        for n in range((last - first).days + 1):
            index = day_index(site, first + timedelta(days=n))
            count += int((raw.loc[index, "price_eur_per_mwh"] < 0).sum())
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", default="2023-07-02")
    parser.add_argument("--to", dest="last", default="2023-07-02")
    parser.add_argument("--year", type=int, help="sample this year and scale to it")
    parser.add_argument("--samples", type=int, default=4, help="stretches sampled (--year)")
    parser.add_argument("--days", type=int, default=7, help="days per stretch (--year)")
    args = parser.parse_args()
    if args.year is not None:
        stretches = sampled(args.year, args.samples, args.days)
    else:
        stretches = [(date.fromisoformat(args.first), date.fromisoformat(args.last))]
    n_days = sum((b - a).days + 1 for a, b in stretches)
    scale = 1.0
    if args.year is not None:
        scale = ((date(args.year, 12, 31) - date(args.year, 1, 1)).days + 1) / n_days
    base = read_site(DEMO)
    ruled = under_the_rules(base)
    held = solarspitzen_devices(ruled)
    console = Console()
    console.print(f"load before: {os.getloadavg()[0]:.2f}")
    with ProcessPoolExecutor(2) as pool:
        free_run = pool.submit(totals, base, stretches)
        rules_run = pool.submit(totals, ruled, stretches)
        (free, free_s), (rules, rules_s) = free_run.result(), rules_run.result()
    spans = ", ".join(f"{a} .. {b}" for a, b in stretches)
    table = Table(
        title=f"Controller strategy, demo district, {spans}: "
        f"{len(held)} of {len(ruled.pv)} inverters under the rules"
    )
    table.add_column("run")
    for _, head, _ in FIGURES:
        table.add_column(head, justify="right")
    table.add_column("wall s", justify="right")
    for name, figures, wall in (("without the rules", free, free_s), ("with", rules, rules_s)):
        table.add_row(name, *(f"{figures[c]:,.{d}f}" for c, _, d in FIGURES), f"{wall:.0f}")
    table.add_row(
        "difference",
        *(f"{rules[c] - free[c]:+,.{d}f}" for c, _, d in FIGURES),
        "",
    )
    console.print(table)
    cost = rules["adjusted_cost_eur"] - free["adjusted_cost_eur"]
    console.print(
        f"the rules cost {cost:,.0f} EUR over {n_days} days "
        f"({cost / max(abs(free['adjusted_cost_eur']), 1e-9) * 100:+.2f} % of the cost without "
        f"them); load after: {os.getloadavg()[0]:.2f}"
    )
    if args.year is not None:
        curtailed = (rules["pv_curtailed_mwh"] - free["pv_curtailed_mwh"]) * scale
        console.print(
            f"scaled to {args.year} (x {scale:.1f}, {n_days} sampled days): the rules cost "
            f"{cost * scale:,.0f} EUR a year (without them "
            f"{free['adjusted_cost_eur'] * scale:,.0f} EUR), curtailed {curtailed:+,.1f}"
            f" MWh; negative quarter hours: {negative_quarters(base, stretches)} in the sample "
            f"(x {scale:.1f} = {negative_quarters(base, stretches) * scale:,.0f}), "
            f"{negative_quarters(base, year_days(args.year))} in {args.year}"
        )


if __name__ == "__main__":
    main()
