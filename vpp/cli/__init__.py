"""The ``vpp`` command: one subcommand per job (check-config, scan, simulate, plan, ...).

Each subcommand lives in its own module and registers itself on ``app`` when imported. The
modules are imported only when their command is asked for, so ``vpp scan`` does not pay for
pandas, Pyomo and pvlib; ``vpp --help`` imports them all to show their help.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_group_from_info

if TYPE_CHECKING:
    # typer carries its own copy of click; its groups take and give these types.
    from typer import _click as click

# command name -> the module under vpp.cli that registers it
COMMANDS: dict[str, str] = {
    "agent": "city_cmd",
    "backup": "backup_cmd",
    "city-demo": "city_cmd",
    "coordinator": "city_cmd",
    "check-config": "config_cmd",
    "data": "data_cmd",
    "export": "export_cmd",
    "plan": "plan_cmd",
    "replay": "replay_cmd",
    "run": "run_cmd",
    "scan": "scan_cmd",
    "simulate": "simulate_cmd",
}


class LazyGroup(TyperGroup):
    """A typer group that imports a command's module the first time the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        importlib.import_module(f"vpp.cli.{COMMANDS[cmd_name]}")
        command = _registered(cmd_name)
        if command is not None:
            self.add_command(command, cmd_name)
        return command


def _registered(name: str) -> click.Command | None:
    """The click command ``app`` holds under ``name`` once its module has registered it."""
    for info in app.registered_commands:
        if info.name == name:
            return get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
    for group in app.registered_groups:
        if group.name == name:
            return get_group_from_info(
                group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                suggest_commands=app.suggest_commands,
                rich_markup_mode=app.rich_markup_mode,
            )
    return None


app = typer.Typer(
    name="vpp",
    cls=LazyGroup,
    help="Controller for a city swarm power plant: PV, batteries and a waste-heat pump.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Controller for a city swarm power plant: PV, batteries and a waste-heat pump."""
