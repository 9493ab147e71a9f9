"""Model lengths L that differ from the definition: decode what fits, warn, keep walking.

Pure tests over register lists (the in-memory DictReader for chains); the same images over a
real Modbus server, with the drivers, the poller and the controls, are in
tests/adapters/test_model_lengths.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.sunspec.decode import DecodedModel, ModelLengthError, decode_model, encode_model
from adapters.sunspec.discovery import ModelLocation, plan_reads, read_chain, scan
from adapters.sunspec.models import ModelDef, load_model
from tests.adapters.sunspec.helpers import DictReader, device_image

COMMON = encode_model(load_model(1), {"Mn": "SunSpecTest", "SN": "7"})
INVERTER_103 = encode_model(
    load_model(103),
    {
        "A": 12.5, "AphA": 4.2, "AphB": 4.1, "AphC": 4.2, "A_SF": -1, "PhVphA": 231.4,
        "PhVphB": 229.9, "PhVphC": 230.2, "V_SF": -1, "W": 2871, "W_SF": 0, "Hz": 50.01,
        "Hz_SF": -2, "WH": 7_654_321, "WH_SF": 0, "DCW": 2990, "DCW_SF": 0, "TmpCab": 41.5,
        "Tmp_SF": -1, "St": 4, "Evt1": 0x10, "Evt2": 0, "EvtVnd1": 0x20, "EvtVnd2": 3,
        "EvtVnd3": 4, "EvtVnd4": 5,
    },
)  # fmt: skip
NAMEPLATE = encode_model(load_model(120), {"DERTyp": 82, "WRtg": 5000, "WRtg_SF": 0})
STORAGE_124 = encode_model(
    load_model(124),
    {
        "WChaMax": 5000, "WChaMax_SF": 0, "StorCtl_Mod": 2, "ChaState": 63.5,
        "ChaState_SF": -1, "ChaSt": 5, "OutWRte": 40, "InWRte": 0, "InOutWRte_SF": 0,
        "InOutWRte_RvrtTms": 600,
    },
)  # fmt: skip


def decode(regs: list[int], address: int = 40070) -> DecodedModel:
    """Decode a model from its registers (header included); L is taken from the header."""
    model = load_model(regs[0])
    assert regs[1] == len(regs) - 2
    return decode_model(model, address, regs[2:])


def with_length(regs: list[int], length: int, fill: int = 0x1234) -> list[int]:
    """The model cut to, or extended with ``fill`` to, ``length`` body registers."""
    body = regs[2:][:length]
    return [regs[0], length, *body, *[fill] * (length - len(body))]


def sf_of(model: ModelDef, name: str) -> str | None:
    sf = model.group.point(name).sf
    return sf if isinstance(sf, str) else None


def test_103_shortened_decodes_every_point_that_fits() -> None:
    full = decode(INVERTER_103)
    short = decode(with_length(INVERTER_103, 43))  # cuts EvtVnd1 (44-45) in half
    assert short.length == 43 and short.errors == [] and short.decoded
    assert short.missing == {"EvtVnd1", "EvtVnd2", "EvtVnd3", "EvtVnd4"}
    for name, value in full.values.items():
        if name == "L":
            continue
        assert short.values[name] == (None if name in short.missing else value), name
    assert (short.values["W"], short.values["PhVphB"], short.values["Hz"]) == (2871, 229.9, 50.01)
    assert short.values["WH"] == 7_654_321 and short.values["Evt1"] == 0x10
    (warning,) = short.warnings
    assert isinstance(warning, ModelLengthError)
    assert str(warning) == (
        "model 103 (inverter_three_phase) at 40070: L=43 is shorter than the definition "
        "(50 registers): 4 points beyond L missing (None): EvtVnd1, EvtVnd2, EvtVnd3, EvtVnd4"
    )


@pytest.mark.parametrize("model_id", [103, 120, 123, 124, 701, 704, 802])
def test_every_cut_of_a_fixed_model_keeps_what_fits(model_id: int) -> None:
    """For every L below the full length: values inside L as decoded in full, the rest None
    and named in ``missing``, points whose scale factor is cut off None (not missing)."""
    model = load_model(model_id)
    regs = encode_model(model, _sample_values(model))
    full = decode(regs)
    for length in range(len(regs) - 2):
        short = decode(with_length(regs, length))
        # A trailing pad cut off is harmless (model 1 with L=65 is common): no warning.
        assert short.errors == [] and len(short.warnings) == bool(short.missing), length
        for p in model.group.points[2:]:  # ID and L are the header
            fits = p.offset + p.size <= length + 2
            assert (p.name in short.missing) == (not fits and p.type != "pad"), p.name
            sf = sf_of(model, p.name)
            usable = fits and (sf is None or sf not in short.missing)
            expected = full.values[p.name] if usable else None
            assert short.values[p.name] == expected, (length, p.name)


def _sample_values(model: ModelDef) -> dict[str, Any]:
    """A value for every plain integer point (scale factors -1), so nothing is None."""
    values: dict[str, Any] = {}
    for i, p in enumerate(model.group.points[2:]):
        if p.type == "sunssf":
            values[p.name] = -1
        elif p.type in ("uint16", "int16", "enum16", "bitfield16", "acc16", "count"):
            values[p.name] = 1 + i if p.sf is None else (1 + i) / 10
    return values


def test_124_with_extra_vendor_registers_ignores_them() -> None:
    full = decode(STORAGE_124)
    longer = decode(with_length(STORAGE_124, 24 + 6))
    assert longer.values == {**full.values, "L": 30} and longer.missing == frozenset()
    assert longer.values["ChaState"] == 63.5 and longer.values["InOutWRte_RvrtTms"] == 600
    assert longer.raw[24:] == [0x1234] * 6 and longer.length == 30
    assert [str(w) for w in longer.warnings] == [
        "model 124 (storage_basic) at 40070: L=30 is longer than the definition (24 registers): "
        "6 registers beyond the definition ignored"
    ]


@pytest.mark.parametrize(
    ("model_id", "point", "size"), [(160, "DCA", 20), (403, "InDCA", 8), (404, "InDCA", 14)]
)
def test_repeating_models_with_a_partial_repeat(model_id: int, point: str, size: int) -> None:
    model = load_model(model_id)
    (group,) = model.group.groups
    instances = [{point: 1.5 * i} for i in (1, 2, 3)]
    regs = encode_model(model, {f"{point}_SF": -1, "N": 3}, {group.name: instances})
    assert group.fixed_size == size
    for cut in range(1, size):
        decoded = decode(with_length(regs, regs[1] - cut))
        assert [g.values[point] for g in decoded.groups[group.name]] == [1.5, 3.0]
        assert decoded.values["N"] == 3 and decoded.missing == frozenset()
        assert decoded.errors == []
        (warning,) = decoded.warnings
        assert f"hold 2 instances of {size} registers and {size - cut} more" in str(warning)


async def test_short_model_is_followed_by_the_next_one_in_the_chain() -> None:
    short = with_length(INVERTER_103, 35)  # ends before Tmp_SF: the temperatures go too
    longer = with_length(STORAGE_124, 28)
    reader = DictReader.image(40000, device_image(COMMON, short, NAMEPLATE, longer))
    locations = await read_chain(reader, 40000)
    assert locations == [
        ModelLocation(1, 40002, 66),
        ModelLocation(103, 40070, 35),
        ModelLocation(120, 40070 + 2 + 35, 26),
        ModelLocation(124, 40107 + 2 + 26, 28),
    ]
    result = await scan(reader)
    inverter, nameplate, storage = result.models[1:]
    assert inverter.values["W"] == 2871 and inverter.values["WH"] == 7_654_321
    assert inverter.values["TmpCab"] is None and inverter.values["St"] is None
    assert {"Tmp_SF", "St", "Evt1"} <= inverter.missing and "TmpCab" not in inverter.missing
    assert nameplate.values["WRtg"] == 5000 and nameplate.warnings == []
    assert storage.values["ChaState"] == 63.5 and storage.missing == frozenset()
    assert "4 registers beyond the definition ignored" in str(storage.warnings[0])
    assert [m.id for m in result.models if m.errors] == []


def test_reads_are_not_split_for_points_a_short_model_does_not_have() -> None:
    # Model 101 cut to L=49 ends inside its last 32-bit point; the next model starts at the
    # register where that point's second half would be, so a read may end there.
    chain = [ModelLocation(101, 40000, 49), ModelLocation(120, 40051, 26)]
    assert plan_reads(chain, max_count=51) == [(40000, 51), (40051, 28)]
