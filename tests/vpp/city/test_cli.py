"""``vpp agent`` and ``vpp coordinator`` refuse bad options by name before starting anything;
several simulated districts get their own Modbus ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vpp.city.run import shift_ports
from vpp.cli import app
from vpp.core.site import read_site


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["agent", "--id", "n", "--broker", "nohost", "--password-file", "{pw}"], "--broker"),
        (["agent", "--id", "n", "--broker", "h:70000", "--password-file", "{pw}"], "--broker"),
        (["agent", "--id", "n/x", "--broker", "h:1883", "--password-file", "{pw}"], "--id"),
        (["agent", "--id", "n", "--broker", "h:1883", "--password-file", "{missing}"],
         "--password-file"),
        (["agent", "--id", "n", "--broker", "h:1883", "--password-file", "{empty}"],
         "--password-file"),
        (["coordinator", "--agents", " , ", "--broker", "h:1883", "--password-file", "{pw}"],
         "--agents"),
        (["coordinator", "--agents", "a", "--broker", "h:1883", "--password-file", "{pw}",
          "--export-limit-w", "0"], "--export-limit-w"),
    ],
)  # fmt: skip
def test_bad_options_are_named(tmp_path: Path, args: list[str], named: str) -> None:
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "empty").write_text("\n")
    paths = {k: str(tmp_path / k) for k in ("pw", "empty", "missing")}
    result = CliRunner().invoke(app, [a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert named in result.output


def test_shifted_ports_keep_everything_else() -> None:
    site = read_site(Path(__file__).resolve().parents[3] / "config" / "demo.toml")
    moved = shift_ports(site, 100)
    assert [d.modbus.port - 100 for d in moved.devices] == [d.modbus.port for d in site.devices]
    assert [d.id for d in moved.devices] == [d.id for d in site.devices]
    assert moved.grid == site.grid
