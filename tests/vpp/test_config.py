from __future__ import annotations

import math
import socket
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest
from click.testing import Result
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from vpp.cli import app
from vpp.core.site import (
    BatteryDevice,
    ConfigError,
    DatacentreDevice,
    DeviceKind,
    HeatPumpDevice,
    MeterDevice,
    PvDevice,
    Site,
    parse_site,
    read_site,
)

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
    assert "devices[pv-004].modbus.port: must be 1..65535, got 70000" in err.value.errors


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
    assert "devices[pv-001].rated_w: must be > 0" in text
    assert "devices[bat-011].soc_max_pct: must be above soc_min_pct (99), got 95" in text
    assert "grid.import_limit_w:" in text
    assert "devices[pv-002].colour: unknown field" in text
    assert "devices[pv-003].modbus: required field missing" in text
    assert len(err.value.errors) == 5


@pytest.mark.parametrize(
    ("quantiles", "message"),
    [
        ([0.5, 0.3], "must increase"),
        ([0.1, 1.0], "within 0.01..0.99"),
        ([math.nan], "must be a finite number"),
        ([], "1 to 12"),
    ],
)
def test_bad_reserve_quantiles_are_named(quantiles: list[float], message: str) -> None:
    """Each error names the field (a NaN its entry) and says what is wrong, once."""
    data = demo_data()
    data.setdefault("forecast", {})["reserve_quantiles"] = quantiles
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert len(err.value.errors) == 1
    assert err.value.errors[0].startswith("forecast.reserve_quantiles")
    assert message in err.value.errors[0]


def test_cross_references_are_checked() -> None:
    data = demo_data()
    data["devices"][1]["id"] = data["devices"][0]["id"]
    data["devices"][5]["modbus"] = dict(data["devices"][4]["modbus"])
    data["grid"]["meter"] = "pv-010"
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert err.value.errors == [
        # the two devices with one id are named by their position
        "devices[1].id: duplicate device id 'pv-001' (also devices[0])",
        "devices[pv-006].modbus: 127.0.0.1 port 15100 unit 5 is already the endpoint of "
        "devices[pv-005]",
        "grid.meter: 'pv-010' is not a meter device of this site",
    ]


def test_field_named_like_a_device_kind_keeps_its_path() -> None:
    data = demo_data()
    data["grid"]["meter"] = "bad id!"
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert err.value.errors[0].startswith("grid.meter: String should match pattern")


def test_cross_references_are_checked_without_parse_site_too() -> None:
    data = demo_data()
    data["devices"][1]["id"] = data["devices"][0]["id"]
    with pytest.raises(ValidationError, match=r"devices\[1\]\.id: duplicate device id 'pv-001'"):
        Site.model_validate(data)


def test_unknown_kind_is_named_with_plain_values() -> None:
    data = demo_data()
    data["devices"][4]["kind"] = "windmill"
    del data["devices"][5]["kind"]
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    kinds = "pv, battery, meter, heat_pump, datacentre"
    assert err.value.errors == [
        f"devices[pv-005].kind: unknown kind 'windmill' (one of: {kinds})",
        f"devices[pv-006].kind: required field missing (one of: {kinds})",
    ]


def test_devices_are_named_by_id_unless_the_id_cannot_name_them() -> None:
    data = demo_data()
    data["devices"][0]["id"] = "12"  # would read as an index
    data["devices"][1]["id"] = "pv two"  # malformed
    del data["devices"][2]["id"]
    for n in range(4):
        data["devices"][n]["rated_w"] = 0
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert [e for e in err.value.errors if "rated_w" in e] == [
        f"{name}.rated_w: must be > 0, got 0.0"
        for name in ("devices[0]", "devices[1]", "devices[2]", "devices[pv-004]")
    ]


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
    assert "devices[pv-004].modbus.port: must be 1..65535, got 0" in res.stderr


# --- finite numbers


def _has_float(annotation: object) -> bool:
    return annotation is float or any(_has_float(a) for a in typing.get_args(annotation))


def _float_fields(model: type[BaseModel], keys: tuple, label: str) -> list[tuple[tuple, str]]:
    """(keys into the TOML document, path in messages) of every float field below ``model``."""
    found = []
    for name, field in model.model_fields.items():
        if _has_float(field.annotation):
            found.append(((*keys, name), f"{label}.{name}"))
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found += _float_fields(field.annotation, (*keys, name), f"{label}.{name}")
    return found


