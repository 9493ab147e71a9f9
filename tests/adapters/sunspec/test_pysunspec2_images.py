"""Decode pysunspec2's simulated devices and compare every point with pysunspec2's own decode.

The register images are produced by pysunspec2 (``FileClientDevice`` loads the JSON device,
``Model.get_mb()`` gives each model's registers), so they do not depend on our encoder. Then
pysunspec2 decodes the same bytes again (``device.Model(data=...)``) and its ``cvalue`` of each
point is compared with ours, reconciling the documented representation differences.
"""

from __future__ import annotations

import struct

import pytest
import sunspec2.device as ss_device
import sunspec2.file.client as ss_file

from adapters.sunspec.discovery import ScanResult, scan
from adapters.sunspec.models import load_model
from tests.adapters.sunspec.helpers import IMAGES_DIR, SUNS, DictReader, compare_group

IMAGES = ["inverter_123.json", "device_1547.json"]


def pysunspec2_image(name: str) -> tuple[list[int], list[tuple[int, bytes]]]:
    """Registers of a whole device from 40000 and each model's (id, bytes incl. header)."""
    device = ss_file.FileClientDevice(str(IMAGES_DIR / name))
    device.scan()
    models = [(m.model_id, m.get_mb()) for m in device.model_list]
    data = b"".join(mb for _, mb in models)
    regs = [*SUNS, *struct.unpack(f">{len(data) // 2}H", data), 0xFFFF, 0]
    return regs, models


@pytest.mark.parametrize("name", IMAGES)
async def test_every_point_matches_pysunspec2(name: str) -> None:
    regs, models = pysunspec2_image(name)
    result: ScanResult = await scan(DictReader.image(40000, regs))
    assert [m.id for m in result.models] == [mid for mid, _ in models]
    compared = 0
    for ours, (model_id, data) in zip(result.models, models, strict=True):
        assert not ours.errors, ours.errors
        length = len(data) // 2 - 2
        ref = ss_device.Model(model_id=model_id, model_len=length, data=data)
        assert not ref.error_info, ref.error_info
        compared += compare_group(ref, ours.values, ours.groups, f"{model_id}.")
    assert compared == {"inverter_123.json": 189, "device_1547.json": 385}[name]


async def test_1547_curves_have_their_nested_points() -> None:
    regs, _ = pysunspec2_image("device_1547.json")
    result = await scan(DictReader.image(40000, regs))
    volt_var = result.model(705)
    curves = volt_var.groups["Crv"]
    assert len(curves) == volt_var.values["NCrv"] > 1
    assert all(len(c.groups["Pt"]) == volt_var.values["NPt"] for c in curves)
    trip = result.model(707)
    for curve in trip.groups["Crv"]:
        for kind in ("MustTrip", "MayTrip", "MomCess"):
            (part,) = curve.groups[kind]
            assert len(part.groups["Pt"]) == trip.values["NPt"]
    assert load_model(707).group.group("Crv").group("MustTrip").count is None
