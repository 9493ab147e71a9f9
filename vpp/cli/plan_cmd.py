"""``vpp plan``: one plan from the sample data, a short summary, optionally ``plan.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from optimizer.inputs import ForecastError, State, forecast_from_raw, plan_start
from optimizer.plan import Plan
from optimizer.planner import Planner
from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.core.site import Site
from vpp.data import DATA_DIR, InputDataError, read_inputs
from vpp.data.schema import read_raw_inputs


def sample_files() -> list[Path]:
    """Where ``vpp plan`` looks for inputs when ``--data`` is not given, in this order."""
    files = [
        *sorted(DATA_DIR.glob("inputs_*.parquet")),
        DATA_DIR.parent / "tests" / "data" / "inputs_sample.csv",
    ]
    return [p for p in files if p.is_file()]


def _files(data: Path | None) -> list[Path]:
    if data is None:
        return sample_files()
    if data.is_dir():
        return sorted([*data.glob("*.parquet"), *data.glob("*.csv"), *data.glob("*.csv.gz")])
    return [data]


def _read_window(path: Path, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
    """The file's rows in ``[start, end)`` as a forecast-schema table's source, or None.

    Files in the raw input schema are read (and checked) with :func:`vpp.data.read_inputs`;
    files already in the optimiser's forecast schema are read as they are.
    """
    try:
        raw = read_raw_inputs(path)
    except InputDataError:
        return None
    if "price_import_eur_per_mwh" in raw.columns:
        index = pd.DatetimeIndex(raw.index).tz_convert("UTC")
        window = raw.set_axis(index)[(index >= start) & (index < end)]
        return window if len(window) else None
    try:
        window = read_inputs(path, start, end)
    except InputDataError:
        return None
    return window if len(window) else None


def load_forecast(site: Site, at: pd.Timestamp, data: Path | None) -> tuple[pd.DataFrame, Path]:
    """The first file that covers the plan's horizon from ``at``, as a forecast table."""
    cfg = site.optimizer
    start = plan_start(at, cfg.step_min)
    end = start + pd.Timedelta(hours=cfg.horizon_h)
    files = _files(data)
    for path in files:
        window = _read_window(path, start, end)
        if window is None:
            continue
        if "price_import_eur_per_mwh" in window.columns:
            return window, path
        return forecast_from_raw(site, window), path
    looked = ", ".join(str(p) for p in files) or str(data or DATA_DIR)
    raise ForecastError(
        f"no input file covers {start.isoformat()}..{end.isoformat()} (looked in: {looked})"
    )


def summary_table(plan: Plan, source: Path) -> Table:
    """Status, cost parts, energies and timings of a plan."""
    info, frame = plan.info, plan.frame
    dt_h = (frame.index[1] - frame.index[0]) / pd.Timedelta(hours=1) if len(frame) > 1 else 0.25
    table = Table(
        title=f"plan {frame.index[0]:%Y-%m-%d %H:%M}Z + {len(frame) * dt_h:g} h "
        f"({info.mode}, {info.status})",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value", justify="right")

    def mwh(col: str) -> str:
        return f"{frame[col].clip(lower=0).sum() * dt_h / 1e6:,.2f} MWh"

    solver = "-" if info.objective_eur is None else f"{info.objective_eur:,.2f} EUR"
    costs = [
        (k.removesuffix("_eur").replace("_", " "), f"{v:,.2f} EUR")
        for k, v in info.cost_eur.items()
    ]
    rows = [
        ("inputs", str(source)),
        ("objective (solver)", solver),
        *costs,
        ("grid import / export", f"{mwh('grid_import_w')} / {mwh('grid_export_w')}"),
        ("PV used / available", f"{mwh('pv_w')} / {mwh('pv_available_w')}"),
        ("battery discharged", mwh("battery_w")),
        ("heat: heat pump / boiler", f"{mwh('heat_pump_th_w')} / {mwh('boiler_th_w')}"),
        ("units (battery, pv)", f"{info.n_units['battery']}, {info.n_units['pv']}"),
        ("variables / constraints", f"{info.n_variables:,} / {info.n_constraints:,}"),
        (
            "build / solve / split / total",
            f"{info.build_s:.2f} / {info.solve_s:.2f} / {info.split_s:.2f} / {info.total_s:.2f} s",
        ),
    ]
    rows += [(f"slack {k}", f"{v:,.0f} Wh") for k, v in info.slacks.items()]
    if info.fallback_reason:
        rows.append(("fallback reason", info.fallback_reason))
    for row in rows:
        table.add_row(*row)
    return table


@app.command("plan")
def plan_command(
    at: Annotated[str, typer.Option("--at", help="Plan start, ISO time (naive = UTC)")],
    config: Annotated[Path, typer.Option("--config", help="Site TOML file")] = DEFAULT_CONFIG,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Input file or folder (raw input schema or forecast schema); "
            "default: data/inputs_*.parquet, then tests/data/inputs_sample.csv",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the plan table here (CSV)")
    ] = None,
) -> None:
    """Make one plan from sample data and print a summary (see optimizer/README.md)."""
    site = load_or_exit(config)
    err = Console(stderr=True)
    try:
        when = pd.Timestamp(at)
        forecast, source = load_forecast(site, when, data)
        plan = Planner(site).plan(State.from_site(site), forecast, when)
    except (ValueError, ForecastError) as exc:
        err.print(f"[bold red]plan[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    console = Console()
    console.print(summary_table(plan, source))
    for warning in plan.info.warnings:
        err.print(f"[yellow]warning[/]: {warning}", highlight=False)
    if out is not None:
        plan.frame.to_csv(out, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.10g")
        console.print(f"wrote {out} ({len(plan.frame)} rows, {plan.frame.shape[1] + 1} columns)")
