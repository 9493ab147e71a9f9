"""Encode and decode single SunSpec point values to and from 16-bit holding registers.

Registers are big-endian words; multi-register values are big-endian across registers
(the SunSpec convention). "Not implemented" sentinels decode to None. The per-type sentinels
follow pysunspec2's reference implementation, ``sunspec2/mb.py`` (``SUNS_UNIMPL_*`` and the
``is_impl_*``/``data_to_*`` functions), with these deliberate differences:

* ``pad`` always decodes to None (it carries no information; pysunspec2 returns the raw word);
* ``string`` is NUL-terminated as the SunSpec specification says: text after the first NUL is
  dropped (pysunspec2 keeps embedded NULs and only strips trailing ones), and an empty string
  is "not implemented" (None); invalid UTF-8 bytes are replaced, never raised;
* ``ipaddr`` decodes to dotted-quad text and ``ipv6addr`` to standard IPv6 text
  (pysunspec2 returns the integer and an 8-hex-digit-group string respectively);
* ``float32``/``float64``: any NaN is "not implemented", not only 0x7FC00000.

The tables built here (struct format, sentinel, converter per type) are reused by
``decode.py`` to precompile whole-group decoders.
"""

from __future__ import annotations

import ipaddress
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.sunspec.models import (
    TYPE_SIZES,
    GroupDef,
    ModelDefinitionError,
    PointDef,
    SunSpecDecodeError,
    SunSpecEncodeError,
)

__all__ = [
    "MAX_SF",
    "ScaleFactorError",
    "TypeInfo",
    "decode_value",
    "encode_value",
    "scale",
    "type_info",
    "unscale",
]

Value = int | float | str | None

MAX_SF = 10  # SunSpec limits scale factors to -10..10


class ScaleFactorError(SunSpecDecodeError):
    """A scale factor outside -10..10."""


class _NoSentinel:
    """Compares unequal to every register value: for types whose converter decides."""

    def __repr__(self) -> str:
        return "<no sentinel>"


NO_SENTINEL: Any = _NoSentinel()


def _text(raw: bytes) -> str | None:
    # NUL-terminated per the spec; an empty string is "not implemented".
    end = raw.find(b"\0")
    if end >= 0:
        raw = raw[:end]
    return raw.decode("utf-8", errors="replace") if raw else None


def _float(raw: float | None) -> float | None:
    return None if raw is None or raw != raw else raw


def _pad(_raw: Any) -> None:
    return None


def _ipv4(raw: int | None) -> str | None:
    return None if raw is None else str(ipaddress.IPv4Address(raw))


def _ipv6(raw: bytes) -> str | None:
    # mb.data_to_ipv6addr: all-zero is "not implemented".
    return str(ipaddress.IPv6Address(raw)) if any(raw) else None


def _eui48(raw: bytes) -> str | None:
    # mb.data_to_eui48 / is_impl_eui48: the MAC is the last 6 of 8 bytes; all-zero and
    # FF:FF:FF:FF:FF:FF are both "not implemented".
    if not any(raw) or raw[2:] == b"\xff" * 6:
        return None
    return ":".join(f"{b:02X}" for b in raw[2:])


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """How one point type sits in registers.

    ``fmt`` is a struct format without byte order (``None`` for strings, sized per point);
    ``sentinel`` is the raw "not implemented" value (compared with ==); ``convert`` maps the
    sentinel-filtered raw value to the decoded value (None when no conversion is needed).
    """

    fmt: str | None
    size: int | None
    sentinel: Any
    convert: Callable[[Any], Any] | None


