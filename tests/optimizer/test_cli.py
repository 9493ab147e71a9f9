"""``vpp plan`` end to end on the shipped sample data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from optimizer.plan import SITE_COLUMNS
from vpp.cli import app

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "inputs_sample.csv"
DEMO = ROOT / "config" / "demo.toml"


def test_plan_command_writes_plan_csv(tmp_path: Path) -> None:
    out = tmp_path / "plan.csv"
    result = CliRunner().invoke(
        app,
        [
            "plan",
            "--config",
            str(DEMO),
            "--at",
            "2018-01-03T06:00Z",
            "--data",
            str(SAMPLE),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "optimal" in result.output
    frame = pd.read_csv(out)
    assert list(frame.columns[: 1 + len(SITE_COLUMNS)]) == ["timestamp", *SITE_COLUMNS]
    assert frame.timestamp.iloc[0] == "2018-01-03T06:00:00Z"
    assert len(frame) == 36 * 4
    assert "bat-001.battery_w" in frame.columns and "pv-001.pv_limit_w" in frame.columns


def test_plan_command_reads_a_forecast_schema_file(tmp_path: Path) -> None:
    from optimizer.inputs import forecast_from_raw
    from vpp.core.site import read_site
    from vpp.data import read_inputs

    raw = read_inputs(SAMPLE, "2017-12-31T23:00Z", "2018-01-07T23:00Z")
    forecast = forecast_from_raw(read_site(DEMO), raw)
    path = tmp_path / "forecast.csv"
    forecast.to_csv(path, index_label="time", date_format="%Y-%m-%dT%H:%M:%SZ")
    result = CliRunner().invoke(
        app, ["plan", "--config", str(DEMO), "--at", "2018-01-02T00:00Z", "--data", str(path)]
    )
    assert result.exit_code == 0, result.output


def test_plan_command_explains_missing_data() -> None:
    result = CliRunner().invoke(
        app, ["plan", "--config", str(DEMO), "--at", "2031-01-01T00:00Z", "--data", str(SAMPLE)]
    )
    assert result.exit_code == 1
    assert "no input file covers" in result.output
