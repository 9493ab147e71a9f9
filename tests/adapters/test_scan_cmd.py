"""``vpp scan``: run as a separate process against a server in the test's event loop."""

from __future__ import annotations

import asyncio
import json
import re
import sys

import pytest
import typer

from tests.adapters.fleet import pv_models
from tests.adapters.servers import FakeUnit, UnitServer, resize_model, sunspec_image
from tests.conftest import free_port
from vpp.cli.scan_cmd import get_scan, parse_endpoint


async def vpp(*args: str) -> tuple[int, str, str]:
    """Run ``python -m vpp ARGS``; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vpp",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_scan_json_lists_every_model_with_decoded_points() -> None:
    port = free_port()
    async with UnitServer(port, [FakeUnit(3, sunspec_image(pv_models(w=1234.5)), start=0)]):
        code, out, err = await vpp("scan", f"127.0.0.1:{port}", "--unit", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["base"] == 0
    assert [m["id"] for m in data["models"]] == [1, 103, 120, 123]
    inverter = next(m for m in data["models"] if m["id"] == 103)
    points = {p["name"]: p for p in inverter["points"]}
    assert points["W"]["value"] == 1234.5 and points["W"]["unit"] == "W"
    assert points["St"]["symbol"] == "MPPT"
    assert {p["name"]: p["value"] for p in data["models"][0]["points"]}["Mn"] == "ACME"


async def test_scan_table_and_given_base() -> None:
    port = free_port()
    async with UnitServer(port, [FakeUnit(1, sunspec_image(pv_models()), start=30000)]):
        code, out, err = await vpp("scan", f"127.0.0.1:{port}", "--base", "30000")
    assert code == 0, err
    assert "SunSpec base 30000, 4 models" in out
    assert re.search(r"model 103 inverter_three_phase @\s+30070", out)  # titles may wrap
    assert "MPPT" in out


async def test_scan_shows_model_length_warnings() -> None:
    image = resize_model(sunspec_image(pv_models(w=1234.5)), 103, 44)  # 6 registers short
    image = resize_model(image, 120, 30)  # 4 vendor registers after the nameplate
    port = free_port()
    async with UnitServer(port, [FakeUnit(1, image)]):
        code, out, err = await vpp("scan", f"127.0.0.1:{port}")
        code_json, out_json, err_json = await vpp("scan", f"127.0.0.1:{port}", "--json")
    assert code == 0 and code_json == 0, err + err_json
    assert "SunSpec base 40000, 4 models" in out
    text = " ".join(out.split())  # table captions wrap
    assert (
        "warning: model 103 (inverter_three_phase) at 40070: L=44 is shorter than the "
        "definition (50 registers): 3 points beyond L missing (None): EvtVnd2, EvtVnd3, EvtVnd4"
    ) in text
    assert "warning: model 120 (nameplate) at 40116: L=30 is longer" in text
    data = json.loads(out_json)
    inverter, nameplate, controls = data["models"][1:]
    assert inverter["missing"] == ["EvtVnd2", "EvtVnd3", "EvtVnd4"]
    assert {p["name"]: p["value"] for p in inverter["points"]}["W"] == 1234.5
    assert "4 registers beyond the definition ignored" in nameplate["warnings"][0]
    assert controls["address"] == 40148 and controls["warnings"] == []  # still found


async def test_scan_failures_exit_1_with_a_clear_message() -> None:
    port = free_port()
    no_suns = FakeUnit(1, [0] * 10, start=40000)
    async with UnitServer(port, [no_suns]):
        code, out, err = await vpp("scan", f"127.0.0.1:{port}", "--timeout", "0.5")
    assert code == 1 and out == ""
    assert "no SunSpec 'SunS' marker" in err and "40000: found 0x0000 0x0000" in err

    closed = free_port()
    code, _, err = await vpp("scan", f"127.0.0.1:{closed}", "--timeout", "0.5")
    assert code == 1
    assert f"scan of 127.0.0.1:{closed} unit 1 failed" in err and "cannot connect" in err


async def test_get_scan_decodes_the_whole_device() -> None:
    port = free_port()
    async with UnitServer(port, [FakeUnit(1, sunspec_image(pv_models()))]):
        result = await get_scan("127.0.0.1", port, 1, None, 1.0)
    assert result.base == 40000
    assert result.model(120).values["WRtg"] == 5000


@pytest.mark.parametrize("text", ["host", "host:", ":502", "host:0", "host:70000", "h:x"])
def test_bad_endpoints_are_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_endpoint(text)


def test_endpoints_parse() -> None:
    assert parse_endpoint("10.0.0.5:502") == ("10.0.0.5", 502)
    assert parse_endpoint("[::1]:1502") == ("::1", 1502)
