"""``vpp check-config``: validate a site file and print a summary or every bad field."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vpp.cli import app
from vpp.core.site import ConfigError, Site, SiteFileError, read_site

DEFAULT_CONFIG = Path("config/demo.toml")


def load_or_exit(path: Path, *, offline: bool = False) -> Site:
    """Read a site file; on errors print each one to stderr and exit with code 1.
    ``offline``: the command contacts no device, so Modbus hosts need not resolve here.

    A file that cannot be read at all gives one line, ``<file>: <reason>``; a file that does
    not validate gives a count, then one ``path: message`` line per error.
    """
    # soft_wrap: each message stays on one line, however narrow the terminal.
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return read_site(path, offline=offline)
    except SiteFileError as exc:
        err.print(f"[bold red]{escape(exc.source)}[/]: {escape(exc.reason)}")
        raise typer.Exit(1) from None
    except ConfigError as exc:
        err.print(f"[bold red]{escape(exc.source)}[/]: {len(exc.errors)} error(s)")
        for line in exc.errors:
            err.print(f"  {line}", markup=False)
        raise typer.Exit(1) from None


def site_summary(site: Site) -> Table:
    table = Table(title=f"{site.site.name} ({site.site.timezone})", show_lines=False)
    table.add_column("kind")
    table.add_column("devices", justify="right")
    table.add_column("rating", justify="right")
    counts = Counter(d.kind.value for d in site.devices)
    pv_kw = sum(d.rated_w for d in site.pv) / 1000
    bat_kwh = sum(d.capacity_wh for d in site.batteries) / 1000
    bat_kw = sum(d.max_discharge_w for d in site.batteries) / 1000
    ratings = {
        "pv": f"{pv_kw:,.1f} kW AC",
        "battery": f"{bat_kwh:,.1f} kWh, {bat_kw:,.1f} kW",
        "heat_pump": f"{site.heat_pump.max_el_w / 1000:,.0f} kW el" if site.heat_pump else "",
        "datacentre": f"{site.datacentre.it_power_w / 1000:,.0f} kW IT" if site.datacentre else "",
    }
    for kind, n in sorted(counts.items()):
        table.add_row(kind, str(n), ratings.get(kind, ""))
    grid = site.grid
    table.caption = (
        f"grid: import <= {grid.import_limit_w / 1000:,.0f} kW, "
        f"export <= {grid.export_limit_w / 1000:,.0f} kW; "
        f"store {site.heat.store_capacity_wh / 1e6:,.1f} MWh; "
        f"boiler {site.heat.boiler_max_th_w / 1e6:,.1f} MW"
    )
    return table


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="Site TOML file")] = DEFAULT_CONFIG,
) -> None:
    """Validate a site file: print a summary, or every bad field by its path (exit code 1)."""
    site = load_or_exit(file)
    Console().print(site_summary(site))
