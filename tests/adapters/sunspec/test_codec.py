"""Point codec: round trips for every type, sentinels, range errors, and agreement with the
reference conversions in pysunspec2's ``sunspec2/mb.py``."""

from __future__ import annotations

import ipaddress
import math
import struct
from typing import Any

import pytest
import sunspec2.mb as mb
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.sunspec.codec import (
    ScaleFactorError,
    decode_value,
    encode_value,
    scale,
    type_info,
    unscale,
)
from adapters.sunspec.models import TYPE_SIZES, SunSpecDecodeError, SunSpecEncodeError

# The autouse leak-check fixtures are function scoped and harmless across examples.
SETTINGS = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])

INT_TYPES: dict[str, tuple[int, int, int]] = {  # type: (min, max, sentinel)
    "int16": (-(2**15), 2**15 - 1, -(2**15)),
    "sunssf": (-(2**15), 2**15 - 1, -(2**15)),
    "uint16": (0, 2**16 - 1, 2**16 - 1),
    "count": (0, 2**16 - 1, 2**16 - 1),
    "enum16": (0, 2**16 - 1, 2**16 - 1),
    "bitfield16": (0, 2**16 - 1, 2**16 - 1),
    "acc16": (0, 2**16 - 1, 0),
    "int32": (-(2**31), 2**31 - 1, -(2**31)),
    "uint32": (0, 2**32 - 1, 2**32 - 1),
    "enum32": (0, 2**32 - 1, 2**32 - 1),
    "bitfield32": (0, 2**32 - 1, 2**32 - 1),
    "acc32": (0, 2**32 - 1, 0),
    "int64": (-(2**63), 2**63 - 1, -(2**63)),
    "uint64": (0, 2**64 - 1, 2**64 - 1),
    "bitfield64": (0, 2**64 - 1, 2**64 - 1),
    "acc64": (0, 2**64 - 1, 0),
}
ALL_TYPES = [*sorted(TYPE_SIZES), "string"]


