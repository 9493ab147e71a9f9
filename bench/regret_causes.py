"""Where the controller loses to the bound: its regret split by cause, per day and month.

Reads a replay report folder (``bench/replay_year.py --out DIR`` or ``vpp replay``:
``kpis.csv`` and ``steps.parquet``) and splits, per quarter hour, the controller's cost
above the bound's (the bound ending where the controller ended, so no stored energy is
valued) into the flows that differ. Each flow's difference is priced at the controller's
marginal price of grid energy in that quarter hour, ``pi`` = import price plus the CO2 of
an imported MWh when the controller imported, the export price when it exported:

* ``battery``: ``-pi * d(battery discharge - charge)`` plus the difference in wear;
* ``heat``: ``pi * d(heat pump + dry cooler electricity)`` plus the difference in gas and
  its CO2 (heat pump against boiler, waste heat taken or cooled away);
* ``pv``: ``-pi * d(PV fed)`` (curtailment);
* ``grid``: what the linear pricing misses: where the bound sits on the other side of zero
  exchange (import priced, export earned at a lower price), i.e. self-consumption.

The four add up to the regret of each day (up to float rounding). Over a whole chain the
stored energy at the end is the same for both; a day inside a chain is not: ``stored``
gives the day's change of stored energy (batteries and heat store, MWh) of the controller
less the bound's, the energy moved from one day to the next.

``--progress CSV`` instead reads the day rows that ``bench/replay_year.py --progress CSV``
appends as chains finish (a run still going, or cut short) and prints each strategy's
costs and regrets over the days there, and the controller's shares of the bound's savings
(over whole chains exact, as in the benchmark), in total and per month.

``--strategy oracle`` splits the oracle's cost above the bound's the same way (the bound
still ends where the controller ended, so a day's sum is not the oracle's own regret).

``--exchange`` instead compares the strategy's grid exchange with the bound's per quarter
hour: the energy it exported and imported beyond the bound (MWh), the share of that extra
export which the plan in force had planned (``planned_grid_w`` < -1 kW) and in which the
bound was charging its batteries, the mean prices of both, and both by local hour of day.

Usage: ``python bench/regret_causes.py REPORT_DIR [--config config/demo.toml]
[--strategy oracle] [--exchange]`` or
``python bench/regret_causes.py --progress CSV``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.core.site import Site, read_site

ROOT = Path(__file__).resolve().parents[1]
CAUSES = ("battery", "heat", "pv", "grid")


def read_steps(report: Path, strategy: str = "controller") -> pd.DataFrame:
    """``strategy``'s and the bound's quarter hours of a report folder, ``strategy``'s
    labelled ``controller`` (so that another strategy, e.g. the oracle, is split the same
    way)."""
    steps = pd.read_parquet(report / "steps.parquet")
    steps = steps[steps["strategy"].isin((strategy, "bound"))].copy()
    steps["strategy"] = steps["strategy"].replace({strategy: "controller"})
    return steps


def step_causes(steps: pd.DataFrame, site: Site) -> pd.DataFrame:
    """Per quarter hour: regret [EUR] by cause (without wear) and the controller's side."""
    dt_h = site.optimizer.step_min / 60.0
    co2_eur_per_kg = site.economics.co2_price_eur_per_t / 1e3
    gas_eur_per_mwh_th = (
        site.heat.gas_price_eur_per_mwh + site.economics.gas_co2_kg_per_mwh * co2_eur_per_kg
    ) / site.heat.boiler_efficiency
    keys = ["day", "time"]
    c = steps[steps["strategy"] == "controller"].reset_index().set_index(keys).sort_index()
    b = steps[steps["strategy"] == "bound"].reset_index().set_index(keys).sort_index()
    b = b.reindex(c.index)
    imp_eur = c["price_import_eur_per_mwh"] + c["co2_g_per_kwh"] * co2_eur_per_kg
    exp_eur = c["price_export_eur_per_mwh"]

    def money(grid_w: pd.Series) -> pd.Series:
        return (imp_eur * grid_w.clip(lower=0) - exp_eur * (-grid_w).clip(lower=0)) * dt_h / 1e6

    pi = np.where(c["grid_w"] > 0, imp_eur, exp_eur) * dt_h / 1e6
    d = c[list(_FLOWS)] - b[list(_FLOWS)]
    out = pd.DataFrame(index=c.index)
    out["battery"] = -pi * d["battery_w"]
    out["heat"] = pi * (d["heat_pump_el_w"] + d["dry_cooler_el_w"]) + (
        gas_eur_per_mwh_th * d["boiler_th_w"] * dt_h / 1e6
    )
    out["pv"] = -pi * d["pv_w"]
    electric = money(c["grid_w"]) - money(b["grid_w"])
    out["grid"] = (
        electric
        - (out["battery"] + out["heat"] + out["pv"])
        + (gas_eur_per_mwh_th * d["boiler_th_w"] * dt_h / 1e6)
    )
    return out


