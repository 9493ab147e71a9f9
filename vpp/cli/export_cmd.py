"""``vpp export``: write a recorded day in the replay's input schema, plus its plans,
setpoints and events as CSV (see :mod:`vpp.recorder.export`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.recorder import ExportError, PartialDayError, Recorder, RecorderError, write_day


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-03-29") from None


def _error(what: str, message: str) -> Text:
    """``what`` in bold red, then the message as plain text (paths may hold brackets)."""
    return Text.assemble((what, "bold red"), f": {message}")


@app.command("export")
def export(
    day: Annotated[
        str, typer.Option(help="Local calendar day in the site's time zone, YYYY-MM-DD")
    ],
    db: Annotated[Path, typer.Option(help="Recorder database file")],
    out: Annotated[Path, typer.Option(help="Folder to write the files to")] = Path("."),
    config: Annotated[Path, typer.Option(help="Site TOML file")] = DEFAULT_CONFIG,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Export a day with quarter hours missing: fill them and mark each filled "
            "value in the 'filled' column",
        ),
    ] = False,
) -> None:
    """Export a recorded day: inputs_<day>.csv for replay, with coverage, plans, setpoints
    and events CSV files beside it. Exit code 1 if the day has no data, or misses quarter
    hours and --allow-partial is not given."""
    local_day = _parse_day(day)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    site = load_or_exit(config, offline=True)
    if not db.is_file():
        err.print(_error(str(db), "recorder database not found"))
        raise typer.Exit(1)
    try:
        with Recorder(db) as rec:
            result = write_day(rec, local_day, out, site, allow_partial=allow_partial)
    except PartialDayError as exc:
        err.print(_error(f"export {local_day} refused", str(exc)))
        err.print(
            "  nothing written; --allow-partial exports it with the missing values filled "
            "and marked in the 'filled' column"
        )
        raise typer.Exit(1) from None
    except (ExportError, RecorderError, OSError) as exc:
        err.print(_error(f"export {local_day} failed", str(exc)))
        raise typer.Exit(1) from None
    console = Console(highlight=False, soft_wrap=True)
    for path in result.files:
        console.print(f"wrote {path}")
    if result.without_polls:
        console.print(
            f"{result.without_polls} of {result.quarter_hours} quarter hours without polls"
        )
    for line in result.describe_filled():
        console.print(f"{line}; marked in the 'filled' column of {result.inputs.name}")
    for column, n in result.clipped.items():
        console.print(f"{column}: {n} of {result.quarter_hours} quarter hours clipped")
