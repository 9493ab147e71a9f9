"""Model decode/encode: repeating and nested groups, lengths, scale factors, bad registers."""

from __future__ import annotations

import random

import pytest

from adapters.sunspec.codec import ScaleFactorError
from adapters.sunspec.decode import (
    DecodedGroup,
    ModelLengthError,
    decode_model,
    encode_model,
    point_address,
)
from adapters.sunspec.models import (
    ModelDefinitionError,
    SunSpecDecodeError,
    SunSpecEncodeError,
    UnknownModelError,
    known_model_ids,
    load_model,
)


def as_data(groups: dict[str, list[DecodedGroup]]) -> dict[str, list[dict[str, object]]]:
    """Decoded groups back in encode_model's input shape."""
    return {
        name: [{**g.values, **as_data(g.groups)} for g in instances]
        for name, instances in groups.items()
    }


def test_every_definition_loads_compiles_and_round_trips_empty() -> None:
    ids = known_model_ids()
    assert {1, 101, 120, 160, 705, 706, 804} <= set(ids)
    for model_id in ids:
        model = load_model(model_id)
        regs = encode_model(model, {})
        decoded = decode_model(model, 40002, regs[2:])
        assert regs[:2] == [model_id, len(regs) - 2]
        assert decoded.errors == [] and decoded.warnings == [] and not decoded.missing


def test_unknown_model() -> None:
    with pytest.raises(UnknownModelError, match="64999") as info:
        load_model(64999)
    assert isinstance(info.value, KeyError)


def test_mppt_modules_round_trip() -> None:
    model = load_model(160)
    modules = [
        {"ID": i, "IDStr": f"string {i}", "DCA": 1.25 * i, "DCV": 330.5, "DCW": 412.0 * i,
         "DCWH": 10_000 * i, "Tms": 99, "Tmp": -4, "DCSt": 4, "DCEvt": 0}
        for i in range(1, 5)
    ]  # fmt: skip
    top = {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 1, "Evt": 0, "N": 4, "TmsPer": 60}
    regs = encode_model(model, top, {"module": modules})
    assert regs[1] == 8 + 4 * 20  # L: fixed part + N * module size
    decoded = decode_model(model, 40100, regs[2:])
    assert decoded.length == regs[1] and decoded.errors == []
    assert {k: decoded.values[k] for k in top} == top
    assert as_data(decoded.groups) == {"module": modules}


def test_volt_var_curves_round_trip() -> None:
    model = load_model(705)
    curves = [
        {"ActPt": 3, "DeptRef": 1, "Pri": 1, "VRef": 1.0, "VRefAuto": 1.0, "VRefAutoEna": 0,
         "VRefAutoTms": 300, "RspTms": 10, "ReadOnly": 1,
         "Pt": [{"V": 92.5, "Var": 30.0}, {"V": 100.0, "Var": 0.0}, {"V": 107.5, "Var": -30.0}]}
        for _ in range(2)
    ]  # fmt: skip
    top = {"Ena": 1, "V_SF": -1, "DeptRef_SF": -1, "RspTms_SF": 0}
    regs = encode_model(model, top, {"Crv": curves})
    decoded = decode_model(model, 40000, regs[2:])
    assert decoded.values["NCrv"] == 2 and decoded.values["NPt"] == 3  # inferred counts
    assert as_data(decoded.groups) == {"Crv": curves}
    # Fixed part + NCrv * (curve fixed part + NPt * point size).
    crv = model.group.group("Crv")
    assert decoded.length == model.group.fixed_size - 2 + 2 * (crv.fixed_size + 3 * 2)


