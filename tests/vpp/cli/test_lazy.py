"""The command line imports a command's module only when that command is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer.main

import vpp.cli
from vpp.cli import COMMANDS, app

CLI_DIR = Path(vpp.cli.__file__).parent


def test_every_command_module_is_listed_and_registers_its_command() -> None:
    modules = {p.stem for p in CLI_DIR.glob("*_cmd.py")}
    assert modules == set(COMMANDS.values())
    group = typer.main.get_command(app)
    ctx = group.make_context("vpp", ["--help"], resilient_parsing=True)
    assert group.list_commands(ctx) == sorted(COMMANDS)  # type: ignore[attr-defined]
    for name in COMMANDS:
        command = group.get_command(ctx, name)  # type: ignore[attr-defined]
        assert command is not None and command.name == name


def test_scan_starts_without_pandas_pyomo_or_pvlib() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vpp.cli import app\n"
        "result = CliRunner().invoke(app, ['scan', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'SunSpec' in result.output\n"
        "print(sorted(m for m in ('pandas', 'pyomo', 'pvlib', 'numba') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_an_unknown_command_is_a_usage_error() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["nope"])
    assert result.exit_code == 2
    assert "No such command 'nope'" in result.output
