"""The report folder of a replay.

- ``kpis.csv``: one row per day and strategy, then a ``total`` row per strategy
  (:mod:`vpp.replay.kpi` says what each column means); ``kpis_monthly.csv``: the same
  figures per calendar month and strategy, when the replay spans more than one month;
- ``steps.parquet``: every strategy's quarter hours (site totals, prices, the plan's values),
  long format with ``day`` and ``strategy`` columns;
- ``summary.png``: each strategy's savings over no control, per day and accumulated;
  ``day_<date>.png``: plan vs actual power, stored energy, grid by strategy and
  prices, for every day of short replays and a dozen evenly spread days of long ones;
- ``index.html``: one self-contained page with the totals, a paragraph per strategy, the day
  table and the plots (linked relatively, so the folder can be moved or zipped).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vpp.replay.baselines import (
    BOUND,
    CONTROLLER,
    NO_CONTROL,
    ORACLE,
    SELF_CONSUMPTION,
    STRATEGIES,
)
from vpp.replay.kpi import forecast_summary, monthly
from vpp.replay.parallel import ReplayResult
from vpp.replay.plots import LABELS, plot_day, plot_summary
from vpp.replay.runner import DayResult

#: Days plotted one by one at most; longer replays plot this many evenly spread days.
MAX_DAY_PLOTS = 12
#: Longest replay whose day table goes into the HTML page (the CSV has every day).
MAX_HTML_DAYS = 62
#: Failed-plan reasons listed on the page at most.
MAX_NOTES = 30

_ABOUT = {
    NO_CONTROL: "PV uncurtailed, batteries idle, the heat pump follows the heat demand, the "
    "store buffers and the gas boiler covers the rest.",
    SELF_CONSUMPTION: "Like no control, and the batteries charge from PV surplus and discharge "
    "into the site's load within each quarter hour.",
    CONTROLLER: "The controller as vpp run would have run it: forecasts as known at each "
    "quarter hour, a new plan every 15 minutes, setpoints through the live "
    "dispatch and safety code.",
    ORACLE: "Perfect foresight day by day: the same optimiser planning with the true future, "
    "once per horizon, through the same dispatch and plant. Not a bound: it values what it "
    "leaves stored by a convention.",
    BOUND: "The true lower bound: the optimiser's LP over the whole chain of days at once, "
    "with perfect foresight of every input, the plant's own constraints, starting where every "
    "strategy started and ending where the controller ended. No operation of the plant "
    "ending there costs less.",
}


def write_report(result: ReplayResult, out: Path) -> list[Path]:
    """Write the report folder; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = [_write_kpis(result.kpis, out / "kpis.csv"), _write_steps(result, out)]
    months = monthly(result.kpis)
    if months["day"].nunique() > 1:
        files.append(_write_kpis(months, out / "kpis_monthly.csv"))
    files.append(plot_summary(result.kpis, out / "summary.png"))
    tz = result.site.site.timezone
    for day in plotted_days(result):
        files.append(
            plot_day(day.frames, day.day.isoformat(), tz, out / f"day_{day.day.isoformat()}.png")
        )
    page = out / "index.html"
    page.write_text(
        render_html(result, [f.name for f in files if f.suffix == ".png"]), encoding="utf-8"
    )
    files.append(page)
    return files


def plotted_days(result: ReplayResult) -> list[DayResult]:
    """Every day of a short replay, :data:`MAX_DAY_PLOTS` evenly spread days of a long one."""
    days = result.days
    if len(days) <= MAX_DAY_PLOTS:
        return days
    step = (len(days) - 1) / (MAX_DAY_PLOTS - 1)
    return [days[round(i * step)] for i in range(MAX_DAY_PLOTS)]


def _write_kpis(kpis: pd.DataFrame, path: Path) -> Path:
    kpis.to_csv(path, index=False, float_format="%.6g")
    return path


def _write_steps(result: ReplayResult, out: Path) -> Path:
    parts = []
    for day in result.days:
        for name, frame in day.frames.items():
            parts.append(frame.assign(day=day.day.isoformat(), strategy=name))
    path = out / "steps.parquet"
    pd.concat(parts).to_parquet(path, compression="zstd")
    return path


def _fmt(value: object, digits: int = 1) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:,.{digits}f}"
    return html.escape(str(value))


