"""``vpp run``: the controller, unattended (APScheduler), until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.cli.paths import creatable_folder_problem, database_problem
from vpp.cli.ports import http_port_problem, simulator_endpoints, simulator_port_problem
from vpp.core.loop import LOOPS
from vpp.core.loop import run as run_on_loop
from vpp.logs import configure as configure_logging
from vpp.sources import SourceConfigError


def _parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO time like 2026-06-21T06:00:00+02:00", param_hint="--start"
        ) from None
    if when.tzinfo is None:
        raise typer.BadParameter("--start needs a timezone, e.g. 2026-06-21T06:00:00+02:00")
    return when


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Site TOML file")] = DEFAULT_CONFIG,
    speed: Annotated[float, typer.Option(help="Run K times faster than real time")] = 1.0,
    start: Annotated[str | None, typer.Option(help="Start time (ISO, with zone)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and record setpoints, write nothing")
    ] = False,
    simulate: Annotated[
        bool | None,
        typer.Option("--simulate/--no-simulate", help="Serve the site from simulated devices"),
    ] = None,
    db: Annotated[Path | None, typer.Option(help="Recorder database (SQLite)")] = None,
    http_port: Annotated[int | None, typer.Option(help="Port of the page and /metrics")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
    event_loop: Annotated[
        str, typer.Option(help="uvloop (less CPU per device) or asyncio")
    ] = LOOPS[0],
) -> None:
    """Poll, plan, dispatch and watch the site until Ctrl-C or SIGTERM."""
    from vpp.app import RunOptions, run

    if speed <= 0:
        raise typer.BadParameter("--speed must be > 0")
    if event_loop not in LOOPS:
        raise typer.BadParameter(f"one of {', '.join(LOOPS)}", param_hint="--event-loop")
    start_at = _parse_start(start)
    configure_logging(log_level)
    site = load_or_exit(config)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # The recorder opens its database only after the simulators and the bridge are up: a
    # path it cannot write would stop the run then, with a traceback.
    db_path = db if db is not None else Path(site.run.db_path)
    problem = database_problem(db_path)
    if problem is not None:
        where = "--db" if db is not None else f"{config}: run.db_path"
        err.print(f"[bold red]{escape(where)}[/] {escape(str(db_path))}: {escape(problem)}")
        raise typer.Exit(1)
    if site.run.backup_dir is not None:
        backups = Path(site.run.backup_dir)
        if (problem := creatable_folder_problem(backups)) is not None:
            err.print(
                f"[bold red]{escape(str(config))}: run.backup_dir[/] {escape(str(backups))}: "
                f"{escape(problem)}"
            )
            raise typer.Exit(1)
    host = site.run.http_host
    port = http_port if http_port is not None else site.run.http_port
    simulating = site.run.simulate if simulate is None else simulate
    problem = http_port_problem(host, port) or (
        simulator_port_problem(simulator_endpoints(site)) if simulating else None
    )
    if problem is not None:
        err.print(f"[bold red]vpp run:[/] {escape(problem)}")
        raise typer.Exit(1)
    opts = RunOptions(
        speed=speed,
        start=start_at,
        dry_run=dry_run,
        simulate=simulate,
        db_path=str(db) if db else None,
        http_port=http_port,
    )
    try:
        run_on_loop(run(site, opts), event_loop)
    except SourceConfigError as exc:  # run.inputs_file or run.sources, before anything starts
        err.print(f"[bold red]{escape(str(config))}: input sources[/]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    except OSError as exc:
        # A port taken between the check above and the bind (the servers name it).
        if exc.errno != errno.EADDRINUSE and "cannot listen on" not in str(exc):
            raise
        err.print(f"[bold red]vpp run:[/] {escape(str(exc))}; is another vpp run using it?")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        err.print("vpp run: interrupted")
        raise typer.Exit(130) from None
