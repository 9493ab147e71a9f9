from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from vpp.core.site import ConfigError, DeviceKind, parse_site, read_site

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.toml"


def demo_data() -> dict:
    return tomllib.loads(DEMO.read_text())


def test_demo_site_has_the_promised_fleet() -> None:
    site = read_site(DEMO)
    assert 55 <= len(site.pv) <= 65
    assert 20 <= len(site.batteries) <= 30
    assert {d.control for d in site.batteries} == {"124", "802"}
    assert {d.sim.sunspec_model for d in site.pv} == {103, 113}
    assert all(3000 <= d.dc_peak_w <= 30000 for d in site.pv)
    assert all(5000 <= d.capacity_wh <= 20000 for d in site.batteries)
    assert site.device(site.grid.meter).kind == DeviceKind.METER
    assert site.heat_pump is not None and site.datacentre is not None


def test_bad_port_is_named_by_its_path() -> None:
    data = demo_data()
    data["devices"][3]["modbus"]["port"] = 70000
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert "devices[3].modbus.port: must be 1..65535, got 70000" in err.value.errors


def test_every_bad_field_is_reported() -> None:
    data = demo_data()
    data["devices"][0]["rated_w"] = -1
    data["devices"][70]["soc_min_pct"] = 99
    data["grid"]["import_limit_w"] = "lots"
    data["devices"][1]["colour"] = "red"
    del data["devices"][2]["modbus"]
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    text = "\n".join(err.value.errors)
    assert "devices[0].rated_w: must be > 0" in text
    assert "devices[70]: soc_min_pct (99.0) must be below soc_max_pct" in text
    assert "grid.import_limit_w:" in text
    assert "devices[1].colour: unknown field" in text
    assert "devices[2].modbus: required field missing" in text
    assert len(err.value.errors) == 5


def test_cross_references_are_checked() -> None:
    data = demo_data()
    data["devices"][1]["id"] = data["devices"][0]["id"]
    data["devices"][5]["modbus"] = dict(data["devices"][4]["modbus"])
    data["grid"]["meter"] = "pv-010"
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    text = "\n".join(err.value.errors)
    assert "duplicate device id 'pv-001'" in text
    assert "two devices share host 127.0.0.1 port 15100 unit 5" in text
    assert "grid.meter 'pv-010' is not a meter device" in text


def test_unknown_kind_is_named() -> None:
    data = demo_data()
    data["devices"][4]["kind"] = "windmill"
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert err.value.errors[0].startswith("devices[4]:")
    assert "windmill" in err.value.errors[0]


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_site(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\nname=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_site(bad)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpp", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_check_config_cli(tmp_path: Path) -> None:
    ok = run_cli("check-config", str(DEMO))
    assert ok.returncode == 0, ok.stderr
    assert "Leipzig demo district" in ok.stdout and "battery" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(DEMO.read_text().replace("port = 15100, unit = 4 }", "port = 0, unit = 4 }"))
    res = run_cli("check-config", str(bad))
    assert res.returncode == 1
    assert "devices[3].modbus.port: must be 1..65535, got 0" in res.stderr
