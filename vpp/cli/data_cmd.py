"""``vpp data build`` and ``vpp data check``: the input data in the schema of
:mod:`vpp.data.schema`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.data.convert import DEFAULT_YEAR, build_and_write
from vpp.data.schema import (
    FILE,
    InputDataError,
    Problem,
    find_problems,
    format_time,
    read_raw_inputs,
    summarize_inputs,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "data"

data_app = typer.Typer(
    name="data",
    help="Input data: build a year from the public sources, check a file against the schema.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command("build")
def build(
    shared: Annotated[
        Path, typer.Option(help="Folder with the public source data (prices/, grid/, ...)")
    ] = DEFAULT_SHARED,
    year: Annotated[int, typer.Option(help="Local calendar year to build")] = DEFAULT_YEAR,
    out: Annotated[Path, typer.Option(help="Folder to write inputs_<year>.parquet to")] = (
        DEFAULT_OUT
    ),
    config: Annotated[
        Path, typer.Option(help="Site file: position and data-centre waste-heat temperature")
    ] = REPO_ROOT / DEFAULT_CONFIG,
) -> None:
    """Convert the public sources into one year of quarter-hourly inputs."""
    err = Console(stderr=True, soft_wrap=True)
    if not shared.is_dir():
        err.print(f"[bold red]{shared}[/]: source data folder not found", highlight=False)
        raise typer.Exit(1)
    site = load_or_exit(config)
    params = {"latitude": site.site.latitude_deg, "longitude": site.site.longitude_deg}
    if site.datacentre is not None:
        params["waste_heat_temp_c"] = site.datacentre.waste_heat_temp_c
    try:
        path = build_and_write(shared, year, out, **params)
    except (OSError, ValueError, KeyError) as exc:
        err.print(f"[bold red]build {year} failed[/]: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    Console().print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", highlight=False)
    _print_summary(pd.read_parquet(path), str(path))


@data_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Input file (.parquet, .csv, .csv.gz)")],
) -> None:
    """Print a summary of an input file and every problem found (exit code 1 if any)."""
    try:
        df = read_raw_inputs(file)
    except InputDataError as exc:
        _print_problems(exc.source, exc.problems)
        raise typer.Exit(1) from None
    _print_summary(df, str(file))
    problems = find_problems(df)
    if problems:
        _print_problems(str(file), problems)
        raise typer.Exit(1)
    Console().print("[green]no problems[/]")


def _print_summary(df: pd.DataFrame, source: str) -> None:
    title = f"{source}: {len(df):,} rows"
    index = df.index
    if isinstance(index, pd.DatetimeIndex) and len(index) and index.tz is not None:
        first, last = index.min().tz_convert("UTC"), index.max().tz_convert("UTC")
        title += f", {format_time(first)} .. {format_time(last)}"
    table = Table(title=title)
    for name in ("column", "unit", "min", "mean", "max", "missing"):
        table.add_column(name, justify="left" if name in ("column", "unit") else "right")
    for column, row in summarize_inputs(df).iterrows():
        table.add_row(str(column), str(row["unit"]), f"{row['min']:.2f}", f"{row['mean']:.2f}",
                      f"{row['max']:.2f}", str(row["missing"]))  # fmt: skip
    Console().print(table)


def _print_problems(source: str, problems: list[Problem]) -> None:
    err = Console(stderr=True, soft_wrap=True)
    if len(problems) == 1 and problems[0].column == FILE:  # missing, unreadable: one line
        err.print(f"[bold red]{escape(source)}[/]: {escape(problems[0].message)}", highlight=False)
        return
    err.print(f"[bold red]{escape(source)}[/]: {len(problems)} problem(s)", highlight=False)
    for problem in problems:
        err.print(f"  {problem}", highlight=False, markup=False)
