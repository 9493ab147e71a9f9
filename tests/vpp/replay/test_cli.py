"""``vpp replay`` writes the report folder; exported days in a folder read as one table."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from vpp.cli import app
from vpp.core.site import Site
from vpp.data import read_inputs, shipped_inputs, write_inputs
from vpp.data.clouds import CloudParams
from vpp.replay.data import read_replay_inputs
from vpp.replay.layout import plant_inputs
from vpp.replay.runner import day_index

SITE_TOML = Path(__file__).resolve().parents[3] / "config" / "demo.toml"


def _small_toml(path: Path, site: Site) -> Path:
    """The small test site as a file, with a short horizon to keep the run quick."""
    lines = ["devices = ["]
    for d in site.devices:
        fields = d.model_dump(mode="json", exclude_defaults=True, exclude={"modbus", "sim"})
        fields.update(modbus={"port": d.modbus.port, "unit": d.modbus.unit})
        lines.append("  " + _inline(fields) + ",")
    lines.append("]")
    body = site.model_dump(mode="json", include={"site", "grid", "heat"}, exclude_defaults=True)
    for table, values in body.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {_value(v)}" for k, v in values.items()]
    lines += ["[optimizer]", "horizon_h = 6"]
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())  # the file must be valid TOML
    return path


def _value(v: object) -> str:
    if isinstance(v, dict):
        return _inline(v)
    return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)


def _inline(d: dict[str, object]) -> str:
    return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in d.items()) + " }"


def test_cli_writes_the_report_folder(tmp_path: Path, site: Site) -> None:
    config = _small_toml(tmp_path / "site.toml", site)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "replay",
            "--config",
            str(config),
            "--from",
            "2018-05-16",
            "--to",
            "2018-05-16",
            "--out",
            str(out),
            "--workers",
            "1",
            "--chain-days",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("kpis.csv", "steps.parquet", "summary.png", "day_2018-05-16.png", "index.html"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "kpis_monthly.csv").exists()  # one month only
    kpis = pd.read_csv(out / "kpis.csv")
    assert list(kpis["day"]) == ["2018-05-16"] * 5 + ["total"] * 5
    assert set(kpis["strategy"]) == {
        "no_control",
        "self_consumption",
        "controller",
        "oracle",
        "bound",
    }
    # Every strategy costs at least the bound ending where it ended.
    assert (kpis["regret_eur"] >= -0.05).all()
    page = (out / "index.html").read_text()
    assert "day_2018-05-16.png" in page and "Perfect foresight" in page
    assert "Every day starts from the site file" in page
    steps = pd.read_parquet(out / "steps.parquet")
    assert len(steps) == 5 * 96
    assert "controller" in result.output


def test_cli_rejects_bad_dates(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "replay",
            "--config",
            str(SITE_TOML),
            "--from",
            "soon",
            "--to",
            "2018-05-16",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code != 0
    result = CliRunner().invoke(
        app,
        [
            "replay",
            "--config",
            str(SITE_TOML),
            "--from",
            "2031-01-01",
            "--to",
            "2031-01-02",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "replay" in result.output
    args = ["--config", str(SITE_TOML), "--from", "2018-05-16", "--to", "2018-05-16"]
    result = CliRunner().invoke(app, ["replay", *args, "--chain-days", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--chain-days" in result.output
    result = CliRunner().invoke(
        app, ["replay", *args, "--forecaster", "ml", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--forecaster" in result.output


def test_folder_of_exported_days(tmp_path: Path, site: Site) -> None:
    """Exported days (one CSV each, optional columns may be missing) read as one table."""
    days = [date(2018, 5, d) for d in range(6, 17)]
    for day in days:
        index = day_index(site, day)
        rows = read_inputs(shipped_inputs(2018), index[0], index[-1] + pd.Timedelta("15min"))
        if day.day == 10:
            rows = rows.drop(columns=["ghi_w_per_m2"])
        write_inputs(rows, tmp_path / f"inputs_{day}.csv")
    plain = {"pv": "rules", "weather": "persistence"}
    rules = site.model_copy(update={"forecast": site.forecast.model_copy(update=plain)})
    table = read_replay_inputs(rules, days[-1], days[-1], tmp_path)
    assert "ghi_w_per_m2" not in table.columns and "price_eur_per_mwh" in table.columns
    assert table.index[0] == day_index(site, days[2])[0]  # 8 days of history before the day
    assert table.index[-1] == day_index(site, days[-1])[-1]
    # Issued PV forecasts are scored on more days before, and so is the heat forecast's
    # level with issued temperature forecasts: all the folder has.
    assert site.forecast.pv == "issued" and site.forecast.weather == "synthetic"
    for forecast in ({"pv": "issued", "weather": "persistence"}, {"pv": "rules"}):
        more = site.model_copy(update={"forecast": site.forecast.model_copy(update=forecast)})
        issued = read_replay_inputs(more, days[-1], days[-1], tmp_path)
        assert issued.index[0] == day_index(site, days[0])[0]


def test_cli_pv_clouds_gives_each_inverter_its_minutes(
    tmp_path: Path, site: Site, data: pd.DataFrame
) -> None:
    """``--pv-clouds SEED``: the plant's PV is the cloud process's with that seed."""
    config = _small_toml(tmp_path / "site.toml", site)
    out = tmp_path / "report"
    day = "2018-05-16"
    args = ["replay", "--config", str(config), "--from", day, "--to", day, "--out", str(out)]
    result = CliRunner().invoke(
        app, [*args, "--workers", "1", "--chain-days", "1", "--pv-clouds", "3"]
    )
    assert result.exit_code == 0, result.output
    steps = pd.read_parquet(out / "steps.parquet")
    replayed = steps[steps["strategy"] == "no_control"]["pv_available_w"].to_numpy(float)
    raw = data.loc[day_index(site, date(2018, 5, 16))]
    cloudy = plant_inputs(site, raw, clouds=CloudParams(seed=3)).pv_avail_w.sum(axis=1)
    plain = plant_inputs(site, raw).pv_avail_w.sum(axis=1)
    np.testing.assert_allclose(replayed, cloudy, rtol=1e-9)
    assert np.abs(cloudy - plain).max() > 1_000.0  # the roofs and clouds make a difference