def _every_float_field(data: dict) -> list[tuple[tuple, str]]:
    fields = []
    for name in ("site", "grid", "heat", "economics", "optimizer", "poll", "run"):
        model = Site.model_fields[name].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        fields += _float_fields(model, (name,), name)
    kinds = (PvDevice, BatteryDevice, MeterDevice, HeatPumpDevice, DatacentreDevice)
    for model in kinds:
        kind = model.model_fields["kind"].annotation.__args__[0].value  # Literal[DeviceKind.X]
        n, device = next((n, d) for n, d in enumerate(data["devices"]) if d["kind"] == kind)
        fields += _float_fields(model, ("devices", n), f"devices[{device['id']}]")
    return fields


def _set(data: dict, keys: tuple, value: object) -> None:
    for key in keys[:-1]:
        data = data.setdefault(key, {}) if isinstance(key, str) else data[key]
    data[keys[-1]] = value


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_field_refuses_inf_and_nan(value: float) -> None:
    data = demo_data()
    fields = _every_float_field(data)
    assert len(fields) > 50  # ratings, limits, prices, efficiencies, timeouts ...
    for keys, _ in fields:
        _set(data, keys, value)
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    for _, label in fields:
        assert f"{label}: must be a finite number, got {value}" in err.value.errors, label


def test_source_options_refuse_inf() -> None:
    data = demo_data()
    data["run"]["sources"] = [{"kind": "resilient", "inner": {"kind": "x", "retry_s": math.inf}}]
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert err.value.errors == ["run.sources: [0].inner.retry_s must be a finite number, got inf"]


