"""``vpp plan`` end to end on the shipped sample data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import Result
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


# --- bad input files: named with the column and the first bad time, as vpp replay does


def _sample_without(tmp_path: Path, name: str, drop: tuple[str, str]) -> Path:
    """The sample inputs without the rows of ``[drop[0], drop[1])`` (UTC)."""
    frame = pd.read_csv(SAMPLE)
    times = pd.to_datetime(frame["time"], utc=True)
    keep = ~((times >= pd.Timestamp(drop[0])) & (times < pd.Timestamp(drop[1])))
    path = tmp_path / name
    frame[keep].to_csv(path, index=False)
    return path


def _plan(path: Path, at: str = "2018-01-03T06:00Z") -> Result:
    return CliRunner().invoke(app, ["plan", "--config", str(DEMO), "--at", at, "--data", str(path)])


def _refused(result: Result, line: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.stderr == f"plan: {line}\n"


def test_plan_refuses_a_gap_in_the_inputs(tmp_path: Path) -> None:
    # six hours missing inside the horizon: they used to be filled in from the rows around
    path = _sample_without(tmp_path, "gap.csv", ("2018-01-03T12:00Z", "2018-01-03T18:00Z"))
    _refused(_plan(path), f"{path}: time: 24 quarter hour(s) missing, first at 2018-01-03T12:00Z")


def test_plan_refuses_a_gap_across_the_plan_start(tmp_path: Path) -> None:
    # the window's own rows start at 18:00; the five hours before were back-filled
    path = _sample_without(tmp_path, "gap.csv", ("2018-01-03T12:00Z", "2018-01-03T18:00Z"))
    _refused(
        _plan(path, at="2018-01-03T13:00Z"),
        f"{path}: time: 20 quarter hour(s) missing, first at 2018-01-03T13:00Z",
    )


def test_plan_refuses_missing_values(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE)
    frame.loc[frame["time"] == "2018-01-03T09:15:00Z", "price_eur_per_mwh"] = float("nan")
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False)
    _refused(
        _plan(path), f"{path}: price_eur_per_mwh: 1 value(s) missing, first at 2018-01-03T09:15Z"
    )


def test_plan_refuses_duplicated_timestamps(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE)
    path = tmp_path / "dup.csv"
    pd.concat([frame.iloc[:200], frame.iloc[199:]]).to_csv(path, index=False)
    _refused(_plan(path), f"{path}: time: duplicate timestamp, first at 2018-01-03T00:45Z")


def _forecast_file(tmp_path: Path, name: str) -> tuple[pd.DataFrame, Path]:
    from optimizer.inputs import forecast_from_raw
    from vpp.core.site import read_site
    from vpp.data import read_inputs

    raw = read_inputs(SAMPLE, "2018-01-02T00:00Z", "2018-01-05T00:00Z")
    return forecast_from_raw(read_site(DEMO), raw), tmp_path / name


def _write_forecast(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index_label="time", date_format="%Y-%m-%dT%H:%M:%SZ")
    return path


def test_plan_refuses_gaps_and_missing_values_in_a_forecast_file(tmp_path: Path) -> None:
    forecast, path = _forecast_file(tmp_path, "forecast.csv")
    forecast.loc["2018-01-03T09:15Z", "load_w"] = float("nan")
    forecast = forecast.drop(forecast.loc["2018-01-03T12:00Z":"2018-01-03T17:45Z"].index)
    _write_forecast(forecast, path)
    result = _plan(path)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"plan: {path}: 2 problem(s)",
        "  time: 24 quarter hour(s) missing, first at 2018-01-03T12:00Z",
        "  load_w: 1 value(s) missing, first at 2018-01-03T09:15Z",
    ]


def test_plan_counts_gaps_of_an_hourly_forecast_file_in_hours(tmp_path: Path) -> None:
    forecast, path = _forecast_file(tmp_path, "hourly.csv")
    hourly = forecast.resample("1h").mean()
    _write_forecast(hourly.drop(hourly.loc["2018-01-03T12:00Z":"2018-01-03T17:00Z"].index), path)
    _refused(_plan(path), f"{path}: time: 6 1-hour step(s) missing, first at 2018-01-03T12:00Z")


def test_plan_reads_an_hourly_forecast_file(tmp_path: Path) -> None:
    """Forecast files may be coarser than quarter hours: not a gap in every hour."""
    forecast, path = _forecast_file(tmp_path, "hourly.csv")
    _write_forecast(forecast.resample("1h").mean(), path)
    result = _plan(path)
    assert result.exit_code == 0, result.output


def test_plan_names_unreadable_input_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(SAMPLE.read_bytes()[:2000] + b"\nStra\xdfe\n")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 but no more")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (tmp_path / "nope.csv", "not found"),
        (empty, "folder without .parquet, .csv or .csv.gz files"),
        (latin, "not UTF-8 text (byte 0xdf)"),
    ]
    for path, reason in cases:
        _refused(_plan(path), f"{path}: {reason}")
    result = _plan(broken)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"plan: {broken}: not a readable Parquet file: ")
    assert len(result.stderr.splitlines()) == 1