def regs_of(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


def bytes_of(regs: list[int]) -> bytes:
    return struct.pack(f">{len(regs)}H", *regs)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("ptype", sorted(INT_TYPES))
@SETTINGS
@given(data=st.data())
def test_integer_round_trip(ptype: str, data: st.DataObject) -> None:
    low, high, sentinel = INT_TYPES[ptype]
    value = data.draw(st.one_of(st.integers(low, high), st.sampled_from([low, high, sentinel])))
    regs = encode_value(ptype, value, TYPE_SIZES[ptype])
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert decode_value(ptype, regs) == (None if value == sentinel else value)


@pytest.mark.parametrize("ptype", sorted(INT_TYPES))
def test_integer_range_errors_name_the_type(ptype: str) -> None:
    low, high, _ = INT_TYPES[ptype]
    for bad in (low - 1, high + 1, 1.5, "12"):
        with pytest.raises(SunSpecEncodeError, match=ptype) as info:
            encode_value(ptype, bad, TYPE_SIZES[ptype])
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("ptype", ALL_TYPES)
def test_none_encodes_the_sentinel_and_decodes_to_none(ptype: str) -> None:
    size = TYPE_SIZES.get(ptype, 8)
    regs = encode_value(ptype, None, size)
    assert len(regs) == size
    assert decode_value(ptype, regs) is None


@pytest.mark.parametrize(("ptype", "width"), [("float32", 32), ("float64", 64)])
@SETTINGS
@given(data=st.data())
def test_float_round_trip_nan_is_none(ptype: str, width: int, data: st.DataObject) -> None:
    value = data.draw(st.floats(width=width, allow_nan=True, allow_infinity=True))  # type: ignore[arg-type]
    decoded = decode_value(ptype, encode_value(ptype, value, TYPE_SIZES[ptype]))
    if math.isnan(value):
        assert decoded is None
    else:
        assert decoded == value


def test_any_nan_pattern_is_not_implemented() -> None:
    for bits in (0x7FC00000, 0x7F800001, 0xFFC00000, 0x7FFFFFFF):
        assert decode_value("float32", [bits >> 16, bits & 0xFFFF]) is None
    with pytest.raises(SunSpecEncodeError, match="float32"):
        encode_value("float32", 1e39, 2)


@SETTINGS
@given(text=st.text(st.characters(blacklist_characters="\0", codec="utf-8"), max_size=16))
def test_string_round_trip(text: str) -> None:
    size = 8
    assume(len(text.encode()) <= 2 * size)
    regs = encode_value("string", text, size)
    assert len(regs) == size
    assert decode_value("string", regs) == (text or None)


def test_string_rules() -> None:
    assert decode_value("string", [0] * 4) is None  # all NUL: not implemented
    assert decode_value("string", regs_of(b"SMA\0junk")) == "SMA"  # NUL-terminated
    assert decode_value("string", regs_of(b"\xff\xfeab")) == "\ufffd\ufffdab"  # never raises
    with pytest.raises(SunSpecEncodeError, match="string"):
        encode_value("string", "x" * 9, 4)


@SETTINGS
@given(mac=st.binary(min_size=6, max_size=6))
def test_eui48_round_trip(mac: bytes) -> None:
    text = ":".join(f"{b:02X}" for b in mac)
    decoded = decode_value("eui48", encode_value("eui48", text, 4))
    assert decoded == (None if mac in (b"\0" * 6, b"\xff" * 6) else text)


@SETTINGS
@given(addr=st.integers(0, 2**32 - 1))
def test_ipaddr_round_trip(addr: int) -> None:
    text = str(ipaddress.IPv4Address(addr))
    assert decode_value("ipaddr", encode_value("ipaddr", text, 2)) == (text if addr else None)
    assert encode_value("ipaddr", addr, 2) == encode_value("ipaddr", text, 2)


@SETTINGS
@given(raw=st.binary(min_size=16, max_size=16))
def test_ipv6addr_round_trip(raw: bytes) -> None:
    text = str(ipaddress.IPv6Address(raw))
    assert decode_value("ipv6addr", encode_value("ipv6addr", text, 8)) == (
        text if any(raw) else None
    )


def test_pad_has_no_value() -> None:
    assert decode_value("pad", [0x8000]) is None
    assert encode_value("pad", None, 1) == [0]


def test_bad_register_input_is_a_decode_error() -> None:
    with pytest.raises(SunSpecDecodeError, match=r"0\.\.65535"):
        decode_value("uint16", [70000])
    with pytest.raises(SunSpecDecodeError, match="2 registers"):
        decode_value("uint32", [1])
    with pytest.raises(SunSpecDecodeError, match="unknown"):
        decode_value("uint128", [1])


# --- scale factors ---------------------------------------------------------------------------


@SETTINGS
@given(raw=st.integers(-(2**31), 2**31), sf=st.integers(-10, 10))
def test_scale_unscale_round_trip(raw: int, sf: int) -> None:
    value = scale(raw, sf)
    assert value == pytest.approx(raw * 10.0**sf, rel=1e-12)
    assert unscale(value, sf) == raw  # type: ignore[arg-type]


def test_scale_rules() -> None:
    assert scale(2392, -1) == 239.2  # exact division, not 239.20000000000002
    assert scale(97, 1) == 970 and isinstance(scale(97, 1), int)
    assert scale(None, -1) is None and scale(5, None) is None
    for sf in (-11, 11, -32767):
        with pytest.raises(ScaleFactorError, match=str(sf)):
            scale(1, sf)


# --- agreement with sunspec2.mb --------------------------------------------------------------


def mb_decode(ptype: str, data: bytes) -> Any:
    """pysunspec2's decode of one point, as its Point.set_mb does it."""
    info = mb.point_type_info[ptype]
    value = info.data_to(data)
    return value if info.is_impl(value) else None


def ours_in_mb_terms(ptype: str, value: Any) -> Any:
    """Our decoded value in pysunspec2's representation (documented differences)."""
    if value is None:
        return None
    if ptype == "ipaddr":
        return int(ipaddress.IPv4Address(value))
    if ptype == "ipv6addr":
        packed = ipaddress.IPv6Address(value).packed
        return ":".join(packed[i : i + 4].hex().upper() for i in range(0, 16, 4))
    return value


MB_TYPES = sorted(t for t in TYPE_SIZES if t in mb.point_type_info and t != "pad")


@pytest.mark.parametrize("ptype", MB_TYPES)
@SETTINGS
@given(data=st.data())
def test_decode_agrees_with_mb(ptype: str, data: st.DataObject) -> None:
    size = TYPE_SIZES[ptype]
    info = type_info(ptype)
    # Random words, plus the sentinel so the "not implemented" branch is always exercised.
    sentinel = encode_value(ptype, None, size)
    regs = data.draw(st.one_of(st.lists(st.integers(0, 0xFFFF), min_size=size, max_size=size),
                               st.just(sentinel)))  # fmt: skip
    ours = decode_value(ptype, regs)
    theirs = mb_decode(ptype, bytes_of(regs))
    if ptype == "float32" and theirs is None and ours is not None:
        # mb.is_impl_float32 compares the float with the integer 0x7FC00000.
        assert ours == float(mb.SUNS_UNIMPL_FLOAT32)
        return
    assert ours_in_mb_terms(ptype, ours) == theirs, (ptype, regs, info)


@SETTINGS
@given(text=st.text(st.characters(codec="ascii", blacklist_characters="\0"), max_size=16))
def test_string_decode_agrees_with_mb(text: str) -> None:
    data = text.encode().ljust(16, b"\0")
    assert decode_value("string", regs_of(data)) == mb_decode("string", data)


@pytest.mark.parametrize("ptype", MB_TYPES)
@SETTINGS
@given(data=st.data())
def test_encode_agrees_with_mb(ptype: str, data: st.DataObject) -> None:
    size = TYPE_SIZES[ptype]
    value = decode_value(ptype, data.draw(st.lists(st.integers(0, 0xFFFF), min_size=size,
                                                   max_size=size)))  # fmt: skip
    assume(value is not None)
    theirs = mb.point_type_info[ptype].to_data(ours_in_mb_terms(ptype, value), 2 * size)
    assert bytes_of(encode_value(ptype, value, size)) == theirs


@pytest.mark.parametrize("ptype", [*MB_TYPES, "string"])
def test_sentinel_encoding_agrees_with_mb(ptype: str) -> None:
    size = TYPE_SIZES.get(ptype, 8)
    theirs = mb.create_unimpl_value(ptype, 2 * size)
    assert bytes_of(encode_value(ptype, None, size)) == theirs
