"""Decode a SunSpec model's registers into scaled values, and encode values into registers.

``decode_model`` is the reference decoder of every layout: each model is compiled once into a
GroupPlan (one struct for each group instance's own points, see codec.compile_group), so
decoding a flat model like 101 is one ``struct.unpack_from``, one dict comprehension for the
sentinels and a short loop for the scale factors. A poll reads the usual layouts with the
decoders generated from the same plans (``adapters.sunspec.compiled``), which give the same
result and hand everything unusual back to ``decode_model``.

Bad data never raises past one model: a scale factor outside -10..10 sets the points that use
it to None and records a ScaleFactorError in ``DecodedModel.errors``; only register values
outside 0..65535 make ``decode_model`` raise, and discovery.read_models turns that into an
error entry for that model alone.

A length L that differs from the definition is common on real devices and is not an error:
every point that fits inside L is decoded, points beyond L decode to None and are listed in
``DecodedModel.missing``, registers beyond the definition (vendor extensions) and a partial
last repeat of a repeating group are ignored, and one ModelLengthError describing the misfit
goes to ``DecodedModel.warnings`` (never to ``errors``: the model stays usable).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import eq
from typing import Any, cast

from adapters.sunspec.codec import (
    GroupPlan,
    ScaleFactorError,
    ScaleRef,
    compile_group,
    encode_value,
    scale,
    unscale,
)
from adapters.sunspec.models import (
    ModelDef,
    PointDef,
    SunSpecDecodeError,
    SunSpecEncodeError,
    SunSpecError,
)

__all__ = [
    "DecodedGroup",
    "DecodedModel",
    "ModelLengthError",
    "decode_model",
    "encode_model",
    "model_plan",
    "point_address",
]


class ModelLengthError(SunSpecDecodeError):
    """A model's length L does not fit its definition's fixed part plus whole repeats.

    Not raised by ``decode_model``: it decodes what fits and keeps this, describing the
    misfit, in ``DecodedModel.warnings``.
    """


#: Point names listed in a length warning before "and N more".
_NAMES_SHOWN = 8


@dataclass(slots=True)
class DecodedGroup:
    """One instance of a group: scaled point values and its own child groups by name."""

    name: str
    values: dict[str, Any]
    groups: dict[str, list[DecodedGroup]]

    def point(self, name: str) -> Any:
        """Scaled value of a point of this instance (None if not implemented)."""
        return self.values[name]


@dataclass(slots=True)
class DecodedModel:
    """A decoded model.

    ``address`` is the absolute register of the model's ID; ``length`` is L from its header;
    ``values`` holds the top-level points (scaled engineering values in the units of the
    definition, None when not implemented or unreadable); ``groups`` the child group instances
    by group name (a group that occurs once is a list of one); ``raw`` the L body registers
    (unreadable registers as 0); ``errors`` what went wrong without stopping the decode
    (scale factors out of range, unreadable registers, an unknown model). ``warnings`` says
    when L differs from the definition (at most one ModelLengthError; the values are still
    good) and ``missing`` names the points beyond L (``"Evt1"``, ``"module[3].DCW"``; pads
    left out), whose values are None.
    """

    id: int
    name: str
    address: int
    length: int
    values: dict[str, Any]
    groups: dict[str, list[DecodedGroup]]
    raw: list[int]
    errors: list[SunSpecError] = field(default_factory=list)
    warnings: list[SunSpecError] = field(default_factory=list)
    missing: frozenset[str] = frozenset()

    def point(self, name: str) -> Any:
        """Scaled value of a top-level point (None if not implemented)."""
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"model {self.id} ({self.name}) has no point {name!r}") from None

    @property
    def decoded(self) -> bool:
        """False for a model kept only as raw registers (unknown id, unusable registers)."""
        return bool(self.values)


_PLANS: dict[int, tuple[ModelDef, GroupPlan]] = {}


def model_plan(model: ModelDef) -> GroupPlan:
    """The compiled layout of ``model`` (compiled on first use, then cached)."""
    cached = _PLANS.get(model.id)
    if cached is not None and cached[0] is model:
        return cached[1]
    plan = compile_group(model.group)
    _PLANS[model.id] = (model, plan)
    return plan


@dataclass(slots=True)
class _Ctx:
    """Per-call decode state: where we are (for messages), holes, errors, what L cut off.

    ``end`` is L + 2 (offsets count from the ID register); ``missing`` collects the points
    beyond it, ``notes`` the repeats that did not fit, ``partial`` the registers of a partial
    last repeat of a count-0 group; ``cut`` is set when L ended a group counted by a point
    (then the definition's length for those counts is not known).
    """

    model: ModelDef
    address: int
    end: int
    holes: frozenset[int]
    errors: list[SunSpecError]
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    partial: int = 0
    cut: bool = False

    def where(self) -> str:
        return f"model {self.model.id} ({self.model.name}) at {self.address}"


def decode_model(model: ModelDef, address: int, body: Sequence[int | None]) -> DecodedModel:
    """Decode the L registers after a model's header.

    ``address`` is the absolute register of the model's ID (used in messages and kept in
    the result). A None in ``body`` marks a register the device refused to serve: points
    covering it decode to None. An L that differs from the definition decodes what fits (see
    the module docstring). Raises SunSpecDecodeError for register values outside 0..65535.
    """
    plan = model_plan(model)
    length = len(body)
    holes: frozenset[int] = frozenset()
    regs = cast(Sequence[int], body)
    if None in body:
        holes = frozenset(i + 2 for i, r in enumerate(body) if r is None)
        regs = [0 if r is None else r for r in body]
    ctx = _Ctx(model, address, length + 2, holes, [])
    buf = _pack(ctx, model.id, regs)
    values, groups, end = _decode_instance(plan, buf, 0, (), ctx, "")
    warnings: list[SunSpecError] = []
    if end != ctx.end or ctx.missing or ctx.notes:
        warning = _length_warning(ctx, end)
        if warning is not None:
            warnings.append(warning)
    if holes:
        ctx.errors.append(
            SunSpecDecodeError(f"{ctx.where()}: {len(holes)} unreadable registers, points None")
        )
    return DecodedModel(model.id, model.name, address, length, values, groups, list(regs),
                        ctx.errors, warnings, frozenset(ctx.missing))  # fmt: skip


def _length_warning(ctx: _Ctx, end: int) -> ModelLengthError | None:
    """One warning for an L that is not the definition's ``end - 2``; None if harmless.

    Harmless: only trailing pads cut off (model 1 with L=65 is common).
    """
    length, defined = ctx.end - 2, end - 2
    parts = list(ctx.notes)
    if ctx.missing:
        names = ", ".join(ctx.missing[:_NAMES_SHOWN])
        if len(ctx.missing) > _NAMES_SHOWN:
            names += f" and {len(ctx.missing) - _NAMES_SHOWN} more"
        parts.append(
            f"{len(ctx.missing)} point{'s' if len(ctx.missing) != 1 else ''} beyond L "
            f"missing (None): {names}"
        )
    if end < ctx.end and not ctx.partial:
        parts.append(f"{ctx.end - end} registers beyond the definition ignored")
    if not parts:
        return None
    if end > ctx.end and not ctx.cut:
        head = f"L={length} is shorter than the definition ({defined} registers)"
    elif end < ctx.end and not ctx.partial:
        head = f"L={length} is longer than the definition ({defined} registers)"
    else:
        head = f"L={length}"
    return ModelLengthError(f"{ctx.where()}: {head}: {'; '.join(parts)}")


def _pack(ctx: _Ctx, model_id: int, body: Sequence[int]) -> bytes:
    # ID and L are part of the buffer so PointDef offsets index it directly.
    try:
        return struct.pack(f">{len(body) + 2}H", model_id, len(body), *body)
    except struct.error as exc:
        raise SunSpecDecodeError(f"{ctx.where()}: register value not in 0..65535") from exc


def _decode_instance(
    plan: GroupPlan,
    buf: bytes,
    off: int,
    scopes: tuple[dict[str, Any], ...],
    ctx: _Ctx,
    path: str,
) -> tuple[dict[str, Any], dict[str, list[DecodedGroup]], int]:
    """Decode one group instance at register ``off``; return values, groups, next offset.

    An instance that L cuts off is decoded from zero-padded registers, then every point that
    does not fit entirely inside L is set to None and recorded in ``ctx.missing``.
    """
    short = off + plan.size > ctx.end
    if short:
        buf = buf.ljust((off + plan.size) * 2, b"\0")
    raw = plan.struct.unpack_from(buf, off * 2)
    # The hot loop of a poll, run in C: every point, then None for those at their sentinel.
    values = dict(zip(plan.names, raw, strict=True))
    for name in compress(plan.names, map(eq, raw, plan.sentinels)):
        values[name] = None
    for name, convert in plan.converts:
        values[name] = convert(values[name])
    if ctx.holes:
        _mask_holes(values, plan, off, ctx.holes)
    if short:
        _mask_beyond(values, plan, off, ctx, path)
    if plan.scaled:
        _apply_scale(values, plan, scopes, ctx, path)
    groups: dict[str, list[DecodedGroup]] = {}
    pos = off + plan.size
    if plan.children:
        inner = (*scopes, values)
        for child in plan.children:
            count = _instance_count(child, values, scopes, pos, ctx, path)
            instances = []
            for i in range(count):
                if pos >= ctx.end and isinstance(child.gdef.count, str):
                    # Instances counted by a point value stop where L ends: the count may
                    # be garbage, and nothing of these instances is on the device anyway.
                    ctx.cut = True
                    ctx.notes.append(
                        f"{child.gdef.count}={count}, but L ends after {_n_instances(i)} of "
                        f"{path}{child.gdef.name}"
                    )
                    break
                child_path = f"{path}{child.gdef.name}[{i + 1}]."
                vals, grps, pos = _decode_instance(child, buf, pos, inner, ctx, child_path)
                instances.append(DecodedGroup(child.gdef.name, vals, grps))
            groups[child.gdef.name] = instances
    return values, groups, pos


def _n_instances(n: int) -> str:
    return f"{n} instance{'' if n == 1 else 's'}"


def _mask_beyond(values: dict[str, Any], plan: GroupPlan, off: int, ctx: _Ctx, path: str) -> None:
    """Set the points of an instance at ``off`` that do not fit inside L to None."""
    room = ctx.end - off
    for pdef in plan.gdef.points:
        if pdef.offset + pdef.size > room:
            values[pdef.name] = None
            if pdef.type != "pad":
                ctx.missing.append(path + pdef.name)


def _mask_holes(values: dict[str, Any], plan: GroupPlan, off: int, holes: frozenset[int]) -> None:
    for name, start, size in plan.spans:
        if any(off + start + k in holes for k in range(size)):
            values[name] = None


def _apply_scale(
    values: dict[str, Any],
    plan: GroupPlan,
    scopes: tuple[dict[str, Any], ...],
    ctx: _Ctx,
    path: str,
) -> None:
    bad: dict[str, list[str]] = {}
    for ref in plan.scaled:
        raw = values[ref.point]
        if raw is None:
            continue
        if ref.name is None:
            sf = ref.literal
        else:
            sf = (values if ref.depth == 0 else scopes[-ref.depth])[ref.name]
            if sf is None:
                values[ref.point] = None
                continue
        try:
            values[ref.point] = scale(raw, sf)
        except ScaleFactorError:
            values[ref.point] = None
            bad.setdefault(f"{ref.name or 'literal'}={sf}", []).append(path + ref.point)
    for sf_text, points in bad.items():
        ctx.errors.append(
            ScaleFactorError(
                f"{ctx.where()}: scale factor {sf_text} outside -10..10; "
                f"{', '.join(points)} set to None"
            )
        )


def _instance_count(
    child: GroupPlan,
    values: dict[str, Any],
    scopes: tuple[dict[str, Any], ...],
    pos: int,
    ctx: _Ctx,
    path: str,
) -> int:
    """How many instances of ``child`` follow at ``pos``."""
    count = child.gdef.count
    name = f"{path}{child.gdef.name}"
    if count is None:
        return 1
    if isinstance(count, int) and count > 0:
        return count
    if count == 0:
        size = child.static_size
        assert size  # compile_group guarantees a fixed, non-empty instance
        n, rest = divmod(max(ctx.end - pos, 0), size)
        if rest:
            ctx.partial = rest
            ctx.notes.append(
                f"the {ctx.end - pos} registers for group {name} hold {_n_instances(n)} of "
                f"{size} registers and {rest} more: the partial instance is ignored"
            )
        return n
    assert isinstance(count, str)
    # A count point that is "not implemented" (or beyond L) means no instances; a count
    # larger than L allows stops where L ends (see _decode_instance).
    n = (values if child.count_depth == 0 else scopes[-child.count_depth])[count]
    return int(n or 0)


def point_address(model: ModelDef, model_address: int, point: str) -> tuple[int, PointDef]:
    """Absolute register and definition of a top-level point, for writes.

    ``model_address`` is the register of the model's ID. KeyError if the point is unknown.
    """
    pdef = model.group.point(point)
    return model_address + pdef.offset, pdef


def encode_model(
    model: ModelDef,
    values: Mapping[str, Any],
    groups: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> list[int]:
    """Registers of a whole model: header (ID, L) then body.

    ``values`` are the top-level points: engineering (scaled) values for points with a scale
    factor, divided by 10**sf using the sunssf values found in ``values`` or an enclosing
    group; raw values for the others. Missing points get the not-implemented sentinel, missing
    sunssf points 0. ``groups`` maps a child group name to its instances; an instance mapping
    holds its points and, by name, its own child group instances. A named count point left
    out (e.g. 705's NCrv, NPt) is set from the number of instances given. ID and L are always
    computed. Raises SunSpecEncodeError naming the point for values that do not fit.
    """
    plan = model_plan(model)
    top: dict[str, Any] = {**values, **(groups or {}), "ID": model.id, "L": 0}
    regs = _encode_instance(plan, top, (), f"model {model.id} point ")
    regs[1] = len(regs) - 2
    return regs


def _encode_instance(
    plan: GroupPlan, mapping: Mapping[str, Any], scopes: tuple[dict[str, Any], ...], where: str
) -> list[int]:
    resolved = {name: mapping.get(name) for name in plan.names}
    for pdef in plan.gdef.points:
        if pdef.type == "sunssf" and pdef.name not in mapping:
            resolved[pdef.name] = 0
    _infer_counts(plan, mapping, resolved, where)
    refs = {ref.point: ref for ref in plan.scaled}
    regs: list[int] = []
    for pdef in plan.gdef.points:
        value = resolved[pdef.name]
        ref = refs.get(pdef.name)
        try:
            if ref is not None and value is not None:
                value = _unscale_point(pdef, value, ref, resolved, scopes)
            regs += encode_value(pdef.type, value, pdef.size)
        except SunSpecError as exc:
            raise SunSpecEncodeError(f"{where}{pdef.name}: {exc}") from exc
    inner = (*scopes, resolved)
    for child in plan.children:
        name = child.gdef.name
        items = _instances(child, mapping.get(name), resolved, scopes, f"{where}{name}")
        for i, item in enumerate(items):
            regs += _encode_instance(child, item, inner, f"{where}{name}[{i + 1}].")
    return regs


def _unscale_point(
    pdef: PointDef,
    value: Any,
    ref: ScaleRef,
    resolved: dict[str, Any],
    scopes: tuple[dict[str, Any], ...],
) -> Any:
    if ref.name is None:
        sf = ref.literal
    else:
        sf = (resolved if ref.depth == 0 else scopes[-ref.depth])[ref.name]
    if sf is None:
        raise SunSpecEncodeError(f"scale factor {ref.name} is not implemented (None)")
    if pdef.type in ("float32", "float64"):
        return value / 10**sf if sf >= 0 else value * 10**-sf
    return unscale(value, sf)


def _as_list(raw: Any) -> list[Mapping[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        return [raw]
    return list(raw)


def _infer_counts(
    plan: GroupPlan, mapping: Mapping[str, Any], resolved: dict[str, Any], where: str
) -> None:
    """Fill named count points of this instance that were left out from the instances given."""
    found: dict[str, set[int]] = {}

    def collect(plan: GroupPlan, mapping: Mapping[str, Any]) -> None:
        for child in plan.children:
            items = _as_list(mapping.get(child.gdef.name))
            if isinstance(child.gdef.count, str):
                lengths = found.setdefault(child.gdef.count, set())
                if child.gdef.name in mapping:
                    lengths.add(len(items))
            for item in items:
                collect(child, item)

    collect(plan, mapping)
    for name, lengths in found.items():
        if name in resolved and mapping.get(name) is None:
            if len(lengths) > 1:
                raise SunSpecEncodeError(
                    f"{where}{name}: groups counted by {name} have different lengths "
                    f"{sorted(lengths)}"
                )
            # No instances given: count 0 rather than "not implemented".
            resolved[name] = lengths.pop() if lengths else 0


def _instances(
    child: GroupPlan,
    raw: Any,
    resolved: dict[str, Any],
    scopes: tuple[dict[str, Any], ...],
    where: str,
) -> list[Mapping[str, Any]]:
    """The instances to encode for ``child``: as given, padded with empty ones to its count."""
    items = _as_list(raw)
    count = child.gdef.count
    if count == 0:
        return items
    if count is None:
        want = 1
    elif isinstance(count, int):
        want = count
    else:
        want = (resolved if child.count_depth == 0 else scopes[-child.count_depth])[count] or 0
    if items and len(items) != want:
        raise SunSpecEncodeError(f"{where}: {len(items)} instances given, count is {want}")
    return items or [{}] * want
