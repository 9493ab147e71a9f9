"""``vpp export``: write a recorded day in the replay's input schema, plus its plans,
setpoints and events as CSV (see :mod:`vpp.recorder.export`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.recorder import ExportError, Recorder, RecorderError, write_day


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-03-29") from None


@app.command("export")
def export(
    day: Annotated[
        str, typer.Option(help="Local calendar day in the site's time zone, YYYY-MM-DD")
    ],
    db: Annotated[Path, typer.Option(help="Recorder database file")],
    out: Annotated[Path, typer.Option(help="Folder to write the files to")] = Path("."),
    config: Annotated[Path, typer.Option(help="Site TOML file")] = DEFAULT_CONFIG,
) -> None:
    """Export a recorded day: inputs_<day>.csv for replay, with coverage, plans, setpoints
    and events CSV files beside it. Exit code 1 if the day has no data."""
    local_day = _parse_day(day)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    site = load_or_exit(config)
    if not db.is_file():
        err.print(f"[bold red]{db}[/]: recorder database not found")
        raise typer.Exit(1)
    try:
        with Recorder(db) as rec:
            result = write_day(rec, local_day, out, site)
    except (ExportError, RecorderError, OSError) as exc:
        err.print(f"[bold red]export {local_day} failed[/]: {exc}", markup=False)
        raise typer.Exit(1) from None
    console = Console(highlight=False, soft_wrap=True)
    for path in result.files:
        console.print(f"wrote {path}")
    for what, counts in (("filled", result.filled), ("clipped", result.clipped)):
        for column, n in counts.items():
            console.print(f"{column}: {n} of {result.quarter_hours} quarter hours {what}")