_TABLE_COLUMNS = (
    ("cost_eur", "cost EUR", 0),
    ("regret_eur", "regret EUR", 0),
    ("share_vs_no_control_pct", "share vs no control %", 1),
    ("share_vs_self_consumption_pct", "share vs self-cons. %", 1),
    ("adjusted_cost_eur", "adjusted EUR", 0),
    ("savings_eur", "adj. savings EUR", 0),
    ("capture_pct", "adj. oracle capture %", 1),
    ("grid_import_mwh", "import MWh", 2),
    ("grid_export_mwh", "export MWh", 2),
    ("peak_import_kw", "peak kW", 0),
    ("self_consumption_pct", "self-cons. %", 1),
    ("autarky_pct", "autarky %", 1),
    ("co2_t", "CO2 t", 2),
    ("waste_heat_used_mwh", "waste heat MWh", 2),
    ("boiler_heat_mwh", "boiler MWh", 2),
    ("battery_cycles", "cycles", 2),
)


def _table(rows: pd.DataFrame, with_day: bool) -> str:
    head = (["day"] if with_day else []) + ["strategy"] + [h for _, h, _ in _TABLE_COLUMNS]
    lines = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for _, row in rows.iterrows():
        cells = [_fmt(row["day"])] if with_day else []
        cells.append(_fmt(LABELS.get(str(row["strategy"]), row["strategy"])))
        cells += [_fmt(float(row[c]), d) for c, _, d in _TABLE_COLUMNS]
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(lines) + "</table>"


def _paragraph(name: str, row: pd.Series) -> str:
    text = (
        f"<h3>{html.escape(LABELS[name])}</h3><p>{html.escape(_ABOUT[name])} Over the "
        f"period it cost {_fmt(row['cost_eur'], 0)} EUR ({_fmt(row['adjusted_cost_eur'], 0)}"
        f" EUR with the change of stored energy valued), saving "
        f"{_fmt(row['savings_eur'], 0)} EUR against no control; it imported "
        f"{_fmt(row['grid_import_mwh'], 2)} MWh, exported {_fmt(row['grid_export_mwh'], 2)}"
        f" MWh (peak import {_fmt(row['peak_import_kw'], 0)} kW), used "
        f"{_fmt(row['waste_heat_used_mwh'], 2)} MWh of waste heat against "
        f"{_fmt(row['boiler_heat_mwh'], 2)} MWh of boiler heat, and emitted "
        f"{_fmt(row['co2_t'], 2)} t CO2."
    )
    if name in (CONTROLLER, ORACLE):
        text += (
            f" Plans: {_fmt(row['plans'], 0)} ({_fmt(row['fallback_plans'], 0)} fallback,"
            f" {_fmt(row['failed_plans'], 0)} failed), quarter hours without a plan: "
            f"{_fmt(row['unplanned_steps'], 0)}, setpoints changed by the safety code: "
            f"{_fmt(row['clamped_setpoints'], 0)}."
        )
    if name == CONTROLLER:
        text += (
            f" It achieved {_fmt(row['share_vs_no_control_pct'], 1)} % of the bound's savings"
            f" over no control and {_fmt(row['share_vs_self_consumption_pct'], 1)} % of those"
            f" over self-consumption, losing {_fmt(row['regret_eur'], 0)} EUR to the bound"
            f" (with stored energy valued: {_fmt(row['capture_pct'], 1)} % of the oracle's"
            " savings)."
        )
        if float(row.get("forecast_steps", 0.0)) > 0:
            e = forecast_summary({str(k): float(v) for k, v in row.items() if _number(v)})
            text += (
                " Forecasts for the quarter hour ahead missed by (MAE) "
                f"{_fmt(e['load']['mae_w'] / 1e3, 1)} kW of base load, "
                f"{_fmt(e['pv']['mae_w'] / 1e3, 1)} kW of PV and "
                f"{_fmt(e['heat']['mae_w'] / 1e3, 1)} kW of heat demand; mean pinball loss "
                f"(P10, P50, P90) {_fmt(e['load']['pinball_w'] / 1e3, 1)}, "
                f"{_fmt(e['pv']['pinball_w'] / 1e3, 1)} and "
                f"{_fmt(e['heat']['pinball_w'] / 1e3, 1)} kW."
            )
            co2 = e["co2"]
            if not math.isnan(co2["mae_gkwh"]):
                text += (
                    " The grid's CO2 intensity was forecast with an MAE of "
                    f"{_fmt(co2['mae_gkwh'], 0)} g/kWh (bias {_fmt(co2['bias_gkwh'], 0)}, "
                    f"mean {_fmt(co2['mean_gkwh'], 0)} g/kWh)."
                )
            if float(row.get("forecast_band_steps", 0.0)) > 0:
                text += (
                    " The truth fell inside the learned P10-P90 band in "
                    f"{_fmt(e['load']['coverage_pct'], 0)} %, "
                    f"{_fmt(e['pv']['coverage_pct'], 0)} % and "
                    f"{_fmt(e['heat']['coverage_pct'], 0)} % of the quarter hours."
                )
    return text + "</p>"


