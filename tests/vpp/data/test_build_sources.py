"""``vpp data build --source DIR``: one clear line when the folder or a file it reads is
missing, naming the file and where the public data comes from."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from vpp.cli import app

REQUIRED_2018 = [
    "prices/smard_dayahead_2018_hourly.csv",
    "weather/dwd_try2010_region04_leipzig.dat",
    "load/h25.csv",
    "load/shlp_sigmoid_factors.csv",
    "load/shlp_hour_factors.csv",
    "load/shlp_weekday_factors.csv",
]


def lay_out(root: Path, names: list[str]) -> Path:
    """Placeholder files (the check looks at names; the build would reject the content)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("placeholder\n")
    return root


def build(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["data", "build", *args])
    return result.exit_code, result.output


def test_a_missing_folder_names_every_file_and_the_sources(tmp_path: Path) -> None:
    code, output = build("--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert code == 1
    [line] = output.strip().splitlines()  # one line, however wide
    assert line.startswith(f"vpp data build: {tmp_path / 'nowhere'}: source data folder not found")
    assert "--source DIR" in line and "data/README.md" in line
    for name in REQUIRED_2018:
        assert name in line
    assert "grid/2018_DE_gen_entsoe.parquet from ENTSO-E optional" in line
    assert not (tmp_path / "o").exists()


def test_a_missing_file_is_named_with_its_source(tmp_path: Path) -> None:
    source = lay_out(tmp_path / "src", REQUIRED_2018[1:])
    code, output = build("--source", str(source), "--out", str(tmp_path / "o"))
    assert code == 1
    [line] = output.strip().splitlines()
    assert line == (
        f"vpp data build: {source}: 1 source file(s) missing for 2018: "
        "prices/smard_dayahead_2018_hourly.csv (SMARD day-ahead prices, https://www.smard.de, "
        "2018); the public datasets, their licences and addresses are listed in data/README.md"
    )


def test_entsoe_generation_needs_its_capacity_and_emission_factors(tmp_path: Path) -> None:
    names = [*REQUIRED_2018, "grid/2018_DE_gen_entsoe.parquet"]
    code, output = build("--source", str(lay_out(tmp_path, names)))
    assert code == 1
    assert "2 source file(s) missing for 2018" in output
    assert "grid/2018_DE_installedGen_entsoe.parquet (ENTSO-E" in output
    assert "grid/tranberg_specific_emission_factors.csv (Tranberg" in output


def test_the_year_decides_the_price_file(tmp_path: Path) -> None:
    code, output = build("--source", str(lay_out(tmp_path, REQUIRED_2018)), "--year", "2023")
    assert code == 1
    assert "prices/smard_dayahead_2023_hourly.csv (SMARD day-ahead prices" in output


def test_unreadable_sources_fail_with_a_styled_line(tmp_path: Path) -> None:
    """Every file there, but not in its format: the build's own error, markup rendered."""
    source = lay_out(tmp_path / "src", REQUIRED_2018)
    for flag in ("--source", "--shared"):  # --shared: the option's earlier name
        code, output = build(flag, str(source), "--out", str(tmp_path / "o"))
        assert code == 1
        assert "build 2018 failed: " in output and "not a DWD TRY file" in output
        assert "[bold red]" not in output and "[/]" not in output
