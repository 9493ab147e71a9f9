"""``vpp simulate``: serve every device of a site from simulated Modbus TCP devices."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit

if TYPE_CHECKING:
    from adapters.sim.fleet import SimFleet


def _ranges(units: list[int]) -> str:
    """Unit ids as compact ranges: 1-20, 25."""
    parts: list[str] = []
    start = prev = units[0]
    for unit in [*units[1:], None]:
        if unit is not None and unit == prev + 1:
            prev = unit
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if unit is not None:
            start = prev = unit
    return ", ".join(parts)


def port_table(fleet: SimFleet) -> Table:
    """Ports, unit ids and the kinds of device each serves."""
    from adapters.sim.device import presented_model

    table = Table(title=f"simulated devices on {fleet.host}")
    for column in ("port", "units", "devices", "kinds"):
        table.add_column(column, justify="right" if column == "port" else "left")
    for port in fleet.ports:
        devices = fleet.devices_on(port)
        kinds = Counter(f"{d.kind.value} {presented_model(d.config) or 'map'}" for d in devices)
        ids = [d.id for d in devices]
        shown = ", ".join(ids) if len(ids) <= 3 else f"{ids[0]} .. {ids[-1]}"
        table.add_row(
            str(port),
            _ranges([d.unit for d in devices]),
            shown,
            ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items())),
        )
    table.caption = f"{len(fleet.devices)} devices on {len(fleet.ports)} ports; Ctrl-C stops"
    return table


@app.command("simulate")
def simulate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Site TOML file")] = DEFAULT_CONFIG,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per wall-clock second")
    ] = 1.0,
    delay_ms: Annotated[
        float | None,
        typer.Option("--delay-ms", min=0.0, help="Response delay of every device [ms]"),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(help="Simulated start time, ISO 8601 (default: now); naive means UTC"),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
) -> None:
    """Serve every device of a site from simulated Modbus TCP devices until Ctrl-C."""
    # Imported here so other commands start without loading pymodbus.
    from adapters.sim.fleet import serve_site

    site = load_or_exit(config)
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    console = Console()

    def ready(fleet: SimFleet) -> None:
        console.print(port_table(fleet))
        console.print(
            f"[green]serving[/] (speed {speed:g}x); Ctrl-C or SIGTERM stops", highlight=False
        )

    delay_s = None if delay_ms is None else delay_ms / 1000.0
    try:
        asyncio.run(serve_site(site, speed=speed, start=start, delay_s=delay_s, host=host,
                               on_ready=ready))  # fmt: skip
    except OSError as exc:
        Console(stderr=True).print(f"[bold red]cannot serve[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as exc:
        Console(stderr=True).print(f"[bold red]cannot simulate[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print("stopped: every server closed")
