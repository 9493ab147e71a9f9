"""Scan presentation: JSON-ready data and tables."""

from __future__ import annotations

import json

from adapters.sunspec.decode import encode_model
from adapters.sunspec.discovery import scan
from adapters.sunspec.models import load_model
from adapters.sunspec.scan import scan_to_json, scan_to_table, scan_to_text
from tests.adapters.sunspec.helpers import DictReader, device_image, read_yaml_vectors


async def test_json_of_the_sma_capture() -> None:
    result = await scan(DictReader(read_yaml_vectors().registers))
    data = json.loads(json.dumps(scan_to_json(result)))  # plain JSON types only
    assert data["base"] == 40000 and len(data["unreadable"]) == 110
    common = data["models"][0]
    assert (common["id"], common["name"], common["address"], common["length"]) == (
        1, "common", 40002, 66,
    )  # fmt: skip
    assert {"name": "Mn", "value": "SMA", "unit": None} in common["points"]
    inverter = next(m for m in data["models"] if m["id"] == 101)
    points = {p["name"]: p for p in inverter["points"]}
    assert points["W"] == {"name": "W", "value": 970, "unit": "W"}
    assert points["St"]["symbol"] == "MPPT" and points["Evt1"]["bits"] == []
    mppt = next(m for m in data["models"] if m["id"] == 160)
    module = {p["name"]: p["value"] for p in mppt["groups"]["module"][0]["points"]}
    assert (module["DCA"], module["DCV"], module["DCW"]) == (1.8, 330, 610)
    assert "unreadable" in mppt["errors"][0]


async def test_undecoded_model_keeps_raw_registers() -> None:
    vendor = [64999, 2, 0xABCD, 1]
    common = encode_model(load_model(1), {"Mn": "x"})
    result = await scan(DictReader.image(40000, device_image(common, vendor)))
    data = scan_to_json(result)
    assert data["models"][1]["raw"] == [0xABCD, 1] and data["models"][1]["points"] == []
    tables = scan_to_table(result)
    assert len(tables) == 2 and tables[1].caption and "64999" in str(tables[1].caption)


async def test_text_rendering_has_group_rows() -> None:
    mppt = encode_model(load_model(160), {"DCA_SF": -1, "N": 2}, {"module": [{"DCA": 1.5}, {}]})
    result = await scan(DictReader.image(0, device_image(mppt)))
    text = scan_to_text(result)
    assert "model 160 mppt @ 2 (L=48)" in text
    assert "module[1].DCA" in text and "1.5" in text and "module[2].IDStr" in text


async def test_model_length_warnings_and_missing_points_are_shown() -> None:
    inverter = encode_model(load_model(103), {"W": 2871, "W_SF": 0, "St": 4})
    short = [103, 43, *inverter[2:45]]  # 7 registers short: EvtVnd1..4 are cut off
    storage = encode_model(load_model(124), {"ChaState": 63, "ChaState_SF": 0})
    longer = [124, 26, *storage[2:], 0xBEEF, 0xBEEF]  # two vendor registers at the end
    result = await scan(DictReader.image(40000, device_image(short, longer)))
    data = json.loads(json.dumps(scan_to_json(result)))
    inv, sto = data["models"]
    assert inv["missing"] == ["EvtVnd1", "EvtVnd2", "EvtVnd3", "EvtVnd4"]
    assert inv["warnings"] == [
        "model 103 (inverter_three_phase) at 40002: L=43 is shorter than the definition "
        "(50 registers): 4 points beyond L missing (None): EvtVnd1, EvtVnd2, EvtVnd3, EvtVnd4"
    ]
    assert inv["errors"] == [] and "raw" not in inv
    points = {p["name"]: p["value"] for p in inv["points"]}
    assert points["W"] == 2871 and points["St"] == 4 and points["EvtVnd1"] is None
    assert sto["missing"] == [] and "2 registers beyond the definition" in sto["warnings"][0]
    assert {p["name"]: p["value"] for p in sto["points"]}["ChaState"] == 63
    lines = scan_to_text(result, width=200).splitlines()
    rows = {line.split()[1]: line for line in lines if line.startswith("│ ")}
    assert "missing: beyond L" in rows["EvtVnd1"] and "missing: beyond L" in rows["EvtVnd4"]
    assert "missing" not in rows["Evt2"] and "2871" in rows["W"]
    text = " ".join(" ".join(lines).split())  # captions wrap to the table's width
    assert "warning: model 103 (inverter_three_phase) at 40002: L=43 is shorter" in text
    assert "warning: model 124 (storage_basic) at 40047: L=26 is longer" in text


async def test_missing_points_are_listed_in_definition_order() -> None:
    controls = encode_model(load_model(123), {"WMaxLimPct": 100, "WMaxLimPct_SF": 0})
    result = await scan(DictReader.image(0, device_image([123, 20, *controls[2:22]])))
    (model,) = scan_to_json(result)["models"]
    assert model["missing"] == ["VArPct_Ena", "WMaxLimPct_SF", "OutPFSet_SF", "VArPct_SF"]