def test_trip_curves_nested_in_single_groups_round_trip() -> None:
    model = load_model(707)
    points = [{"V": 0.5, "Tms": 1.0}, {"V": 0.88, "Tms": 2.0}]
    curve = {"ReadOnly": 0, **{kind: {"ActPt": 2, "Pt": points}
                               for kind in ("MustTrip", "MayTrip", "MomCess")}}  # fmt: skip
    regs = encode_model(model, {"V_SF": -2, "Tms_SF": 0}, {"Crv": [curve, curve]})
    decoded = decode_model(model, 40000, regs[2:])
    assert decoded.values["NCrvSet"] == 2 and decoded.values["NPt"] == 2
    for instance in decoded.groups["Crv"]:
        for kind in ("MustTrip", "MayTrip", "MomCess"):
            (part,) = instance.groups[kind]
            assert [p.values for p in part.groups["Pt"]] == points


def test_inconsistent_nested_counts_are_an_encode_error() -> None:
    curves = [{"Pt": [{"V": 1.0}]}, {"Pt": [{"V": 1.0}, {"V": 2.0}]}]
    with pytest.raises(SunSpecEncodeError, match="NPt"):
        encode_model(load_model(705), {}, {"Crv": curves})


def test_partial_last_repeat_decodes_the_whole_ones_and_warns() -> None:
    model = load_model(160)
    modules = [{"ID": 1, "DCW": 410.0, "DCV": 330.5}, {"ID": 2, "DCW": 395.0, "DCV": 329.0}]
    top = {"DCW_SF": 0, "DCV_SF": -1, "N": 2}
    body = encode_model(model, top, {"module": modules})[2:]
    decoded = decode_model(model, 40500, body[:-1])  # the second module lacks a register
    assert decoded.length == 47 and decoded.errors == []
    (first,) = decoded.groups["module"]
    assert (first.values["ID"], first.values["DCW"], first.values["DCV"]) == (1, 410.0, 330.5)
    assert decoded.values["N"] == 2 and decoded.missing == frozenset()
    (warning,) = decoded.warnings
    assert isinstance(warning, ModelLengthError)
    assert str(warning) == (
        "model 160 (mppt) at 40500: L=47: the 39 registers for group module hold 1 instance "
        "of 20 registers and 19 more: the partial instance is ignored"
    )


def test_fixed_part_shorter_than_the_definition_leaves_no_repeats() -> None:
    model = load_model(160)
    body = encode_model(model, {"DCA_SF": -2, "DCV_SF": -1, "N": 1}, {"module": [{}]})[2:]
    decoded = decode_model(model, 40500, body[:4])  # the 4 scale factors, no Evt, N, TmsPer
    assert (decoded.values["DCA_SF"], decoded.values["DCV_SF"]) == (-2, -1)
    assert decoded.values["N"] is None and decoded.groups == {"module": []}
    assert decoded.missing == {"Evt", "N", "TmsPer"}
    assert "L=4 is shorter than the definition (8 registers)" in str(decoded.warnings[0])


def test_counted_groups_stop_where_the_length_ends() -> None:
    model705 = load_model(705)
    body = encode_model(model705, {}, {"Crv": [{"Pt": [{"V": 1.0}, {"V": 2.0}]}]})[2:]
    assert len(body) == 13 + 10 + 2 * 2  # fixed part + NCrv=1 curve of 10 + NPt=2 points of 2
    longer = decode_model(model705, 40000, [*body, 0])
    assert "L=28 is longer than the definition (27 registers): 1 registers beyond" in str(
        longer.warnings[0]
    )
    shorter = decode_model(model705, 40000, body[:-3])  # half of point 1, none of point 2
    (curve,) = shorter.groups["Crv"]
    assert [p.values for p in curve.groups["Pt"]] == [{"V": 1.0, "Var": None}]
    assert shorter.missing == {"Crv[1].Pt[1].Var"}
    assert "NPt=2, but L ends after 1 instance of Crv[1].Pt" in str(shorter.warnings[0])
    body[model705.group.point("NCrv").offset - 2] = 500  # garbage count
    garbage = decode_model(model705, 40000, body)
    assert len(garbage.groups["Crv"]) == 1 and garbage.errors == []
    assert "NCrv=500, but L ends after 1 instance of Crv" in str(garbage.warnings[0])


