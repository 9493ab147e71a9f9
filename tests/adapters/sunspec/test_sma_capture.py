"""Decode a real SMA Sunny Boy 3.6 capture and check the values its publisher expects.

The YAML (nielsbasjes/sunspec-device) holds a 2025 capture, with registers the device refused
marked ``----``, and per field the expected decoded text: numbers of scaled points with three
decimals, enums as symbol names, bitfields as the list of set bits' names, [] for "no value",
'' for an empty string. Each field is one test case; fields that cannot be compared are
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re

import pytest

from adapters.sunspec.codec import decode_value
from adapters.sunspec.decode import DecodedModel
from adapters.sunspec.discovery import ScanResult, plan_reads, read_models, scan
from adapters.sunspec.models import PointDef, bit_names, load_model, symbol_name
from tests.adapters.sunspec.helpers import SMA_DIR, DictReader, YamlVectors, read_yaml_vectors

VECTORS = read_yaml_vectors()
_GROUP_FIELD = re.compile(r"^R(\d+)_(.+)$")

# Fields where the YAML and the SunSpec definition disagree: (our value, why we skip).
DISAGREEMENTS = {
    ("Model_122", "ECPConn"): (
        1,
        "official model 122 declares ECPConn a bitfield16 but gives enum-style symbols "
        "(DISCONNECTED=0, CONNECTED=1), so bit 0 is named DISCONNECTED; the YAML names it "
        "CONNECTED (the meaning the description gives for value 1)",
    ),
    ("Model_128", "DbVMin"): (
        32768,
        "SMA writes 0x8000 into the uint16 DbVMin; the YAML toolkit treats 0x8000 as 'not "
        "implemented' for unsigned types too, the SunSpec spec and pysunspec2 only 0xFFFF",
    ),
}


@pytest.fixture(scope="module")
def sma() -> tuple[ScanResult, DictReader]:
    reader = DictReader(VECTORS.registers)
    return asyncio.run(scan(reader)), reader


def _cases(vectors: YamlVectors) -> list[tuple[str, str]]:
    """Every field, except the repeating-group fields the YAML places at other registers."""
    return [
        (block, name)
        for block, fields in vectors.expected.items()
        for name in fields
        if not _GROUP_FIELD.match(name) or _shift(block, name) == 0
    ]


@functools.cache
def _scanned() -> ScanResult:
    return asyncio.run(scan(DictReader(VECTORS.registers)))


def _shift(block: str, name: str) -> int:
    """Registers between where the YAML reads a field and where the definition puts it."""
    result = _scanned()
    _, _, address = _locate(result.model(int(block.removeprefix("Model_"))), name)
    return VECTORS.addresses[block][name] - address


def _locate(model: DecodedModel, name: str) -> tuple[PointDef, object, int]:
    """Our definition, decoded value and absolute address of a YAML field id."""
    mdef = load_model(model.id)
    match = _GROUP_FIELD.match(name)
    if match is None:
        pdef = mdef.group.point(name)
        return pdef, model.values[name], model.address + pdef.offset
    index, point = int(match.group(1)), match.group(2)
    (child,) = [g for g in mdef.group.groups if g.count is not None]
    pdef = child.point(point)
    address = model.address + mdef.group.fixed_size + index * child.fixed_size + pdef.offset
    return pdef, model.groups[child.name][index].values[point], address


def _check(pdef: PointDef, value: object, expected: list[str], raw: list[int]) -> None:
    """Compare our decoded value with the YAML's expected text for one point."""
    if pdef.type == "pad":
        # We decode pads as None; the YAML shows the raw bytes: compare those instead.
        assert expected == [" ".join(f"0x{b:02x}" for r in raw for b in r.to_bytes(2, "big"))]
    elif pdef.type.startswith("bitfield"):
        assert bit_names(pdef, value) == expected  # type: ignore[arg-type]
    elif pdef.type.startswith("enum"):
        name = symbol_name(pdef, value)  # type: ignore[arg-type]
        if value is not None and name is None:
            text = " ".join(f"0x{b:02X}" for r in raw for b in r.to_bytes(2, "big"))
            assert expected == [f"No mapping for value {text}"]
        else:
            assert expected == ([] if name is None else [name])
    elif pdef.type == "string":
        assert expected == ([""] if value is None else [value])
    elif value is None:
        assert expected == []
    elif pdef.sf is not None:
        assert len(expected) == 1
        assert float(expected[0]) == pytest.approx(value, abs=5e-4)
    else:
        assert expected == [str(value)]


