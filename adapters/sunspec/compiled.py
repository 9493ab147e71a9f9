"""Model decoders generated per layout: a whole model straight from the bytes of an answer.

``decode.decode_model`` walks a model's compiled :class:`~adapters.sunspec.codec.GroupPlan`
at run time: it packs the registers into bytes, unpacks each group instance, maps names to
values, filters sentinels and scales in loops over the plan. For the layouts a poll reads
(a model with a fixed size whose length L is the definition's) all of that is known before
the first poll, so :func:`compiled_decoder` writes it out once as Python source, one line per
point: one ``unpack_from`` over the answer's bytes from the model's ID register, the sentinel
test and the scale factor of each point inline, the values dict as one literal.

A generated decoder gives exactly what ``decode_model`` gives. Whatever it does not handle
itself it hands back to ``decode_model`` by returning None: a header that no longer matches
(the caller raises ChainChangedError), a scale factor outside -10..10 (``decode_model``
names it in the model's errors). Layouts with repeats that depend on a count point or on L,
or an L other than the definition's, get no generated decoder (``compiled_decoder`` returns
None) and are always decoded by ``decode_model``.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.sunspec.codec import MAX_SF, NO_SENTINEL, GroupPlan, type_info
from adapters.sunspec.decode import DecodedGroup, DecodedModel, model_plan
from adapters.sunspec.models import ModelDef, UnknownModelError, load_model

__all__ = ["ModelDecoder", "compiled_decoder", "points_decoder"]

#: ``decoder(data, offset, address)``: the model whose ID register is at byte ``offset`` of
#: ``data`` (big-endian registers), located at register ``address``; None when the caller
#: must use ``decode_model`` (see the module docstring).
ModelDecoder = Callable[[bytes, int, int], DecodedModel | None]

#: Generated decoders kept, by (model id, L): a fleet has a few layouts.
CACHED_LAYOUTS = 256

_POW10 = tuple(10**n for n in range(MAX_SF + 1))


@functools.lru_cache(maxsize=CACHED_LAYOUTS)
def compiled_decoder(model_id: int, length: int) -> ModelDecoder | None:
    """The generated decoder of model ``model_id`` with length ``length``; None if the
    layout has none (unknown model, L not the definition's, repeats counted at run time)."""
    try:
        model = load_model(model_id)
    except UnknownModelError:
        return None
    return _generate(model, length)


@dataclass
class _Source:
    """The generated function's pieces: struct fields, body lines and the names it uses."""

    formats: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    scaled_vars: set[str] = field(default_factory=set)
    sf_vars: set[str] = field(default_factory=set)
    env: dict[str, Any] = field(default_factory=dict)

    def constant(self, value: Any) -> str:
        name = f"_k{len(self.env)}"
        self.env[name] = value
        return name


class _Unsupported(Exception):
    """The layout is left to decode_model."""


def _generate(model: ModelDef, length: int) -> ModelDecoder | None:
    plan = model_plan(model)
    if plan.static_size is None or plan.static_size != length + 2:
        return None
    src = _Source()
    try:
        values, groups = _instance(plan, src, ())
    except _Unsupported:
        return None
    if src.sf_vars & src.scaled_vars:
        return None  # a scaled scale factor: the order of scaling would matter
    fields = ", ".join(f"v{i}" for i in range(len(src.formats)))
    src.env.update(
        _S=struct.Struct(">" + "".join(src.formats)),
        _W=struct.Struct(f">{length}H"),
        _P=_POW10,
        _DM=DecodedModel,
        _DG=DecodedGroup,
        _ID=model.id,
        _NAME=model.name,
        _L=length,
    )
    assert src.env["_S"].size == 2 * (length + 2)
    lines = [
        "def decode(data, off, address):",
        f"    ({fields},) = _S.unpack_from(data, off)",
        "    if v0 != _ID or v1 != _L:",
        "        return None",
        *(f"    {line}" for line in src.lines),
        f"    return _DM(_ID, _NAME, address, _L, {values}, {groups}, "
        "list(_W.unpack_from(data, off + 4)), [], [], frozenset())",
    ]
    namespace = dict(src.env)
    # Source built above from the definition; its name shows in tracebacks and profiles.
    code = compile("\n".join(lines), f"<sunspec model {model.id} L={length}>", "exec")
    exec(code, namespace)
    decoder: ModelDecoder = namespace["decode"]
    decoder.__qualname__ = decoder.__name__ = f"decode_model_{model.id}_L{length}"
    return decoder


def _instance(
    plan: GroupPlan, src: _Source, scopes: tuple[dict[str, tuple[str, str]], ...]
) -> tuple[str, str]:
    """Lines for one group instance; returns the source of its values dict and its groups
    dict. ``scopes`` map the point names of the enclosing instances to (variable, type)."""
    if {name for name, _ in plan.converts} & {ref.point for ref in plan.scaled}:
        raise _Unsupported  # a converted value that is scaled too
    own: dict[str, tuple[str, str]] = {}
    for pdef in plan.gdef.points:
        info = type_info(pdef.type)
        var = f"v{len(src.formats)}"
        src.formats.append(info.fmt if info.fmt is not None else f"{2 * pdef.size}s")
        own[pdef.name] = (var, pdef.type)
        if info.sentinel is not NO_SENTINEL:
            src.lines.append(f"if {var} == {src.constant(info.sentinel)}: {var} = None")
        if info.convert is not None:
            src.lines.append(f"{var} = {src.constant(info.convert)}({var})")
    inner = (*scopes, own)
    by_sf: dict[str, list[str]] = {}  # scale factor variable -> the points it scales
    for ref in plan.scaled:
        var = own[ref.point][0]
        src.scaled_vars.add(var)
        if ref.name is None:
            if not -MAX_SF <= ref.literal <= MAX_SF:
                raise _Unsupported
            src.lines.append(f"if {var} is not None: {var} = {_scaled(var, ref.literal)}")
            continue
        sf, sf_type = inner[-1 - ref.depth][ref.name]
        sf_info = type_info(sf_type)
        if sf_info.fmt not in ("h", "H") or sf_info.convert is not None:
            raise _Unsupported  # an exponent that is not a plain 16-bit integer
        by_sf.setdefault(sf, []).append(var)
    for sf, points in by_sf.items():
        src.sf_vars.add(sf)
        src.lines += _scale_block(sf, points)
    values = "{" + ", ".join(f"{name!r}: {var}" for name, (var, _) in own.items()) + "}"
    groups = []
    for child in plan.children:
        count = 1 if child.gdef.count is None else child.gdef.count
        if not isinstance(count, int) or count < 1:
            raise _Unsupported
        instances = []
        for _ in range(count):
            vals, grps = _instance(child, src, inner)
            instances.append(f"_DG({child.gdef.name!r}, {vals}, {grps})")
        groups.append(f"{child.gdef.name!r}: [{', '.join(instances)}]")
    return values, "{" + ", ".join(groups) + "}"


def _scale_block(sf: str, points: list[str]) -> list[str]:
    """Scale ``points`` by the exponent in variable ``sf``, as ``codec.scale`` does (an
    exact power of ten, dividing for negative exponents); an exponent that is not
    implemented makes them None, one outside -10..10 hands the model to decode_model (it
    names the scale factor in the model's errors)."""
    lines = [f"if {sf} is None:", *(f"    {p} = None" for p in points)]
    lines.append(f"elif {sf} < 0:")
    lines.append(f"    if {sf} < {-MAX_SF}: return None")
    lines.append(f"    _d = _P[-{sf}]")
    lines += [f"    if {p} is not None: {p} = {p} / _d" for p in points]
    lines.append(f"elif {sf} > 0:")
    lines.append(f"    if {sf} > {MAX_SF}: return None")
    lines.append(f"    _m = _P[{sf}]")
    lines += [f"    if {p} is not None: {p} = {p} * _m" for p in points]
    return lines


def _scaled(var: str, sf: int) -> str:
    if sf == 0:
        return var
    return f"{var} * {10**sf}" if sf > 0 else f"{var} / {10**-sf}"


@functools.lru_cache(maxsize=CACHED_LAYOUTS)
def points_decoder(model_id: int, length: int, names: frozenset[str]) -> ModelDecoder | None:
    """A generated decoder of model ``model_id`` with length ``length`` that decodes the
    points ``names`` alone: the model it gives has the registers of the whole body in
    ``raw`` but only ``names`` in ``values``, each as ``decode_model`` decodes it (what a
    write's read-back compares and the next write takes). It hands the model back to
    ``decode_model`` (returns None) wherever the whole decoder would, also for a scale
    factor outside -10..10 that scales none of ``names``, so a read-back fails alike.

    None (no such decoder) for a layout the whole decoder does not handle, a model with
    repeating groups, a point of ``names`` not in the model, or a point type that needs a
    conversion outside ``names`` (it could fail where ``decode_model`` would say so)."""
    try:
        model = load_model(model_id)
    except UnknownModelError:
        return None
    plan = model_plan(model)
    if compiled_decoder(model_id, length) is None or plan.children:
        return None
    points = {p.name: p for p in plan.gdef.points}
    if not names <= points.keys():
        return None
    if any(name not in names for name, _ in plan.converts):
        return None
    sfs = {ref.name for ref in plan.scaled if ref.name is not None}
    wanted = names | sfs | {"ID", "L"}
    formats: list[str] = []
    lines: list[str] = []
    var: dict[str, str] = {}
    env: dict[str, Any] = {}
    for pdef in plan.gdef.points:
        info = type_info(pdef.type)
        fmt = info.fmt if info.fmt is not None else f"{2 * pdef.size}s"
        if pdef.name not in wanted:
            formats.append(f"{struct.calcsize('>' + fmt)}x")  # skipped: pad bytes
            continue
        v = var[pdef.name] = f"v{len(var)}"
        formats.append(fmt)
        if info.sentinel is not NO_SENTINEL:
            env[f"_k{v}"] = info.sentinel
            lines.append(f"if {v} == _k{v}: {v} = None")
        if info.convert is not None:
            env[f"_c{v}"] = info.convert
            lines.append(f"{v} = _c{v}({v})")
    for sf in sorted(sfs - names):  # checked, as the whole decoder checks it, not kept
        lines.append(f"if {var[sf]} is not None and not -{MAX_SF} <= {var[sf]} <= {MAX_SF}:")
        lines.append("    return None")
    by_sf: dict[str, list[str]] = {}
    for ref in plan.scaled:
        if ref.point not in names:
            continue
        if ref.name is None:
            if not -MAX_SF <= ref.literal <= MAX_SF:
                return None
            v = var[ref.point]
            lines.append(f"if {v} is not None: {v} = {_scaled(v, ref.literal)}")
            continue
        by_sf.setdefault(var[ref.name], []).append(var[ref.point])
    for sf, scaled in by_sf.items():
        lines += _scale_block(sf, scaled)
    for sf in sorted(sfs & names):  # kept but scaling none of names: still checked
        if var[sf] not in by_sf:
            lines.append(f"if {var[sf]} is not None and not -{MAX_SF} <= {var[sf]} <= {MAX_SF}:")
            lines.append("    return None")
    env.update(
        _S=struct.Struct(">" + "".join(formats)),
        _W=struct.Struct(f">{length}H"),
        _P=_POW10,
        _DM=DecodedModel,
        _ID=model.id,
        _NAME=model.name,
        _L=length,
    )
    assert env["_S"].size == 2 * (length + 2)
    values = "{" + ", ".join(f"{p.name!r}: {var[p.name]}" for p in plan.gdef.points
                             if p.name in names) + "}"  # fmt: skip
    fields = ", ".join(var.values())
    source = [
        "def decode(data, off, address):",
        f"    ({fields},) = _S.unpack_from(data, off)",
        f"    if {var['ID']} != _ID or {var['L']} != _L:",
        "        return None",
        *(f"    {line}" for line in lines),
        f"    return _DM(_ID, _NAME, address, _L, {values}, {{}}, "
        "list(_W.unpack_from(data, off + 4)), [], [], frozenset())",
    ]
    namespace = dict(env)
    where = f"<sunspec model {model.id} L={length} points {','.join(sorted(names))}>"
    exec(compile("\n".join(source), where, "exec"), namespace)
    decoder: ModelDecoder = namespace["decode"]
    decoder.__qualname__ = decoder.__name__ = f"decode_points_{model.id}_L{length}"
    return decoder
