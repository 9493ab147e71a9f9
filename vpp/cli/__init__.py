"""The ``vpp`` command: one subcommand per job (check-config, scan, simulate, plan, ...)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="vpp",
    help="Controller for a city swarm power plant: PV, batteries and a waste-heat pump.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Controller for a city swarm power plant: PV, batteries and a waste-heat pump."""


# Each module registers its commands on ``app`` when imported.
from vpp.cli import backup_cmd as _backup_cmd  # noqa: E402,F401
from vpp.cli import city_cmd as _city_cmd  # noqa: E402,F401
from vpp.cli import config_cmd as _config_cmd  # noqa: E402,F401
from vpp.cli import data_cmd as _data_cmd  # noqa: E402,F401
from vpp.cli import export_cmd as _export_cmd  # noqa: E402,F401
from vpp.cli import plan_cmd as _plan_cmd  # noqa: E402,F401
from vpp.cli import replay_cmd as _replay_cmd  # noqa: E402,F401
from vpp.cli import run_cmd as _run_cmd  # noqa: E402,F401
from vpp.cli import scan_cmd as _scan_cmd  # noqa: E402,F401
from vpp.cli import simulate_cmd as _simulate_cmd  # noqa: E402,F401
