"""``vpp backup``: an online, consistent copy of the recorder database (see
:mod:`vpp.recorder.backup`); safe while ``vpp run`` is writing to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from vpp.cli import app
from vpp.recorder import RecorderError, backup


@app.command("backup")
def backup_command(
    db: Annotated[Path, typer.Option(help="Recorder database file (SQLite)")],
    out: Annotated[Path, typer.Option(help="File to write the copy to")],
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists")] = False,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Run PRAGMA integrity_check on the copy")
    ] = True,
) -> None:
    """Copy the recorder database while the controller may be writing to it. The copy holds
    everything committed when the backup started and is one self-contained SQLite file.
    Exit code 1 if the copy could not be made (nothing is left at OUT then)."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        result = backup(db, out, overwrite=force, check=check)
    except RecorderError as exc:
        err.print(Text.assemble(("backup failed", "bold red"), f": {exc}"))
        raise typer.Exit(1) from None
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {result.path}: {result.bytes / 1e6:,.1f} MB, {result.pages:,} pages, "
        f"schema version {result.schema_version}, integrity check {result.check}, "
        f"{result.seconds:.1f} s"
    )
