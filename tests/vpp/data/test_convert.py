"""The converter and the ``vpp data`` commands."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.vpp.data.conftest import SAMPLE, SHARED
from vpp.cli import app
from vpp.data import read_inputs, shipped_inputs, write_inputs
from vpp.data.convert import SAMPLE_WINDOWS, build_inputs

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"public source folder {SHARED} not present (clean clone)"
)


@needs_shared
@pytest.mark.parametrize("year", [2018, 2023])
def test_converter_is_deterministic_and_reproduces_the_shipped_year(year: int) -> None:
    first = build_inputs(SHARED, year)
    second = build_inputs(SHARED, year)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, read_inputs(shipped_inputs(year)))
    # A slice of a fresh build equals the same slice of the shipped file and the sample.
    start, end = SAMPLE_WINDOWS[0]
    window = read_inputs(SAMPLE, start, end) if year == 2018 else None
    if window is not None:
        pd.testing.assert_frame_equal(first.loc[window.index], window, check_freq=False)


def test_check_command_summarises_a_good_file() -> None:
    result = CliRunner().invoke(app, ["data", "check", str(shipped_inputs(2018))])
    assert result.exit_code == 0, result.output
    assert "35,040 rows" in result.output
    assert "2017-12-31T23:00Z" in result.output
    assert "price_eur_per_mwh" in result.output and "-76.01" in result.output
    assert "no problems" in result.output


def test_check_command_names_column_and_timestamp(tmp_path: Path) -> None:
    part = read_inputs(shipped_inputs(2018), "2018-07-01", "2018-07-02")
    path = write_inputs(part, tmp_path / "day.csv")
    text = path.read_text().replace(",35.0\n", ",135.0\n", 1)  # first row's waste heat
    path.write_text(text)
    result = CliRunner().invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 1
    assert "waste_heat_temp_c: 1 value(s) above 100 degC, first at 2018-07-01T00:00Z" in (
        result.output
    )


def test_check_command_on_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "check", str(tmp_path / "none.csv")])
    assert result.exit_code == 1
    assert "not found" in result.output


def test_build_command_without_sources_fails_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "shared"
    result = CliRunner().invoke(app, ["data", "build", "--shared", str(missing)])
    assert result.exit_code == 1
    assert "source data folder not found" in result.output


@needs_shared
def test_build_command_writes_the_year(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "build", "--shared", str(SHARED),
                                      "--year", "2018", "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = tmp_path / "inputs_2018.parquet"
    assert written.read_bytes() == shipped_inputs(2018).read_bytes()


def test_check_command_on_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(SAMPLE.read_bytes()[:3000] + b"\nStra\xdfe\n")
    result = CliRunner().invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.stderr == f"{path}: not UTF-8 text (byte 0xdf)\n"