def test_legacy_common_model_without_pad() -> None:
    model = load_model(1)
    body = encode_model(model, {"Mn": "SMA", "DA": 3})[2:]
    decoded = decode_model(model, 40002, body[:65])
    assert decoded.length == 65 and decoded.values["Mn"] == "SMA" and decoded.values["DA"] == 3
    assert decoded.warnings == [] and decoded.missing == frozenset()  # only the pad is cut


def test_scale_factor_out_of_range_nulls_its_points_only() -> None:
    model = load_model(101)
    body = encode_model(model, {"W": 970, "W_SF": 1, "A": 4.1, "A_SF": -1, "AphA": 4.1})[2:]
    body[model.group.point("A_SF").offset - 2] = 11
    decoded = decode_model(model, 40185, body)
    assert decoded.values["W"] == 970
    assert decoded.values["A"] is None and decoded.values["AphA"] is None
    (error,) = decoded.errors
    assert isinstance(error, ScaleFactorError)
    assert "model 101" in str(error) and "40185" in str(error) and "A_SF=11" in str(error)
    assert "A, AphA" in str(error)


def test_unimplemented_scale_factor_gives_none() -> None:
    model = load_model(101)
    body = encode_model(model, {"W": 970, "W_SF": 0})[2:]
    body[model.group.point("W_SF").offset - 2] = 0x8000
    decoded = decode_model(model, 0, body)
    assert decoded.values["W"] is None and decoded.values["W_SF"] is None
    assert decoded.errors == []


def test_unreadable_registers_null_the_points_they_cover() -> None:
    model = load_model(101)
    body: list[int | None] = list(encode_model(model, {"W": 970, "WH": 123456, "W_SF": 0})[2:])
    wh = model.group.point("WH").offset - 2
    body[wh + 1] = None
    decoded = decode_model(model, 0, body)
    assert decoded.values["WH"] is None and decoded.values["W"] == 970
    assert any("unreadable" in str(e) for e in decoded.errors)


def test_garbage_registers_never_raise_unexpectedly() -> None:
    rng = random.Random(7)
    for model_id in (1, 101, 103, 120, 121, 122, 123, 124, 160, 705, 706, 711, 712, 802):
        model = load_model(model_id)
        size = len(encode_model(model, {})) - 2
        for _ in range(20):
            body = [rng.choice((0, 0xFFFF, 0x8000, rng.randrange(0x10000))) for _ in range(size)]
            try:
                decoded = decode_model(model, 40000, body)
            except SunSpecDecodeError:
                continue  # a garbage count that does not fit L: a clear, expected error
            assert all(isinstance(e, SunSpecDecodeError) for e in decoded.errors)
    with pytest.raises(SunSpecDecodeError, match=r"0\.\.65535"):
        decode_model(load_model(101), 40000, [-1] * 50)


def test_encode_errors_name_the_point() -> None:
    model = load_model(101)
    with pytest.raises(SunSpecEncodeError, match=r"model 101 point W: .*uint16|int16"):
        encode_model(model, {"W": 10**6, "W_SF": 0})
    with pytest.raises(SunSpecEncodeError, match="W_SF is not implemented"):
        encode_model(model, {"W": 100, "W_SF": None})


def test_point_address() -> None:
    model = load_model(123)
    address, pdef = point_address(model, 40343, "WMaxLimPct")
    assert pdef.type == "uint16" and pdef.sf == "WMaxLimPct_SF" and pdef.access == "RW"
    assert address == 40343 + 2 + 3  # after ID, L, Conn_WinTms, Conn_RvrtTms, Conn
    with pytest.raises(KeyError, match="Nope"):
        point_address(model, 40343, "Nope")


def test_count_zero_group_must_end_the_model() -> None:
    from dataclasses import replace

    from adapters.sunspec.codec import compile_group

    top = load_model(160).group
    broken = replace(top, groups=(*top.groups, replace(top.groups[0], name="tail", count=None)))
    with pytest.raises(ModelDefinitionError, match="count-0"):
        compile_group(broken)
