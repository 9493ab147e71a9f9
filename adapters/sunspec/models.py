"""SunSpec model definitions, loaded from the official JSON files shipped in pysunspec2.

The register layouts come from ``sunspec2/models/json/model_<id>.json`` (the SunSpec
Alliance's machine-readable models) and are never typed by hand here. A definition is a tree:
a model has one top-level group; a group has points and child groups; a child group either
occurs once (``count`` None), a fixed number of times (``count`` int > 0), as many times as the
model length allows (``count`` 0), or as many times as a named point says (``count`` "NCrv").

The error types of the whole SunSpec layer live here too, so every module can raise them
without import cycles.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "GroupDef",
    "ModelDef",
    "ModelDefinitionError",
    "PointDef",
    "SunSpecDecodeError",
    "SunSpecEncodeError",
    "SunSpecError",
    "UnknownModelError",
    "bit_names",
    "known_model_ids",
    "load_model",
    "symbol_name",
]

# Register size of each point type; strings carry their size in the definition.
TYPE_SIZES: Mapping[str, int] = MappingProxyType(
    {
        "int16": 1, "uint16": 1, "count": 1, "acc16": 1, "enum16": 1, "bitfield16": 1,
        "pad": 1, "sunssf": 1,
        "int32": 2, "uint32": 2, "acc32": 2, "enum32": 2, "bitfield32": 2, "ipaddr": 2,
        "float32": 2,
        "int64": 4, "uint64": 4, "acc64": 4, "bitfield64": 4, "float64": 4, "eui48": 4,
        "ipv6addr": 8,
    }
)  # fmt: skip

_MODEL_FILE = re.compile(r"^model_(\d+)\.json$")


class SunSpecError(Exception):
    """Base of every error raised by the SunSpec layer."""


class UnknownModelError(SunSpecError, KeyError):
    """No definition exists for a model id (a vendor or newer model)."""

    def __init__(self, model_id: int) -> None:
        super().__init__(f"unknown SunSpec model id {model_id}: no definition in pysunspec2")
        self.model_id = model_id

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelDefinitionError(SunSpecError):
    """A definition file is malformed or uses a layout this decoder does not support."""


class SunSpecDecodeError(SunSpecError, ValueError):
    """Register data that cannot be decoded (bad length, scale factor, count, ...)."""


class SunSpecEncodeError(SunSpecError, ValueError):
    """A value that cannot be encoded into registers (out of range, wrong type, ...)."""


@dataclass(frozen=True, slots=True)
class PointDef:
    """One point of a group.

    ``offset`` is in registers from the start of its group instance (for the top-level group
    the ID register is offset 0). ``size`` is in registers. ``sf`` names a sunssf point of the
    same or an enclosing group, or is an integer exponent, or None (unscaled).
    """

    name: str
    type: str
    size: int
    offset: int
    sf: str | int | None
    units: str | None
    access: str
    mandatory: bool
    static: bool
    symbols: Mapping[str, int]
    label: str | None


@dataclass(frozen=True, slots=True)
class GroupDef:
    """A group: its own points, then its child groups in definition order.

    ``fixed_size`` is the register size of one instance without its repeating descendants:
    own points plus the fixed size of children that occur exactly once.
    """

    name: str
    points: tuple[PointDef, ...]
    groups: tuple[GroupDef, ...]
    count: int | str | None
    fixed_size: int

    @property
    def points_size(self) -> int:
        """Registers taken by this group's own points [registers]."""
        return sum(p.size for p in self.points)

    def point(self, name: str) -> PointDef:
        """The point called ``name`` of this group (KeyError if absent)."""
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"group {self.name!r} has no point {name!r}")

    def group(self, name: str) -> GroupDef:
        """The child group called ``name`` (KeyError if absent)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"group {self.name!r} has no child group {name!r}")


@dataclass(frozen=True, slots=True)
class ModelDef:
    """A SunSpec model: its id, name and top-level group (whose points include ID and L)."""

    id: int
    name: str
    label: str | None
    group: GroupDef


def _models_dir() -> Any:
    return importlib.resources.files("sunspec2").joinpath("models", "json")


@functools.cache
def known_model_ids() -> list[int]:
    """Ids of every model with a definition in the installed pysunspec2, ascending."""
    ids = []
    for entry in _models_dir().iterdir():
        match = _MODEL_FILE.match(entry.name)
        if match:
            ids.append(int(match.group(1)))
    return sorted(ids)


@functools.cache
def load_model(model_id: int) -> ModelDef:
    """The definition of ``model_id``; raises UnknownModelError if there is none.

    Cached: callers may treat the result as a shared, immutable object.
    """
    if model_id not in _known_id_set():
        raise UnknownModelError(model_id)
    path = _models_dir().joinpath(f"model_{model_id}.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        group = _parse_group(raw["group"], count=None)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelDefinitionError(f"model {model_id}: malformed definition: {exc}") from exc
    if raw.get("id") != model_id:
        raise ModelDefinitionError(f"model file for {model_id} declares id {raw.get('id')}")
    return ModelDef(id=model_id, name=group.name, label=raw["group"].get("label"), group=group)


@functools.cache
def _known_id_set() -> frozenset[int]:
    return frozenset(known_model_ids())


def _parse_group(raw: Mapping[str, Any], count: int | str | None) -> GroupDef:
    points = []
    offset = 0
    for raw_point in raw.get("points", ()):
        point = _parse_point(raw_point, offset)
        points.append(point)
        offset += point.size
    groups = tuple(_parse_group(g, _parse_count(g.get("count"))) for g in raw.get("groups", ()))
    fixed = offset + sum(g.fixed_size for g in groups if g.count is None)
    return GroupDef(
        name=raw["name"], points=tuple(points), groups=groups, count=count, fixed_size=fixed
    )


def _parse_count(raw: Any) -> int | str | None:
    # Definitions write counts as 0 (fill the model length) or as a point name.
    if raw is None or isinstance(raw, int):
        return raw
    text = str(raw)
    return int(text) if text.lstrip("-").isdigit() else text


def _parse_sf(raw: Any) -> str | int | None:
    if raw is None or isinstance(raw, int):
        return raw
    text = str(raw)
    return int(text) if text.lstrip("-").isdigit() else text


def _parse_point(raw: Mapping[str, Any], offset: int) -> PointDef:
    ptype = raw["type"]
    default_size = TYPE_SIZES.get(ptype)
    size = int(raw.get("size") or default_size or 0)
    if size <= 0 or (default_size is not None and size != default_size):
        raise ValueError(f"point {raw['name']}: bad size {raw.get('size')} for type {ptype}")
    symbols = {s["name"]: int(s["value"]) for s in raw.get("symbols", ())}
    return PointDef(
        name=raw["name"],
        type=ptype,
        size=size,
        offset=offset,
        sf=_parse_sf(raw.get("sf")),
        units=raw.get("units"),
        access=raw.get("access", "R"),
        mandatory=raw.get("mandatory") == "M",
        static=raw.get("static") == "S",
        symbols=MappingProxyType(symbols),
        label=raw.get("label"),
    )


def symbol_name(point: PointDef, value: int | None) -> str | None:
    """The symbol of an enum value, or None if the value is None or has no symbol."""
    if value is None:
        return None
    for name, symbol_value in point.symbols.items():
        if symbol_value == value:
            return name
    return None


def bit_names(point: PointDef, value: int | None) -> list[str]:
    """Symbols of the bits set in a bitfield value (symbol values are bit numbers).

    Bits without a symbol are reported as ``"bit<n>"`` so nothing set is hidden.
    """
    if value is None:
        return []
    by_bit = {bit: name for name, bit in point.symbols.items()}
    names = []
    bit = 0
    while value >> bit:
        if (value >> bit) & 1:
            names.append(by_bit.get(bit, f"bit{bit}"))
        bit += 1
    return names
