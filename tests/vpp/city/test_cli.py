"""``vpp agent`` and ``vpp coordinator`` refuse bad options by name before starting anything;
several simulated districts get their own Modbus ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vpp.city.run import shared_clock_args, shift_ports
from vpp.cli import app
from vpp.core.clock import ScaledClock
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
        (["coordinator", "--agents", "a", "--broker", "h:1883", "--password-file", "{pw}",
          "--api-token-file", "{empty}"], "--api-token-file"),
        (["coordinator", "--agents", "a", "--broker", "h:1883", "--password-file", "{pw}",
          "--start", "2026-06-01T10:00"], "--start"),
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


def test_clocks_with_one_origin_read_the_same_time() -> None:
    """Processes started at different moments with the same start, speed and origin read
    the same time (``vpp city-demo --speed``); a clock without an origin runs from its
    making."""
    wall = [1_000.0]
    start = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    first = ScaledClock(start, 60.0, origin=1_000.0, wall=lambda: wall[0])
    wall[0] = 1_007.5  # the second process starts 7.5 s later
    second = ScaledClock(start, 60.0, origin=1_000.0, wall=lambda: wall[0])
    assert first.now() == second.now() == start + timedelta(seconds=7.5 * 60)
    wall[0] = 1_010.0
    assert first.now() == second.now() == start + timedelta(minutes=10)


def test_the_demo_gives_every_process_one_clock(tmp_path: Path) -> None:
    args = shared_clock_args(30.0, 1_780_000_000.25)
    opts = dict(zip(args[::2], args[1::2], strict=True))
    start = datetime.fromisoformat(opts["--start"])
    assert start.timestamp() == 1_780_000_000.25  # the clock reads the wall time at origin
    assert float(opts["--speed"]) == 30.0
    assert float(opts["--clock-origin"]) == 1_780_000_000.25
    assert shared_clock_args(1.0, 1.0) == []
    (tmp_path / "pw").write_text("secret\n")
    for command in (["agent", "--id", "n"], ["coordinator", "--agents", "n"]):
        result = CliRunner().invoke(app, [
            *command, "--broker", "h:1883", "--password-file", str(tmp_path / "pw"),
            "--clock-origin", "1780000000",
        ])  # fmt: skip
        assert result.exit_code == 2 and "--clock-origin" in result.output, result.output
        assert "needs --start" in result.output
