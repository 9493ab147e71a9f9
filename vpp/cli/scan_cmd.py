"""``vpp scan HOST:PORT``: discover a SunSpec device and decode every model it presents."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from vpp.cli import app

if TYPE_CHECKING:
    from adapters.sunspec.discovery import ScanResult


def parse_endpoint(text: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6 address]:port``) as (host, port); typer.BadParameter if not."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise typer.BadParameter(f"expected HOST:PORT with port 1..65535, got {text!r}")
    return host, int(port)


async def get_scan(
    host: str, port: int, unit: int, base: int | None, timeout_s: float
) -> ScanResult:
    """Scan one device over the Modbus bridge (network I/O)."""
    # Imported here so other commands start without loading pymodbus.
    from adapters.bridge import ModbusBridge
    from adapters.sunspec.discovery import scan

    async with ModbusBridge(connections_per_endpoint=1) as bridge:
        reader = bridge.reader(host, port, unit, timeout_s=timeout_s, retries=1)
        return await scan(reader, base)


@app.command("scan")
def scan_command(
    endpoint: Annotated[str, typer.Argument(help="Device address as HOST:PORT")],
    unit: Annotated[int, typer.Option(min=0, max=247, help="Modbus unit id")] = 1,
    base: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="SunSpec base address (default: try 40000, 0, 50000)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
    timeout: Annotated[float, typer.Option(min=0.01, help="Timeout per request, seconds")] = 2.0,
) -> None:
    """Discover the SunSpec map of a device and decode every model (exit code 1 on failure)."""
    from adapters.bridge import CommsError
    from adapters.sunspec.models import SunSpecError
    from adapters.sunspec.scan import scan_to_json, scan_to_table

    host, port = parse_endpoint(endpoint)
    try:
        result = asyncio.run(get_scan(host, port, unit, base, timeout))
    except (CommsError, SunSpecError) as exc:
        err = Console(stderr=True)
        err.print(f"[bold red]scan of {host}:{port} unit {unit} failed[/]: ", end="")
        # The reader's name repeats the address given on the command line: drop it.
        message = str(exc).removeprefix(f"{host}:{port}/{unit}: ")
        err.print(message, markup=False, highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(scan_to_json(result), indent=2))
        return
    console = Console()
    console.print(
        f"{host}:{port} unit {unit}: SunSpec base {result.base}, {len(result.models)} models",
        highlight=False,
    )
    for table in scan_to_table(result):
        console.print(table)
