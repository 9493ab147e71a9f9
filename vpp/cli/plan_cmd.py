"""``vpp plan``: one plan from the sample data, a short summary, optionally ``plan.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from optimizer.inputs import (
    FORECAST_COLUMNS,
    ForecastError,
    State,
    forecast_from_raw,
    plan_start,
)
from optimizer.plan import Plan
from optimizer.planner import Planner
from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.cli.paths import writable_file_problem
from vpp.core.site import Site
from vpp.data import DATA_DIR, InputDataError
from vpp.data.schema import (
    FILE,
    STEP,
    Problem,
    check_inputs,
    missing_value_problems,
    read_raw_inputs,
    take_window,
)

#: A column only the optimiser's forecast schema has: files with it are forecast tables.
_FORECAST_MARKER = "price_import_eur_per_mwh"


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
        found = sorted([*data.glob("*.parquet"), *data.glob("*.csv"), *data.glob("*.csv.gz")])
        if not found:
            problem = Problem(FILE, "folder without .parquet, .csv or .csv.gz files")
            raise InputDataError(str(data), [problem])
        return found
    return [data]


def _read_window(path: Path, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
    """The file's rows in ``[start, end)`` as a forecast-schema table's source; None when it
    has none.

    Every file is checked the way ``vpp replay`` checks its inputs (:mod:`vpp.data.schema`):
    raises :class:`~vpp.data.InputDataError` naming the file, the column and the first bad
    time for a file that cannot be read, a time index out of order, duplicated or
    misaligned, steps missing in the window (inside it, or across its start or end where
    the file goes on beyond them), and missing or bad values. Files in the raw input schema
    are checked against it; files already in the optimiser's forecast schema are checked
    on their own step, for their required columns.
    """
    raw = read_raw_inputs(path)
    if _FORECAST_MARKER in raw.columns:
        window = _forecast_window(raw, str(path), start, end)
        return window if len(window) else None
    try:
        return check_inputs(raw, str(path), start, end)
    except InputDataError as exc:
        if [p.message for p in exc.problems] == ["no rows"]:
            return None  # another file may cover the window
        raise


def _forecast_window(
    raw: pd.DataFrame, source: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    required = [c.name for c in FORECAST_COLUMNS if c.required]
    window, problems = take_window(raw, source, start, end, _step(raw.index))
    problems += [Problem(c, "required column missing") for c in required if c not in raw]
    if len(window):
        problems += missing_value_problems(window, [c for c in required if c in raw])
    if problems:
        raise InputDataError(source, problems)
    return window


def _step(index: pd.Index) -> pd.Timedelta:
    """The resolution of a forecast-schema file: it may be finer or coarser than quarter
    hours (the planner resamples), so gaps are counted in its own steps."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return STEP
    steps = np.diff(index.as_unit("ns").asi8)
    steps = steps[steps > 0]
    return pd.Timedelta(int(steps.min()), unit="ns") if len(steps) else STEP


def load_forecast(site: Site, at: pd.Timestamp, data: Path | None) -> tuple[pd.DataFrame, Path]:
    """The first file with rows in the plan's horizon from ``at``, as a forecast table.

    Files without rows there are skipped; the first file with rows there must pass the
    checks of :func:`_read_window` (InputDataError otherwise). A file that ends inside the
    horizon is used, the planner holding its last values (with a warning).
    """
    cfg = site.optimizer
    start = plan_start(at, cfg.step_min)
    end = start + pd.Timedelta(hours=cfg.horizon_h)
    files = _files(data)
    for path in files:
        window = _read_window(path, start, end)
        if window is None:
            continue
        if _FORECAST_MARKER in window.columns:
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
    site = load_or_exit(config, offline=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if out is not None and (problem := writable_file_problem(out)) is not None:
        err.print(f"[bold red]plan[/]: --out {escape(str(out))}: {escape(problem)}")
        raise typer.Exit(1)
    try:
        when = pd.Timestamp(at)
        forecast, source = load_forecast(site, when, data)
        plan = Planner(site).plan(State.from_site(site), forecast, when)
    except InputDataError as exc:
        err.print(f"[bold red]plan[/]: {escape(exc.summary())}")
        raise typer.Exit(1) from None
    except (ValueError, ForecastError) as exc:
        err.print(f"[bold red]plan[/]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    console = Console()
    console.print(summary_table(plan, source))
    for warning in plan.info.warnings:
        err.print(f"[yellow]warning[/]: {warning}", highlight=False)
    if out is not None:
        try:
            plan.frame.to_csv(out, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.10g")
        except OSError as exc:  # checked before planning; a full disk is still possible
            err.print(f"[bold red]plan[/]: --out {escape(str(out))}: {escape(str(exc))}")
            raise typer.Exit(1) from None
        console.print(f"wrote {out} ({len(plan.frame)} rows, {plan.frame.shape[1] + 1} columns)")
