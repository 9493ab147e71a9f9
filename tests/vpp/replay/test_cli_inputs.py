"""``vpp replay --data`` with input files that cannot be used: one line naming the file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from vpp.cli import app

SITE_TOML = Path(__file__).resolve().parents[3] / "config" / "demo.toml"


def test_unreadable_input_file_is_one_line_naming_it(tmp_path: Path) -> None:
    data = tmp_path / "inputs.csv"
    data.write_bytes(b"time,price_eur_per_mwh\n2018-05-16T00:00:00Z,Stra\xdfe\n")
    args = ["--config", str(SITE_TOML), "--from", "2018-05-16", "--to", "2018-05-16"]
    result = CliRunner().invoke(
        app, ["replay", *args, "--data", str(data), "--out", str(tmp_path / "report")]
    )
    assert result.exit_code == 1
    # it used to be pandas' UnicodeDecodeError text, without the file's name
    assert result.stderr == f"replay: {data}: not UTF-8 text (byte 0xdf)\n"
    assert not (tmp_path / "report").exists()