@pytest.mark.parametrize(("block", "name"), _cases(VECTORS))
def test_yaml_expectation(sma: tuple[ScanResult, DictReader], block: str, name: str) -> None:
    result, _ = sma
    expected = VECTORS.expected[block][name]
    yaml_address = VECTORS.addresses[block][name]
    if block == "SunSpecHeader":
        assert result.base == yaml_address == 40000
        regs = [VECTORS.registers[40000], VECTORS.registers[40001]]
        assert [decode_value("string", regs)] == expected
        return
    if block == "EndOfModelChain":
        end = result.locations[-1].end
        assert yaml_address == end + (name == "L")
        assert [str(VECTORS.registers[yaml_address])] == expected
        return
    model = result.model(int(block.removeprefix("Model_")))
    pdef, value, address = _locate(model, name)
    if address != yaml_address:
        pytest.skip(
            f"YAML schema reads repeating-group field at a different register than the SunSpec "
            f"definition (shift {yaml_address - address:+d}: its group instances overlap the "
            "model's fixed part), so its expectation is for another point"
        )
    if (block, name) in DISAGREEMENTS:
        ours, reason = DISAGREEMENTS[(block, name)]
        assert value == ours
        pytest.skip(reason)
    raw = [VECTORS.registers.get(a, 0) for a in range(address, address + pdef.size)]
    if any(a in VECTORS.unreadable for a in range(address, address + pdef.size)):
        assert value is None, "a point covering a refused register must decode to None"
        pytest.skip("the device refused (part of) this point; the YAML decodes the rest")
    _check(pdef, value, expected, raw)


def test_yaml_misplaces_every_repeating_group_by_two_registers(
    sma: tuple[ScanResult, DictReader],
) -> None:
    """The YAML schema starts each model's repeating groups 2 registers early, on top of the
    model's last two fixed points (e.g. model 126 R0_ActPt at hr:40405, DeptRef_SF), so
    those expectations describe other registers and are not compared above."""
    result, _ = sma
    shifts: dict[str, set[int]] = {}
    for block, fields in VECTORS.expected.items():
        for name in fields:
            if _GROUP_FIELD.match(name):
                model = result.model(int(block.removeprefix("Model_")))
                _, _, address = _locate(model, name)
                shifts.setdefault(block, set()).add(VECTORS.addresses[block][name] - address)
    assert shifts and all(s == {-2} for s in shifts.values()), shifts
    assert (
        sum(len([n for n in VECTORS.expected[b] if _GROUP_FIELD.match(n)]) for b in shifts) == 287
    )


def test_scan_learns_refused_registers(sma: tuple[ScanResult, DictReader]) -> None:
    result, _ = sma
    assert result.unreadable == VECTORS.unreadable
    assert [loc.id for loc in result.locations] == [
        1, 11, 12, 101, 120, 121, 122, 123, 124, 126, 127, 128, 131, 132, 160, 129, 130,
    ]  # fmt: skip
    assert all(model.decoded for model in result.models)


async def test_poll_reads_around_refused_registers(sma: tuple[ScanResult, DictReader]) -> None:
    result, _ = sma
    reader = DictReader(VECTORS.registers)
    holes = set(result.unreadable)
    models = await read_models(reader, result.locations, unreadable=holes)
    plan = plan_reads(result.locations, unreadable=holes)
    assert reader.requests == plan  # no refused read once the holes are known
    assert holes == result.unreadable
    assert models[101].values == result.model(101).values


def test_mppt_modules_follow_the_definition(sma: tuple[ScanResult, DictReader]) -> None:
    # Model 160: fixed part of 8 registers, then N=6 modules of 20 (L=128). Module 1 reads
    # 1.8 A at 330 V and 610 W: consistent (330 V * 1.8 A = 594 W), unlike the YAML's
    # shifted reading of the same registers.
    m160 = sma[0].model(160)
    modules = m160.groups["module"]
    assert m160.values["N"] == len(modules) == 6
    first = modules[0].values
    assert (first["DCA"], first["DCV"], first["DCW"]) == (1.8, 330, 610)
    assert first["DCV"] * first["DCA"] == pytest.approx(first["DCW"], rel=0.05)
    assert modules[1].values["DCW"] == 440  # 0x2C * 10**DCW_SF


async def test_2023_dump_decodes_completely() -> None:
    data = json.loads((SMA_DIR / "SMA_SB3.6_dump_DeviceSMASunnyBoy36.registers.json").read_text())
    reader = DictReader.image(data["start_address"], data["registers"])
    result = await scan(reader)
    assert all(model.decoded and not model.errors for model in result.models)
    common = result.model(1).values
    assert (common["Mn"], common["Md"], common["Vr"], common["SN"]) == (
        "SMA", "SB3.6-1AV-41", "4.00.75.R", "3005067415",
    )  # fmt: skip
    module = result.model(160).groups["module"][0].values
    assert (module["ID"], module["DCA"], module["DCV"], module["DCW"]) == (1, 2.1, 322, 670)
    # One read for the marker, one per header (and the end marker), then the planned reads.
    plan = plan_reads(result.locations)
    assert len(plan) == 8  # 873 registers: 7 full requests would split 32-bit points
    assert reader.requests[1 + len(result.locations) + 1 :] == plan