def demo_with(tmp_path: Path, *changes: tuple[str, str], name: str = "site.toml") -> Path:
    """The demo site file with each ``(old, new)`` text replaced once."""
    text = DEMO.read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_clean_exit(result: Result) -> None:
    """Exit code 1 by ``typer.Exit``, not by an uncaught exception."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception


BAT_001 = "capacity_wh = 10000, max_charge_w = 5000, max_discharge_w = 5000, soc_initial_pct = 70"


def test_infinite_rating_is_refused_before_planning(tmp_path: Path) -> None:
    path = demo_with(
        tmp_path, (BAT_001, BAT_001.replace("capacity_wh = 10000", "capacity_wh = inf"))
    )
    line = "  devices[bat-001].capacity_wh: must be a finite number, got inf\n"
    checked = invoke("check-config", str(path))
    assert_clean_exit(checked)
    assert checked.stderr == f"{path}: 1 error(s)\n{line}"
    # planning used to fail deep in the optimiser with OverflowError
    planned = invoke("plan", "--config", str(path), "--at", "2018-01-03T06:00Z",
                     "--data", str(ROOT / "tests" / "data" / "inputs_sample.csv"))  # fmt: skip
    assert_clean_exit(planned)
    assert line in planned.stderr


# --- time zone


def test_unknown_time_zone_is_named(tmp_path: Path) -> None:
    path = demo_with(tmp_path, ('timezone = "Europe/Berlin"', 'timezone = "Europe/Leipzig"'))
    result = invoke("check-config", str(path))
    assert_clean_exit(result)
    assert (
        "  site.timezone: unknown time zone 'Europe/Leipzig' (an IANA name like 'Europe/Berlin')\n"
        in result.stderr
    )


# --- all errors at once


def test_check_config_lists_every_error_at_once(tmp_path: Path) -> None:
    path = demo_with(
        tmp_path,
        ('id = "pv-002"', 'id = "pv-001"'),
        ("port = 15100, unit = 4 }", "port = 0, unit = 4 }"),
        ('{ id = "pv-005", kind = "pv"', '{ id = "pv-005", kind = "windmill"'),
        ("soc_initial_pct = 60, control = \"124\", feeder = \"F2\"",
         "soc_initial_pct = 60, soc_min_pct = 99, control = \"124\", feeder = \"F2\""),
        ("return_temp_c = 45.0", "return_temp_c = 75.0"),
    )  # fmt: skip
    result = invoke("check-config", str(path))
    assert_clean_exit(result)
    assert result.stderr.splitlines() == [
        f"{path}: 5 error(s)",
        "  heat.return_temp_c: must be below supply_temp_c (70), got 75",
        "  devices[pv-004].modbus.port: must be 1..65535, got 0",
        "  devices[pv-005].kind: unknown kind 'windmill' "
        "(one of: pv, battery, meter, heat_pump, datacentre)",
        "  devices[bat-002].soc_max_pct: must be above soc_min_pct (99), got 95",
        # the duplicate id comes with the field errors, not after they are fixed
        "  devices[1].id: duplicate device id 'pv-001' (also devices[0])",
    ]


# --- Modbus endpoints, compared by the addresses their hosts resolve to


def test_localhost_and_loopback_are_one_endpoint(tmp_path: Path) -> None:
    # pv-001 answers on port 15100 unit 1 of 127.0.0.1, the default host
    pv_002 = "port = 15100, unit = 2 }"
    path = demo_with(tmp_path, (pv_002, 'host = "localhost", port = 15100, unit = 1 }'))
    result = invoke("check-config", str(path))
    assert_clean_exit(result)
    assert (
        "  devices[pv-002].modbus: localhost port 15100 unit 1 is already the endpoint of "
        "devices[pv-001] (127.0.0.1 and localhost both resolve to 127.0.0.1)\n"
    ) in result.stderr
    other_unit = demo_with(
        tmp_path, (pv_002, 'host = "localhost", port = 15100, unit = 2 }'), name="ok.toml"
    )
    assert invoke("check-config", str(other_unit)).exit_code == 0


def test_host_that_does_not_resolve_is_named(tmp_path: Path) -> None:
    bad = "x" * 64 + ".example"  # a label longer than DNS allows: refused before any lookup
    path = demo_with(tmp_path, ("port = 15100, unit = 2 }", f'host = "{bad}", port = 15100 }}'))
    result = invoke("check-config", str(path))
    assert_clean_exit(result)
    assert result.stderr.splitlines()[1:] == [
        f"  devices[pv-002].modbus.host: '{bad}' does not resolve (not a valid host name)"
    ]


def test_commands_that_contact_no_device_accept_hosts_that_do_not_resolve(tmp_path: Path) -> None:
    """A production site file names hosts of the plant network; an engineer plans, replays and
    exports with it where those names do not resolve. Endpoints still compare by name there."""
    gw = "gw-01.plant.invalid"  # .invalid never resolves (RFC 6761)
    one = ("port = 15100, unit = 2 }", f'host = "{gw}", port = 15100, unit = 2 }}')
    path = demo_with(tmp_path, one)
    with pytest.raises(ConfigError, match=r"devices\[pv-002\]\.modbus\.host: .* does not resolve"):
        read_site(path)
    site = read_site(path, offline=True)
    assert site.device("pv-002").modbus.host == gw
    result = invoke("plan", "--config", str(path), "--at", "2018-06-01T00:00:00+02:00")
    assert result.exit_code == 0, result.output
    assert "does not resolve" not in result.output
    assert invoke("check-config", str(path)).exit_code == 1  # check-config looks them up
    twice = demo_with(
        tmp_path,
        one,
        ("port = 15100, unit = 3 }", f'host = "{gw}", port = 15100, unit = 2 }}'),
        name="twice.toml",
    )
    with pytest.raises(ConfigError, match=r"devices\[pv-003\]\.modbus: .* already the endpoint"):
        read_site(twice, offline=True)


def test_resolver_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, *args: object, **kwargs: object) -> object:
        if host == "plc-7.example":  # what a typo gives, without asking a name server
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    data = demo_data()
    data["devices"][1]["modbus"]["host"] = "plc-7.example"
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert err.value.errors == [
        "devices[pv-002].modbus.host: 'plc-7.example' does not resolve (Name or service not known)"
    ]


# --- files that cannot be read: one line naming the file


def _missing(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path / "nope.toml", "not found"


def _folder(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "site.toml"
    path.mkdir()
    return path, "is a folder, not a site file"


def _latin1(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[site]\nname = "Stra\xdfe"\n')
    return path, "not UTF-8 text: byte 0xdf at line 2, column 13"


def _not_toml(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "bad.toml"
    path.write_text("[site\nname = 1\n")
    return (
        path,
        "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)",
    )


@pytest.mark.parametrize("make", [_missing, _folder, _latin1, _not_toml])
def test_unreadable_site_file_is_one_line(tmp_path: Path, make: typing.Any) -> None:
    path, reason = make(tmp_path)
    with pytest.raises(ConfigError) as err:
        read_site(path)
    assert str(err.value) == f"{path}: {reason}"
    result = invoke("check-config", str(path))
    assert_clean_exit(result)
    assert result.stderr == f"{path}: {reason}\n"


def test_unreadable_site_file_stops_every_command_without_a_traceback(tmp_path: Path) -> None:
    path, reason = _folder(tmp_path)
    commands = (
        ["run", "--config", str(path)],
        ["plan", "--config", str(path), "--at", "2018-01-03T06:00Z"],
    )
    for command in commands:
        res = run_cli(*command)
        assert res.returncode == 1, res.stderr
        assert res.stderr == f"{path}: {reason}\n"


def test_byte_order_mark_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + DEMO.read_bytes())
    assert read_site(path).site.name == "Leipzig demo district"
