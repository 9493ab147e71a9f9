"""The generated model decoders equal decode_model and pysunspec2 on any register content.

Every model a driver reads (PV, battery and meter roles) is decoded from registers drawn by
hypothesis: random words with sentinels, scale factors in and out of range and the words
around them weighted in. The generated decoder, the poll's way in (``decode_span``, from a
list and from the bridge's ``Registers``) and ``decode_model`` must give the same model;
pysunspec2 decoding the same bytes must give the same values (its documented differences
reconciled as in the pysunspec2 image tests).
"""

from __future__ import annotations

import functools
import struct

import pytest
import sunspec2.device as ss_device
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bridge.decoder import Registers
from adapters.devices.battery import VARIANTS
from adapters.devices.meter import METER_VARIANT
from adapters.devices.pv import PV_VARIANT
from adapters.sunspec.compiled import compiled_decoder
from adapters.sunspec.decode import DecodedModel, decode_model, encode_model
from adapters.sunspec.discovery import ModelLocation, decode_span
from adapters.sunspec.models import GroupDef, SunSpecDecodeError, load_model
from tests.adapters.sunspec.helpers import compare_group

#: Every model id a driver reads in a poll or at discovery.
POLLED = sorted(
    {
        i
        for variant in (PV_VARIANT, METER_VARIANT, *VARIANTS.values())
        for role in variant.roles
        for i in role.ids
    }
)
ADDRESS = 40_002

#: Register words that sit on a boundary of some point type (sentinels, signs, NaN, SF range).
EDGES = (0, 1, 0x7FFF, 0x8000, 0xFFFF, 0xFFF6, 0xFFF5, 10, 11, 0x7FC0, 0x7F80)
WORDS = st.one_of(st.sampled_from(EDGES), st.integers(0, 0xFFFF))
#: A scale factor register: mostly within -10..10, sometimes unimplemented or out of range.
SCALE = st.one_of(
    st.integers(-10, 10).map(lambda sf: sf & 0xFFFF), st.sampled_from((0x8000, 11, 0xFFF5))
)


@functools.cache
def _length(model_id: int) -> int:
    return len(encode_model(load_model(model_id), {})) - 2


def _spans(group: GroupDef, ptype: str, base: int = 0) -> list[tuple[int, int]]:
    """(body offset, size) of the points of type ``ptype`` in a model without repeats
    counted at run time."""
    out = [(base + p.offset - 2, p.size) for p in group.points if p.type == ptype]
    pos = base + group.points_size
    for child in group.groups:
        count = 1 if child.count is None else child.count
        assert isinstance(count, int)
        for _ in range(count):
            out += _spans(child, ptype, pos)
            pos += child.points_size
    return out


def _sf_offsets(group: GroupDef) -> list[int]:
    return [offset for offset, _ in _spans(group, "sunssf")]


#: Text as pysunspec2 can read it back: UTF-8, no NUL inside (it keeps embedded NULs where
#: the SunSpec specification, and we, end the string).
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126))


@st.composite
def bodies(draw: st.DrawFn, model_id: int, pysunspec2: bool = False) -> list[int]:
    """The L body registers of ``model_id``; scale factors drawn as scale factors. For
    ``pysunspec2`` the scale factors are within -10..10 and strings are readable text."""
    group = load_model(model_id).group
    body = draw(st.lists(WORDS, min_size=_length(model_id), max_size=_length(model_id)))
    sf = st.integers(-10, 10).map(lambda v: v & 0xFFFF) if pysunspec2 else SCALE
    for offset in _sf_offsets(group):
        body[offset] = draw(sf)
    if pysunspec2:
        for offset, size in _spans(group, "string"):
            text = draw(TEXT)[: 2 * size].encode()
            words = struct.unpack(f">{size}H", text.ljust(2 * size, b"\0"))
            body[offset : offset + size] = words
    return body


def _generic(model_id: int, body: list[int]) -> DecodedModel | None:
    try:
        return decode_model(load_model(model_id), ADDRESS, body)
    except SunSpecDecodeError:
        return None


def _same(a: DecodedModel, b: DecodedModel) -> None:
    assert (a.id, a.name, a.address, a.length) == (b.id, b.name, b.address, b.length)
    assert a.values == b.values
    assert a.groups == b.groups
    assert a.raw == b.raw
    assert [str(e) for e in a.errors] == [str(e) for e in b.errors]
    assert [str(w) for w in a.warnings] == [str(w) for w in b.warnings]
    assert a.missing == b.missing


def test_every_polled_model_has_a_generated_decoder() -> None:
    assert {101, 103, 113, 120, 123, 124, 203, 701, 704, 802} <= set(POLLED)
    for model_id in POLLED:
        assert compiled_decoder(model_id, _length(model_id)) is not None, model_id
    # A length other than the definition's, and an unknown model, are left to decode_model.
    assert compiled_decoder(103, _length(103) - 1) is None
    assert compiled_decoder(64_999, 10) is None


@pytest.mark.parametrize("model_id", POLLED)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_decoder_equals_decode_model(model_id: int, data: st.DataObject) -> None:
    body = data.draw(bodies(model_id))
    want = _generic(model_id, body)
    assert want is not None  # every word is in 0..65535: decode_model never raises here
    regs = [model_id, len(body), *body]
    raw = struct.pack(f">{len(regs)}H", *regs)
    fast = compiled_decoder(model_id, len(body))
    assert fast is not None
    got = fast(b"\0\0" + raw, 2, ADDRESS)
    if got is None:  # handed back: only for a scale factor outside -10..10
        sfs = [
            body[o] - 0x10000 if body[o] & 0x8000 else body[o]
            for o in _sf_offsets(load_model(model_id).group)
        ]
        assert any(sf != -0x8000 and not -10 <= sf <= 10 for sf in sfs)
        assert all("outside -10..10" in str(e) for e in want.errors)
    else:
        _same(got, want)
    # The poll's way in, from a plain list and from the bridge's registers with their bytes.
    loc = ModelLocation(model_id, ADDRESS, len(body))
    _same(decode_span(loc, regs), want)
    _same(decode_span(loc, Registers(raw)), want)


@pytest.mark.parametrize("model_id", POLLED)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_decoder_equals_pysunspec2(model_id: int, data: st.DataObject) -> None:
    body = data.draw(bodies(model_id, pysunspec2=True))
    raw = struct.pack(f">{len(body) + 2}H", model_id, len(body), *body)
    fast = compiled_decoder(model_id, len(body))
    assert fast is not None
    ours = fast(raw, 0, ADDRESS)
    assert ours is not None and not ours.errors
    ref = ss_device.Model(model_id=model_id, model_len=len(body), data=raw)
    assert not ref.error_info, ref.error_info
    assert compare_group(ref, ours.values, ours.groups, f"{model_id}.") > 0


def test_header_that_moved_is_handed_back() -> None:
    body = encode_model(load_model(124), {})[2:]
    fast = compiled_decoder(124, len(body))
    assert fast is not None
    assert fast(struct.pack(f">{len(body) + 2}H", 123, len(body), *body), 0, ADDRESS) is None