def _info(fmt: str, sentinel: Any, convert: Callable[[Any], Any] | None = None) -> TypeInfo:
    return TypeInfo(fmt, struct.calcsize(">" + fmt) // 2, sentinel, convert)


# Sentinels as in sunspec2/mb.py SUNS_UNIMPL_*.
_TYPES: dict[str, TypeInfo] = {
    "int16": _info("h", -0x8000),
    "sunssf": _info("h", -0x8000),
    "uint16": _info("H", 0xFFFF),
    "count": _info("H", 0xFFFF),
    "enum16": _info("H", 0xFFFF),
    "bitfield16": _info("H", 0xFFFF),
    "acc16": _info("H", 0),
    "pad": _info("H", NO_SENTINEL, _pad),
    "int32": _info("i", -0x80000000),
    "uint32": _info("I", 0xFFFFFFFF),
    "enum32": _info("I", 0xFFFFFFFF),
    "bitfield32": _info("I", 0xFFFFFFFF),
    "acc32": _info("I", 0),
    "ipaddr": _info("I", 0, _ipv4),
    "int64": _info("q", -0x8000000000000000),
    "uint64": _info("Q", 0xFFFFFFFFFFFFFFFF),
    "bitfield64": _info("Q", 0xFFFFFFFFFFFFFFFF),
    "acc64": _info("Q", 0),
    "float32": _info("f", NO_SENTINEL, _float),
    "float64": _info("d", NO_SENTINEL, _float),
    "eui48": _info("8s", NO_SENTINEL, _eui48),
    "ipv6addr": _info("16s", NO_SENTINEL, _ipv6),
    "string": TypeInfo(None, None, NO_SENTINEL, _text),
}
assert all(_TYPES[t].size in (None, n) for t, n in TYPE_SIZES.items())

# Bit patterns written for None where packing a Python value would not give the sentinel.
_FLOAT_SENTINEL_BITS = {"float32": (">I", 0x7FC00000), "float64": (">Q", 0x7FF8000000000000)}


def type_info(ptype: str) -> TypeInfo:
    """The register layout of a point type; SunSpecDecodeError for an unknown type."""
    try:
        return _TYPES[ptype]
    except KeyError:
        raise SunSpecDecodeError(f"unknown SunSpec point type {ptype!r}") from None


def point_format(ptype: str, size: int) -> str:
    """Struct format (no byte order) for one point of ``size`` registers."""
    info = type_info(ptype)
    return info.fmt if info.fmt is not None else f"{2 * size}s"


def convert_raw(info: TypeInfo, raw: Any) -> Value:
    """Map one unpacked raw value to its decoded value (sentinel -> None)."""
    value = None if raw == info.sentinel else raw
    return info.convert(value) if info.convert is not None else value


def decode_value(ptype: str, regs: Sequence[int]) -> Value:
    """Decode one point's registers to its raw (unscaled) value; None if not implemented.

    ``regs`` must hold exactly the point's registers (0..65535 each).
    """
    info = type_info(ptype)
    if info.size is not None and len(regs) != info.size:
        raise SunSpecDecodeError(f"{ptype} takes {info.size} registers, got {len(regs)}")
    try:
        data = struct.pack(f">{len(regs)}H", *regs)
    except struct.error as exc:
        raise SunSpecDecodeError(f"{ptype}: register value out of 0..65535: {exc}") from exc
    (raw,) = struct.unpack(">" + point_format(ptype, len(regs)), data)
    return convert_raw(info, raw)


def encode_value(ptype: str, value: int | float | str | None, size: int) -> list[int]:
    """Encode a raw (unscaled) value into ``size`` registers; None -> the sentinel.

    Raises SunSpecEncodeError (a ValueError) naming the type when the value does not fit.
    A value equal to the type's sentinel (e.g. 0 for acc32) is encoded as is and reads back
    as None, as the specification defines.
    """
    info = type_info(ptype)
    if info.size is not None and size != info.size:
        raise SunSpecEncodeError(f"{ptype} takes {info.size} registers, not {size}")
    try:
        data = _encode_bytes(ptype, info, value, size)
    except (struct.error, OverflowError, TypeError, ValueError) as exc:
        raise SunSpecEncodeError(f"cannot encode {value!r} as {ptype}: {exc}") from exc
    return list(struct.unpack(f">{size}H", data))


def _encode_bytes(ptype: str, info: TypeInfo, value: Any, size: int) -> bytes:
    if ptype == "string":
        return _encode_text(value, size)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _sentinel_bytes(ptype, info)
    if ptype == "eui48":
        return b"\0\0" + bytes.fromhex(str(value).replace(":", "").replace("-", ""))
    if ptype == "ipv6addr":
        return ipaddress.IPv6Address(value).packed
    if ptype == "ipaddr" and isinstance(value, str):
        value = int(ipaddress.IPv4Address(value))
    assert info.fmt is not None
    if ptype in ("float32", "float64"):
        if isinstance(value, str | bytes | bool):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return struct.pack(">" + info.fmt, float(value))
    return struct.pack(">" + info.fmt, _as_int(value))


def _as_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {value!r}")


def _encode_text(value: Any, size: int) -> bytes:
    data = b"" if value is None else str(value).encode("utf-8")
    if len(data) > 2 * size:
        raise ValueError(f"{len(data)} bytes do not fit {size} registers")
    return data.ljust(2 * size, b"\0")


def _sentinel_bytes(ptype: str, info: TypeInfo) -> bytes:
    if ptype in _FLOAT_SENTINEL_BITS:
        fmt, bits = _FLOAT_SENTINEL_BITS[ptype]
        return struct.pack(fmt, bits)
    if ptype == "eui48":
        return b"\0\0" + b"\xff" * 6  # mb.create_unimpl_value('eui48')
    if ptype == "ipv6addr":
        return b"\0" * 16
    if ptype == "pad":
        return b"\0\0"  # mb.SUNS_UNIMPL_PAD
    assert info.fmt is not None
    return struct.pack(">" + info.fmt, info.sentinel)


def check_sf(sf: int) -> int:
    """Return ``sf`` if within -10..10, else raise ScaleFactorError."""
    if not -MAX_SF <= sf <= MAX_SF:
        raise ScaleFactorError(f"scale factor {sf} outside -{MAX_SF}..{MAX_SF}")
    return sf


_POW10: tuple[int, ...] = tuple(10**n for n in range(MAX_SF + 1))


def scale(raw: int | float | None, sf: int | None) -> int | float | None:
    """Engineering value ``raw * 10**sf``; None if either is None.

    Negative exponents divide by an exact power of ten (``2392 / 10`` is 239.2, whereas
    ``2392 * 0.1`` is 239.20000000000002). Raises ScaleFactorError outside -10..10.
    """
    if raw is None or sf is None:
        return None
    if sf >= 0:
        return raw * _POW10[check_sf(sf)] if sf else raw
    return raw / _POW10[-check_sf(sf)]


def unscale(value: int | float, sf: int | None) -> int | float:
    """Raw register value for an engineering value: ``round(value / 10**sf)``.

    ``sf`` None means unscaled. Float results are rounded to the nearest integer; use the
    result with ``encode_value`` of an integer type.
    """
    if sf is None or sf == 0:
        return round(value) if isinstance(value, float) else value
    if sf > 0:
        return round(value / _POW10[check_sf(sf)])
    return round(value * _POW10[-check_sf(sf)])


# ---------------------------------------------------------------------------------------------
# Precompiled group layouts: one struct per group instance, so a whole instance is unpacked by
# a single C call and only the few non-numeric points need per-point work.


@dataclass(frozen=True, slots=True)
class ScaleRef:
    """Where a scaled point finds its exponent.

    ``depth`` 0 is the point's own group instance, 1 its parent, ...; ``name`` is the sunssf
    point there, or None when ``literal`` holds the exponent itself.
    """

    point: str
    name: str | None
    depth: int
    literal: int


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """Decoder/encoder layout of one group instance and its child groups.

    ``static_size`` is the size of a whole instance including descendants when it does not
    depend on register values or the model length, else None. ``count_depth`` locates a
    named count point like ScaleRef.depth (-1 when the count is not a name).
    """

    gdef: GroupDef
    struct: struct.Struct
    size: int
    names: tuple[str, ...]
    sentinels: tuple[Any, ...]
    converts: tuple[tuple[str, Callable[[Any], Any]], ...]
    scaled: tuple[ScaleRef, ...]
    spans: tuple[tuple[str, int, int], ...]
    children: tuple[GroupPlan, ...]
    static_size: int | None
    count_depth: int


def compile_group(gdef: GroupDef, ancestors: tuple[GroupDef, ...] = ()) -> GroupPlan:
    """Build the layout of ``gdef``; ``ancestors`` are its enclosing groups, outermost first.

    Raises ModelDefinitionError for a scale factor or count that names no point in scope, or
    a count-0 group that is not the last child of the top-level group (its repeat count could
    not be derived from the model length).
    """
    infos = [type_info(p.type) for p in gdef.points]
    fmt = ">" + "".join(point_format(p.type, p.size) for p in gdef.points)
    scope = (*ancestors, gdef)
    children = tuple(compile_group(g, scope) for g in gdef.groups)
    _check_fill_groups(gdef, children, top=not ancestors)
    static: int | None = gdef.points_size
    for child in children:
        static = _add_static(static, child)
    return GroupPlan(
        gdef=gdef,
        struct=struct.Struct(fmt),
        size=gdef.points_size,
        names=tuple(p.name for p in gdef.points),
        sentinels=tuple(i.sentinel for i in infos),
        converts=tuple(
            (p.name, i.convert) for p, i in zip(gdef.points, infos, strict=True) if i.convert
        ),
        scaled=tuple(_scale_ref(p, scope) for p in gdef.points if p.sf is not None),
        spans=tuple((p.name, p.offset, p.size) for p in gdef.points),
        children=children,
        static_size=static,
        count_depth=_depth(gdef.count, ancestors) if isinstance(gdef.count, str) else -1,
    )


def _add_static(total: int | None, child: GroupPlan) -> int | None:
    count = child.gdef.count
    if total is None or child.static_size is None:
        return None
    if count is None:
        return total + child.static_size
    if isinstance(count, int) and count > 0:
        return total + count * child.static_size
    return None


def _check_fill_groups(gdef: GroupDef, children: tuple[GroupPlan, ...], top: bool) -> None:
    for i, child in enumerate(children):
        if child.gdef.count != 0:
            continue
        if not top or i != len(children) - 1 or child.static_size is None:
            raise ModelDefinitionError(
                f"group {gdef.name}/{child.gdef.name}: a count-0 group must be the last, "
                "fixed-size child of the top-level group"
            )


def _depth(name: str, scope: tuple[GroupDef, ...]) -> int:
    """How many levels up from the innermost group of ``scope`` the point ``name`` lives."""
    for depth, group in enumerate(reversed(scope)):
        if any(p.name == name for p in group.points):
            return depth
    raise ModelDefinitionError(f"point {name!r} not found in {'/'.join(g.name for g in scope)}")


def _scale_ref(point: PointDef, scope: tuple[GroupDef, ...]) -> ScaleRef:
    if isinstance(point.sf, int):
        return ScaleRef(point.name, None, 0, point.sf)
    assert point.sf is not None
    return ScaleRef(point.name, point.sf, _depth(point.sf, scope), 0)