_FLOWS = ("battery_w", "heat_pump_el_w", "dry_cooler_el_w", "boiler_th_w", "pv_w")


def day_causes(report: Path, site: Site, strategy: str = "controller") -> pd.DataFrame:
    """Per day: ``strategy``'s regret and its causes [EUR], the stored energy moved to the
    next day [MWh]."""
    steps = read_steps(report, strategy)
    per_step = step_causes(steps, site)
    days = per_step.groupby(level="day").sum()
    kpis = pd.read_csv(report / "kpis.csv")
    kpis = kpis[kpis["day"] != "total"].set_index(["day", "strategy"])
    ctl = kpis.xs(strategy, level="strategy")
    bnd = kpis.xs("bound", level="strategy")
    days["battery"] += (ctl["wear_cost_eur"] - bnd["wear_cost_eur"]).reindex(days.index)
    days["regret"] = ctl["regret_eur"].reindex(days.index)
    days["bound_saves"] = kpis.xs("no_control", level="strategy")["regret_eur"].reindex(days.index)
    days["stored_mwh"] = _stored_change(steps, "controller") - _stored_change(steps, "bound")
    return days


def _stored_change(steps: pd.DataFrame, strategy: str) -> pd.Series:
    """Per day: energy stored at the day's last step less at its first [MWh] (the first
    step's change is left out, which is the same for both only to first order)."""
    s = steps[steps["strategy"] == strategy].sort_index()
    stored = (s["battery_soc_wh"] + s["store_wh"]) / 1e6
    g = stored.groupby(s["day"])
    return g.last() - g.first()


#: Columns of the KPI rows whose difference, controller less bound, the progress table shows.
COMPONENTS = {
    "import_cost_eur": "d import EUR",
    "export_revenue_eur": "d export EUR",
    "gas_cost_eur": "d gas EUR",
    "co2_cost_eur": "d CO2 EUR",
    "wear_cost_eur": "d wear EUR",
    "boiler_heat_mwh": "d boiler MWh",
    "waste_heat_used_mwh": "d waste heat MWh",
    "pv_curtailed_mwh": "d curtailed MWh",
    "battery_discharged_mwh": "d bat. out MWh",
}


def progress_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """Per month and in total: days, costs and regrets [EUR] of the strategies, the
    controller's shares of the bound's savings over no control and self-consumption [%], and
    the controller's cost components and flows less the bound's (:data:`COMPONENTS`)."""
    rows = rows.assign(month=rows["day"].str[:7])

    def per_month(column: str) -> pd.DataFrame:
        table = rows.pivot_table(index="month", columns="strategy", values=column, aggfunc="sum")
        table.loc["total"] = table.sum()
        return table

    regret, cost = per_month("regret_eur"), per_month("cost_eur")
    days = rows[rows["strategy"] == "controller"].groupby("month").size()
    days.loc["total"] = days.sum()
    out = pd.DataFrame({"days": days})
    for name in ("no_control", "self_consumption", "controller"):
        out[f"{name} cost"] = cost[name]
        out[f"{name} regret"] = regret[name]
    out["bound cost"] = cost["bound"]
    for ref in ("no_control", "self_consumption"):
        out[f"share vs {ref} %"] = 100.0 * (1.0 - regret["controller"] / regret[ref])
    for column, label in COMPONENTS.items():
        table = per_month(column)
        out[label] = table["controller"] - table["bound"]
    return out


