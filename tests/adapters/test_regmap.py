from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.regmap import (
    RegisterDef,
    RegisterMapError,
    decode_register,
    encode_register,
    load_map,
    parse_map,
)


def reg(type_: str, scale: float = 1.0, **kw: object) -> RegisterDef:
    return RegisterDef(
        channel="x",
        address=0,
        type=type_,
        scale=scale,
        unit="W",
        access="rw",
        table="holding",
        **kw,  # type: ignore[arg-type]
    )


def test_shipped_maps_load_and_read_in_one_request() -> None:
    hp = load_map("heat_pump")
    dc = load_map("datacentre_meter")
    assert hp.kind == "heat_pump" and dc.kind == "datacentre"
    assert hp.blocks("holding") == [(1000, 19)]
    assert dc.blocks("input") == [(0, 8)]
    assert hp.channel("el_setpoint_w").writable
    assert not hp.channel("th_power_w").writable
    for name in ("el_power_w", "th_power_w", "source_temp_c", "supply_temp_c"):
        hp.channel(name)
    for name in ("it_power_w", "waste_heat_temp_c", "flow_m3_per_h"):
        dc.channel(name)


def test_decode_a_block_gives_scaled_channels() -> None:
    hp = load_map("heat_pump")
    regs = [0] * 17
    regs[10:12] = [0x0001, 0x86A0]  # el_power_w = 100000
    regs[14] = 355  # source 35.5 degC
    regs[15] = (-12) & 0xFFFF  # supply -1.2 degC: signed
    values = hp.decode("holding", 1000, regs)
    assert values["el_power_w"] == 100000
    assert values["source_temp_c"] == pytest.approx(35.5)
    assert values["supply_temp_c"] == pytest.approx(-1.2)


@given(st.integers(-32768, 32767))
def test_int16_round_trip(raw: int) -> None:
    r = reg("int16", 0.1)
    assert decode_register(r, encode_register(r, raw * 0.1)) == pytest.approx(raw * 0.1)


@given(st.integers(0, 2**32 - 1), st.sampled_from(["big", "little"]))
def test_uint32_round_trip_both_word_orders(raw: int, order: str) -> None:
    r = reg("uint32")
    assert decode_register(r, encode_register(r, raw, order), order) == raw


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_float32_round_trip(value: float) -> None:
    r = reg("float32")
    assert decode_register(r, encode_register(r, value)) == value


def test_float_nan_decodes_to_none_and_cannot_be_written() -> None:
    r = reg("float32")
    assert decode_register(r, [0x7FC0, 0x0000]) is None
    with pytest.raises(RegisterMapError, match="not a finite number"):
        encode_register(r, math.nan)


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(RegisterMapError, match="does not fit a uint16"):
        encode_register(reg("uint16"), 70000)
    with pytest.raises(RegisterMapError, match="does not fit a int16"):
        encode_register(reg("int16", 0.1), 4000.0)
    with pytest.raises(RegisterMapError, match=r"outside 0..150000"):
        encode_register(reg("uint32", min=0, max=150000), 150001)


def test_bad_maps_name_the_register() -> None:
    with pytest.raises(RegisterMapError, match=r"registers\[0\] \(p\): missing 'address'"):
        parse_map("m", '[[registers]]\nchannel = "p"\ntype = "int16"\n')
    with pytest.raises(RegisterMapError, match=r"registers\[0\] \(p\): type must be one of"):
        parse_map("m", '[[registers]]\nchannel = "p"\naddress = 1\ntype = "int8"\n')
    overlap = (
        '[[registers]]\nchannel = "a"\naddress = 10\ntype = "int32"\n'
        '[[registers]]\nchannel = "b"\naddress = 11\ntype = "int16"\n'
    )
    with pytest.raises(RegisterMapError, match="a and b overlap"):
        parse_map("m", overlap)
    with pytest.raises(RegisterMapError, match="no register map named"):
        load_map("toaster")