def _number(value: object) -> bool:
    return isinstance(value, int | float | np.floating | np.integer)


def _method(chain_days: int, month_chains: bool) -> str:
    """How the figures were made, for the summary page."""
    start = (
        "Every day starts from the site file's initial battery and store levels"
        if chain_days == 1
        else f"Days run in chains of up to {chain_days}"
        + (", a new chain on every month's first day" if month_chains else "")
        + ": the first day of a chain starts from the site file's initial battery and store "
        "levels, each later day where the same strategy ended the day before"
    )
    exact = "per day" if month_chains and chain_days > 1 else "per day and per month"
    return (
        f"<p>{start}. The bound is solved over each chain once for every strategy's end "
        "state; a strategy's <i>regret</i> is its cost minus the bound's ending where it "
        "ended, and its share of the bound's savings over a reference is 1 - regret / the "
        "reference's regret: no value of stored energy enters (docs/replay-bound.md). Over "
        f"whole chains these figures are exact; {exact} they use the bound's "
        "costs of those days. As a secondary figure, what a strategy has stored at midnight "
        "is valued as the optimiser values energy at a horizon's end (a low quantile of the "
        "day's prices), giving the adjusted cost, savings and oracle capture of earlier "
        "reports. Within a quarter hour the controller and the oracle run the live "
        "controller's intra-quarter correction (run.correction). Cost = import - export + "
        "gas + CO2 + battery wear.</p>"
    )


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}"""


def render_html(result: ReplayResult, images: list[str]) -> str:
    """The summary page."""
    k = result.kpis
    total = k[k["day"] == "total"].set_index("strategy")
    days = k[k["day"] != "total"]
    first, last = result.days[0].day, result.days[-1].day
    workers = f", {result.workers} worker(s)" if result.workers else ""
    months = monthly(k)
    by_month = months["day"].nunique() > 1
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Replay {first} to {last}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Replay of {html.escape(result.site.site.name)}, {first} to {last}</h1>",
        f"<p>{len(result.days)} day(s), controller forecasts <b>{result.options.mode}</b>, "
        f"{html.escape(result.engine)}{workers}, {result.wall_s:,.0f} s. Files: "
        "<a href='kpis.csv'>kpis.csv</a>, <a href='steps.parquet'>steps.parquet</a>"
        + (", <a href='kpis_monthly.csv'>kpis_monthly.csv</a>" if by_month else "")
        + ".</p>",
        "<h2>Totals</h2>",
        _table(k[k["day"] == "total"], with_day=False),
        _method(result.options.chain_days, result.options.month_chains),
        "<h2>Strategies</h2>",
        *[_paragraph(str(s), row) for s, row in total.iterrows() if s in STRATEGIES or s == BOUND],
        "<h2>Plots</h2>",
        *[f"<img src='{html.escape(i)}' alt='{html.escape(i)}'>" for i in images],
    ]
    if by_month:
        parts += ["<h2>Months</h2>", _table(months, with_day=True)]
    if len(result.days) <= MAX_HTML_DAYS:
        parts += ["<h2>Days</h2>", _table(days, with_day=True)]
    notes = [f"{d.day}: {n}" for d in result.days for n in d.notes]
    if notes:
        shown = notes[:MAX_NOTES]
        more = f"<li>... and {len(notes) - len(shown)} more</li>" if len(notes) > len(shown) else ""
        parts += [
            "<h2>Notes</h2><p>Quarter hours whose plan failed (the previous plan, or the "
            "devices' own defaults, ran instead):</p><ul>",
            *[f"<li>{html.escape(n)}</li>" for n in shown],
            more,
            "</ul>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)
