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

Usage: ``python bench/solarspitzen_cost.py [--from 2023-07-02] [--to 2023-07-02]``
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vpp.core.site import Site, parse_site, read_site
from vpp.replay.data import read_replay_inputs
from vpp.replay.parallel import replay
from vpp.replay.runner import ReplayOptions
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


def totals(site: Site, first: date, last: date) -> tuple[dict[str, float], float]:
    inputs = read_replay_inputs(site, first, last)
    tic = time.perf_counter()
    result = replay(site, inputs, first, last, ReplayOptions(chain_days=7), workers=1)
    k = result.kpis
    row = k[(k["day"] == "total") & (k["strategy"] == "controller")].iloc[0]
    return {c: float(row[c]) for c, _, _ in FIGURES}, time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", default="2023-07-02")
    parser.add_argument("--to", dest="last", default="2023-07-02")
    args = parser.parse_args()
    first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    base = read_site(DEMO)
    ruled = under_the_rules(base)
    held = solarspitzen_devices(ruled)
    console = Console()
    console.print(f"load before: {os.getloadavg()[0]:.2f}")
    with ProcessPoolExecutor(2) as pool:
        free_run = pool.submit(totals, base, first, last)
        rules_run = pool.submit(totals, ruled, first, last)
        (free, free_s), (rules, rules_s) = free_run.result(), rules_run.result()
    table = Table(
        title=f"Controller strategy, demo district, {first} .. {last}: "
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
        f"the rules cost {cost:,.0f} EUR over {(last - first).days + 1} days "
        f"({cost / max(abs(free['adjusted_cost_eur']), 1e-9) * 100:+.2f} % of the cost without "
        f"them); load after: {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
