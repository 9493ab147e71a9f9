"""A write's read-back decoded for the points it needs equals the whole model on them.

``decode_span(loc, regs, points)`` (``compiled.points_decoder``) gives a model with only
``points`` in ``values``; on any register content drawn by hypothesis (sentinels, scale
factors in and out of range, the words around them) and at any length L (the definition's,
or shorter, with points beyond it), each of those points must be what ``decode_model`` of
the whole model gives, and the registers, errors, warnings and missing points the same. A
model the whole decode fails (a scale factor outside -10..10 anywhere in it) fails alike.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bridge.decoder import Registers
from adapters.controls import _KEPT_124, _KEPT_704_WSET, _PV_KEPT
from adapters.sunspec.compiled import points_decoder
from adapters.sunspec.decode import DecodedModel
from adapters.sunspec.discovery import ModelLocation, decode_span
from adapters.sunspec.models import load_model
from tests.adapters.sunspec.test_compiled import ADDRESS, _length, bodies

#: The point sets the writers keep of their read-backs, by model.
KEPT = [(123, _PV_KEPT["123"]), (704, _PV_KEPT["704"]), (124, _KEPT_124), (704, _KEPT_704_WSET)]


def _check(got: DecodedModel, whole: DecodedModel, points: frozenset[str]) -> None:
    assert (got.id, got.name, got.address, got.length) == (
        whole.id, whole.name, whole.address, whole.length
    )  # fmt: skip
    assert got.raw == whole.raw
    assert [str(e) for e in got.errors] == [str(e) for e in whole.errors]
    assert [str(w) for w in got.warnings] == [str(w) for w in whole.warnings]
    assert got.missing == whole.missing
    assert got.decoded == whole.decoded
    for name in points:
        assert got.values.get(name) == whole.values.get(name), name
    assert set(got.values) <= set(whole.values)


@pytest.mark.parametrize(("model_id", "points"), KEPT)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_points_equal_the_whole_model(
    model_id: int, points: frozenset[str], data: st.DataObject
) -> None:
    body = data.draw(bodies(model_id))
    # The definition's length mostly; sometimes shorter: points (or their scale factors)
    # beyond L, decoded by decode_model as the whole model is.
    cut = data.draw(st.one_of(st.just(0), st.integers(1, len(body) - 1)))
    body = body[: len(body) - cut]
    regs = [model_id, len(body), *body]
    loc = ModelLocation(model_id, ADDRESS, len(body))
    whole = decode_span(loc, regs)
    for given_regs in (regs, Registers(struct.pack(f">{len(regs)}H", *regs))):
        got = decode_span(loc, given_regs, points)
        _check(got, whole, points)
        if cut or whole.errors:
            assert got.values == whole.values  # decoded whole, as before


@pytest.mark.parametrize(("model_id", "points"), KEPT)
def test_a_generated_points_decoder_for_the_flat_control_models(
    model_id: int, points: frozenset[str]
) -> None:
    length = _length(model_id)
    assert points <= {p.name for p in load_model(model_id).group.points}
    found = points_decoder(model_id, length, points)
    # 704 has groups (its power factor settings): its read-back is decoded whole.
    assert (found is not None) == (model_id in (123, 124))
    # Not for another length, an unknown point or an unknown model.
    assert points_decoder(model_id, length - 1, points) is None
    assert points_decoder(model_id, length, points | {"NoSuchPoint"}) is None
    assert points_decoder(64_999, 10, points) is None


def test_only_the_points_are_decoded() -> None:
    length = _length(124)
    body = [0] * length
    regs = [124, length, *body]
    got = decode_span(ModelLocation(124, ADDRESS, length), regs, _KEPT_124)
    assert set(got.values) == _KEPT_124