def exchange(report: Path, strategy: str) -> tuple[dict[str, float], pd.DataFrame]:
    """Extra export and import of ``strategy`` over the bound's (see the module text): the
    totals and shares, and both per local hour of day [MWh]."""
    steps = pd.read_parquet(report / "steps.parquet")
    mine = steps[steps["strategy"] == strategy]
    bound = steps[steps["strategy"] == "bound"]
    if not mine.index.equals(bound.index):
        raise SystemExit(f"{report}: {strategy} and bound steps differ")
    export = (-mine["grid_w"]).clip(lower=0.0) - (-bound["grid_w"]).clip(lower=0.0)
    extra_export = export.clip(lower=0.0)
    extra_import = (mine["grid_w"].clip(lower=0.0) - bound["grid_w"].clip(lower=0.0)).clip(
        lower=0.0
    )
    to_mwh = 0.25 / 1e6
    weight = extra_export / max(float(extra_export.sum()), 1e-9)
    totals = {
        "extra export MWh (quarter hours exporting more than the bound)": float(extra_export.sum())
        * to_mwh,
        "extra import MWh (quarter hours importing more)": float(extra_import.sum()) * to_mwh,
        "net export beyond the bound MWh": float(export.sum()) * to_mwh,
        "net import beyond the bound MWh": float(
            (mine["grid_w"].clip(lower=0.0) - bound["grid_w"].clip(lower=0.0)).sum()
        )
        * to_mwh,
        "extra export planned %": 100.0 * float(weight[mine["planned_grid_w"] < -1e3].sum()),
        "bound charging then %": 100.0 * float(weight[bound["battery_w"] < -1e3].sum()),
        "export price then EUR/MWh": float((weight * mine["price_export_eur_per_mwh"]).sum()),
        "import price of extra import EUR/MWh": float(
            (extra_import * mine["price_import_eur_per_mwh"]).sum()
            / max(float(extra_import.sum()), 1e-9)
        ),
    }
    hours = pd.DatetimeIndex(mine.index).tz_convert("Europe/Berlin").hour
    by_hour = pd.DataFrame(
        {
            "extra export MWh": extra_export.groupby(hours).sum() * to_mwh,
            "extra import MWh": extra_import.groupby(hours).sum() * to_mwh,
        }
    ).reindex(range(24), fill_value=0.0)
    return totals, by_hour


def _print_frame(frame: pd.DataFrame, title: str) -> None:
    """``frame`` transposed (one column per row of it), as a table."""
    table = Table(title=title)
    table.add_column("")
    for name in frame.index:
        table.add_column(str(name), justify="right")
    for column in frame.columns:
        table.add_row(column, *(f"{v:,.1f}" for v in frame[column]))
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, nargs="?")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.toml")
    parser.add_argument("--progress", type=Path, default=None)
    parser.add_argument(
        "--strategy",
        default="controller",
        help="split this strategy's cost above the bound's (e.g. oracle)",
    )
    parser.add_argument(
        "--exchange", action="store_true", help="extra export and import over the bound's"
    )
    args = parser.parse_args()
    if args.exchange:
        totals, by_hour = exchange(args.report, args.strategy)
        for name, value in totals.items():
            Console().print(f"{name}: {value:,.1f}")
        table = Table(title=f"{args.strategy} beyond the bound by local hour [MWh]")
        for column in ("hour", *map(str, by_hour.columns)):
            table.add_column(column, justify="right")
        for hour, row in by_hour.iterrows():
            table.add_row(str(hour), *(f"{v:,.2f}" for v in row))
        Console().print(table)
        return
    if args.progress is not None:
        shares = progress_shares(pd.read_csv(args.progress))
        _print_frame(shares, f"days replayed so far ({args.progress})")
        return
    site = read_site(args.config)
    days = day_causes(args.report, site, args.strategy)
    console = Console()
    cols = ("regret", *CAUSES, "bound_saves", "stored_mwh")
    months = days.groupby(days.index.str[:7]).sum()
    months.loc["total"] = days.sum()
    for title, frame in (("per day", days), ("per month", months)):
        table = Table(title=f"{args.strategy}'s cost above the bound's by cause, {title} [EUR]")
        for head in ("", *cols):
            table.add_column(head, justify="right")
        for name, row in frame.iterrows():
            table.add_row(str(name), *(f"{row[c]:,.1f}" for c in cols))
        console.print(table)
    check = float((days[list(CAUSES)].sum(axis=1) - days["regret"]).abs().max())
    console.print(f"largest |sum of causes - regret| of a day: {check:.3g} EUR")


if __name__ == "__main__":
    main()
