"""Benchmark: the learned quantile forecasts against the rule forecasts, on the same weeks.

For as-of times every ``--every-h`` hours over the chosen weeks, both forecasts are made
from what was known then (the rules of :mod:`vpp.forecast`; the LightGBM models of
:mod:`vpp.learned`, refitted once per local day on the 28 days before it) and compared with
what happened, in the demo site's units (base load, PV available, heat demand [kW]):

* the quarter hour ahead (what the plan in force dispatches): MAE, mean pinball loss over
  P10/P50/P90 (a rule forecast's single value stands for all three), P10-P90 coverage;
* the whole 36 h horizon: MAE and pinball;
* the time per forecast; ratios learned / rules from this same run.

As the plans make them: with the site's issued temperature forecasts (``[forecast] weather =
"synthetic"``, :mod:`vpp.weather`) the rules forecast the heat demand from them, and that is
also the learned heat band's median (``learned``); the learned models' own heat median is the
extra column ``learned, own heat P50``.

Usage: ``python bench/forecast_quality.py [--world SEED] [--week-starts 2018-02-05,...]
[--every-h 2]``
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from vpp.control.scores import site_values_frame
from vpp.core.site import read_site
from vpp.data import read_inputs, shipped_inputs
from vpp.data.world import noisy_world, read_household
from vpp.forecast import forecast
from vpp.learned import BAND_COLUMNS, LearnedForecaster, bands_frame, site_bands
from vpp.replay.kpi import pinball
from vpp.weather import ForecastSpec, SyntheticTemperatureForecast

ROOT = Path(__file__).resolve().parents[1]
H36 = timedelta(hours=36)
LEVELS = (0.1, 0.5, 0.9)
LABELS = {"load_w": "base load", "pv_available_w": "PV available", "heat_demand_th_w": "heat"}


def evaluate(data: pd.DataFrame, starts: list[date], every_h: float) -> dict[str, dict[str, float]]:
    site = read_site(ROOT / "config" / "demo.toml")
    truth_w = site_values_frame(site, data)
    learned = LearnedForecaster()
    weather = None
    if site.forecast.weather == "synthetic":
        spec = ForecastSpec(seed=site.forecast.weather_seed)
        weather = SyntheticTemperatureForecast(data["outdoor_temp_c"], spec)
    centred = frozenset({"heat_w_per_mwh_a"}) if weather is not None else frozenset()
    read = lambda start, end: data[(data.index >= start) & (data.index < end)]  # noqa: E731
    acc: dict[str, dict[str, list[np.ndarray]]] = {}
    seconds = {"rules": 0.0, "learned": 0.0}
    calls = 0
    for first in starts:
        t0 = pd.Timestamp(first.isoformat(), tz="Europe/Berlin").tz_convert("UTC")
        for k in range(int(7 * 24 / every_h)):
            now = t0 + pd.Timedelta(hours=k * every_h, minutes=7)
            history = data[(data.index >= now - pd.Timedelta(days=8)) & (data.index < now + H36)]
            tic = time.perf_counter()
            rules = forecast(history, now, H36, weather=weather)
            seconds["rules"] += time.perf_counter() - tic
            index = pd.DatetimeIndex(rules.index)
            tic = time.perf_counter()
            q = learned.quantiles(history, now, index, read, rules, centred)
            seconds["learned"] += time.perf_counter() - tic
            own = learned.quantiles(history, now, index, read, rules) if centred else {}
            calls += 1
            truth = truth_w.reindex(rules.index)
            rule_w = site_values_frame(site, rules)
            bands = {
                name: site_bands(site, bands_frame(index, got))
                for name, got in (("learned", q), ("learned_own", own))
                if got
            }
            for plan_col in BAND_COLUMNS:
                y = truth[plan_col].to_numpy()
                point = rule_w[plan_col].to_numpy()
                methods = {"rules": np.repeat(point[:, None], 3, axis=1)}
                for name, band_w in bands.items():
                    if f"{plan_col}_p50" in band_w.columns:
                        methods[name] = np.column_stack(
                            [band_w[f"{plan_col}_p{round(lv * 100)}"].to_numpy() for lv in LEVELS]
                        )
                for method, f in methods.items():
                    a = acc.setdefault(f"{plan_col}/{method}", {})
                    a.setdefault("err0", []).append(np.abs(y[:1] - f[:1, 1]))
                    a.setdefault("pin0", []).append(pinball(y[:1], f[:1], LEVELS).mean(axis=1))
                    a.setdefault("cov0", []).append((y[:1] >= f[:1, 0]) & (y[:1] <= f[:1, 2]))
                    a.setdefault("err", []).append(np.abs(y - f[:, 1]))
                    a.setdefault("pin", []).append(pinball(y, f, LEVELS).mean(axis=1))
                    a.setdefault("cov", []).append((y >= f[:, 0]) & (y <= f[:, 2]))
    out = {
        key: {name: float(np.nanmean(np.concatenate(v))) for name, v in parts.items()}
        for key, parts in acc.items()
    }
    out["_time"] = {m: s / max(calls, 1) for m, s in seconds.items()} | {
        "calls": float(calls),
        "fits": float(learned.fits),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=int, default=None, metavar="SEED")
    parser.add_argument(
        "--week-starts",
        type=lambda text: [date.fromisoformat(d) for d in text.split(",")],
        default=[date(2018, 2, 5), date(2018, 11, 12)],
    )
    parser.add_argument("--every-h", type=float, default=2.0)
    args = parser.parse_args()
    data = read_inputs(shipped_inputs(2018))
    if args.world is not None:
        data = noisy_world(data, read_household(), args.world)
    load = os.getloadavg()
    result = evaluate(data, args.week_starts, args.every_h)
    world = "shipped 2018" if args.world is None else f"noisy world (seed {args.world})"
    weeks = ", ".join(d.isoformat() for d in args.week_starts)
    table = Table(title=f"forecast quality, demo site, {world}, weeks from {weeks}")
    for head in ("quantity", "figure", "rules", "learned", "learned / rules"):
        table.add_column(head)
    table.add_column("learned, own heat P50")
    names = {
        "err0": "quarter hour ahead: MAE [kW]",
        "pin0": "quarter hour ahead: pinball [kW]",
        "cov0": "quarter hour ahead: in P10-P90",
        "err": "36 h: MAE [kW]",
        "pin": "36 h: pinball [kW]",
        "cov": "36 h: in P10-P90",
    }
    for plan_col, label in LABELS.items():
        rules, learned = result[f"{plan_col}/rules"], result.get(f"{plan_col}/learned", {})
        own = result.get(f"{plan_col}/learned_own", {}) if plan_col == "heat_demand_th_w" else {}
        for key, name in names.items():
            if key.startswith("cov"):
                cells = ["-", f"{100 * learned.get(key, np.nan):.0f} %", "-"]
                extra = f"{100 * own[key]:.0f} %" if key in own else "-"
            else:
                r, m = rules[key] / 1e3, learned.get(key, np.nan) / 1e3
                cells = [f"{r:,.2f}", f"{m:,.2f}", f"{m / r:.2f}" if r else "-"]
                extra = f"{own[key] / 1e3:,.2f}" if key in own else "-"
            table.add_row(label, name, *cells, extra)
    t = result["_time"]
    table.add_row(
        "all",
        f"time per forecast ({t['calls']:.0f} as-of times, {t['fits']:.0f} daily fits)",
        f"{t['rules'] * 1e3:.0f} ms",
        f"{t['learned'] * 1e3:.0f} ms",
        f"{t['learned'] / t['rules']:.1f}",
        "",
    )
    end = os.getloadavg()
    table.add_row("", "load average (1, 5, 15 min) start / end", "", "", "", "")
    table.add_row("", f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", "", "", "", "")
    table.add_row("", f"{end[0]:.1f} {end[1]:.1f} {end[2]:.1f}", "", "", "", "")
    Console().print(table)


if __name__ == "__main__":
    main()
