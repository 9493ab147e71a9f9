"""Register images of simulated devices, built from the same definitions the controller reads.

A SunSpec image is the "SunS" marker, then each model encoded with
``adapters.sunspec.decode.encode_model`` from the official definitions, then the end marker.
A register-map image (heat pump, data-centre meter) is encoded with the device's TOML map
(``adapters.regmap``). Either way the image is one contiguous list of registers starting at
``base``; each named value ("slot") knows its address, type and scale, so the physics writes
engineering values and the server hands out raw registers.

Slot keys: ``"<model>.<point>"`` for SunSpec (``"123.WMaxLimPct"``), ``"<model>.<group>[<n>].
<point>"`` inside a repeating group (``"160.module[2].DCW"``), the channel name for a map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.regmap import RegisterDef, RegisterMap, decode_register, encode_register
from adapters.sunspec.codec import decode_value, encode_value, scale, unscale
from adapters.sunspec.decode import encode_model
from adapters.sunspec.models import GroupDef, ModelDef, PointDef, load_model

SUNS_MARKER = (0x5375, 0x6E53)  # "SunS"
END_MARKER = (0xFFFF, 0)
#: SunSpec models whose body holds measurements (what a "garbage" fault scrambles).
MEASUREMENT_MODELS = frozenset({101, 102, 103, 111, 112, 113, 160, 201, 202, 203, 204, 701, 802})

# Integer ranges that stay clear of the "not implemented" sentinels; accumulators roll over.
_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-0x7FFF, 0x7FFF),
    "uint16": (0, 0xFFFE),
    "enum16": (0, 0xFFFE),
    "bitfield16": (0, 0xFFFE),
    "count": (0, 0xFFFE),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF),
    "uint32": (0, 0xFFFFFFFE),
    "enum32": (0, 0xFFFFFFFE),
    "bitfield32": (0, 0xFFFFFFFE),
    "int64": (-0x7FFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFF),
    "uint64": (0, 0xFFFFFFFFFFFFFFFE),
}
_ROLLOVER = {"acc16": 1 << 16, "acc32": 1 << 32, "acc64": 1 << 64}
# One-register types decoded inline (unsigned?) and their "not implemented" raw values, as
# adapters.sunspec.codec has them (tests/adapters/sim/test_images.py holds the two equal).
_ONE_REGISTER = {"uint16": True, "count": True, "enum16": True, "bitfield16": True,
                 "acc16": True, "int16": False, "sunssf": False}  # fmt: skip
_SENTINEL_16 = {"uint16": 0xFFFF, "count": 0xFFFF, "enum16": 0xFFFF, "bitfield16": 0xFFFF,
                "acc16": 0, "int16": -0x8000, "sunssf": -0x8000}  # fmt: skip


def pick_sf(max_abs: float, signed: bool = True, lowest: int = 0) -> int:
    """Smallest scale factor >= ``lowest`` at which ``max_abs`` fits a 16-bit register."""
    limit = 0x7FFF if signed else 0xFFFE
    sf = lowest
    while abs(max_abs) / 10.0**sf > limit and sf < 10:
        sf += 1
    return sf


class Slot(Protocol):
    """One named value of an image: ``size`` registers from ``address``."""

    @property
    def address(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def writable(self) -> bool: ...

    def encode(self, value: Any) -> list[int]: ...

    def decode(self, regs: Sequence[int]) -> Any: ...


@dataclass(frozen=True, slots=True)
class PointSlot:
    """A SunSpec point; ``sf`` is the exponent it was encoded with (None: unscaled)."""

    address: int
    size: int
    writable: bool
    ptype: str
    sf: int | None

    def encode(self, value: Any) -> list[int]:
        """Registers for an engineering value (None -> not implemented); saturates."""
        if value is None or isinstance(value, str) or self.ptype in ("float32", "float64"):
            if value is not None and self.sf and not isinstance(value, str):
                value = value / 10.0**self.sf
            return encode_value(self.ptype, value, self.size)
        raw = unscale(value, self.sf)
        if self.ptype in _ROLLOVER:
            raw = int(raw) % _ROLLOVER[self.ptype]
        elif self.ptype in _RANGES:
            lo, hi = _RANGES[self.ptype]
            raw = min(max(int(raw), lo), hi)
        return encode_value(self.ptype, raw, self.size)

    def decode(self, regs: Sequence[int]) -> Any:
        """Engineering value of the registers (None if not implemented)."""
        unsigned = _ONE_REGISTER.get(self.ptype)
        if unsigned is not None and len(regs) == 1:  # the usual control point, inline
            raw: Any = regs[0]
            if unsigned is False and raw >= 0x8000:
                raw -= 0x10000
            if raw == _SENTINEL_16[self.ptype]:
                return None
        else:
            raw = decode_value(self.ptype, regs)
        if self.sf is None or not isinstance(raw, int | float):
            return raw
        return scale(raw, self.sf)


@dataclass(frozen=True, slots=True)
class MapSlot:
    """A register of a TOML register map."""

    address: int
    size: int
    writable: bool
    reg: RegisterDef
    word_order: str

    def encode(self, value: Any) -> list[int]:
        """Registers for an engineering value, clamped into the register's range."""
        value = float(value)
        if self.reg.type != "float32":
            lo, hi = _map_range(self.reg)
            value = min(max(value, lo), hi)
        return encode_register(self.reg, value, self.word_order)

    def decode(self, regs: Sequence[int]) -> Any:
        return decode_register(self.reg, regs, self.word_order)


def _map_range(reg: RegisterDef) -> tuple[float, float]:
    bits = 16 * reg.size
    signed = reg.type.startswith("int")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    lo_v, hi_v = sorted((lo * reg.scale, hi * reg.scale))
    if reg.min is not None:
        lo_v = max(lo_v, reg.min)
    if reg.max is not None:
        hi_v = min(hi_v, reg.max)
    return lo_v, hi_v


@dataclass(slots=True)
class RegisterImage:
    """Registers ``base .. base + len(regs) - 1`` of one device and the slots within them.

    ``writable[i]`` says whether register ``base + i`` accepts writes; ``measurement`` lists
    (offset, count) spans that hold measurements.

    Staged values: while ``staging`` is true (a device publishing its physics state), ``set``
    only notes the value; it is encoded into ``regs`` when registers it lies in are needed:
    :meth:`flush` for a span about to be read or written, ``get``/``peek`` of that slot, or
    a later ``set`` of it outside staging (which replaces it). A read-back of a control model
    then encodes the few points published there, not the device's every measurement. What
    ``regs`` hold after a flush is what an eager ``set`` at publishing time would have left
    (tests/adapters/sim/test_images.py holds the two equal).
    """

    base: int
    regs: list[int]
    writable: list[bool]
    slots: dict[str, Slot]
    measurement: list[tuple[int, int]] = field(default_factory=list)
    _owner: list[str | None] = field(default_factory=list)
    #: key -> (value, registers) of the last ``set``: publishing the physics state after
    #: every write re-sets every slot, most of them (ratings, voltages, flags) unchanged.
    _encoded: dict[str, tuple[Any, list[int]]] = field(default_factory=dict)
    #: True while values are staged (see the class docstring).
    staging: bool = False
    #: key -> value staged and not encoded yet.
    _pending: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._owner = [None] * len(self.regs)
        for key, slot in self.slots.items():
            for i in range(slot.address - self.base, slot.address - self.base + slot.size):
                self._owner[i] = key

    @property
    def end(self) -> int:
        """First address after the image."""
        return self.base + len(self.regs)

    def set(self, key: str, value: Any) -> None:
        """Store an engineering value in slot ``key``.

        Encoding is skipped when the same value was set last and the registers still hold
        what it encoded to (a Modbus write in between changes them, so it is noticed).
        While ``staging``, the value is only noted (see the class docstring)."""
        if self.staging:
            self._pending[key] = value
            return
        if self._pending:
            self._pending.pop(key, None)  # this value replaces the staged one
        self._encode(key, value)

    def _encode(self, key: str, value: Any) -> None:
        slot = self.slots[key]
        off = slot.address - self.base
        end = off + slot.size
        last = self._encoded.get(key)
        if (
            last is not None
            and type(last[0]) is type(value)
            and last[0] == value
            and self.regs[off:end] == last[1]
        ):
            return
        regs = slot.encode(value)
        self.regs[off:end] = regs
        self._encoded[key] = (value, list(regs))

    def flush(self, offset: int = 0, count: int | None = None) -> None:
        """Encode the staged values of the slots that registers ``offset .. offset + count -
        1`` (offsets from ``base``; every register when ``count`` is None) touch."""
        pending = self._pending
        if not pending:
            return
        if count is None:
            keys = list(pending)
        else:
            end, base, slots = offset + count, self.base, self.slots
            keys = []
            for key in pending:
                slot = slots[key]
                start = slot.address - base
                if start < end and start + slot.size > offset:
                    keys.append(key)
        for key in keys:
            self._encode(key, pending.pop(key))

    def get(self, key: str) -> Any:
        """Engineering value of slot ``key``."""
        if key in self._pending:
            self._encode(key, self._pending.pop(key))
        slot = self.slots[key]
        off = slot.address - self.base
        return slot.decode(self.regs[off : off + slot.size])

    def keys_in(self, address: int, count: int) -> frozenset[str]:
        """Keys of the slots that registers ``address .. address + count - 1`` touch."""
        lo = max(0, address - self.base)
        hi = min(len(self.regs), address - self.base + count)
        return frozenset(k for k in self._owner[lo:hi] if k is not None)

    def peek(self, key: str, address: int, values: Sequence[int]) -> Any:
        """Value slot ``key`` would have if ``values`` were written at ``address``."""
        if key in self._pending:
            self._encode(key, self._pending.pop(key))
        slot = self.slots[key]
        regs = []
        for a in range(slot.address, slot.address + slot.size):
            i = a - address
            regs.append(values[i] if 0 <= i < len(values) else self.regs[a - self.base])
        return slot.decode(regs)

    def all_writable(self, address: int, count: int) -> bool:
        """Whether every register of the span exists and accepts writes."""
        lo = address - self.base
        return lo >= 0 and lo + count <= len(self.regs) and all(self.writable[lo : lo + count])


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model of a SunSpec image: top-level values and repeating-group instances."""

    model_id: int
    values: Mapping[str, Any]
    groups: Mapping[str, Sequence[Mapping[str, Any]]] | None = None


def build_sunspec_image(models: Sequence[ModelSpec], base: int = 40000) -> RegisterImage:
    """Image of a SunSpec device: marker, each model via ``encode_model``, end marker."""
    regs: list[int] = list(SUNS_MARKER)
    writable = [False, False]
    slots: dict[str, Slot] = {}
    measurement: list[tuple[int, int]] = []
    for spec in models:
        mdef = load_model(spec.model_id)
        body = encode_model(mdef, spec.values, spec.groups)
        address = base + len(regs)
        slots.update(_model_slots(mdef, address, spec))
        writable += _writable_mask(mdef, spec, len(body))
        if spec.model_id in MEASUREMENT_MODELS:
            measurement.append((len(regs) + 2, len(body) - 2))
        regs += body
    regs += END_MARKER
    writable += [False, False]
    if base + len(regs) > 0x10000:
        raise ValueError(f"SunSpec image at base {base} runs past register 65535")
    return RegisterImage(base, regs, writable, slots, measurement)


def _instances(
    gdef: GroupDef, spec: ModelSpec, values: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    given = list((spec.groups or {}).get(gdef.name, ()))
    if given or gdef.count == 0:
        return given
    if gdef.count is None:
        return [{}]
    if isinstance(gdef.count, int):
        return [{}] * gdef.count
    return [{}] * int(values.get(gdef.count) or 0)


def _walk(mdef: ModelDef, spec: ModelSpec) -> list[tuple[str, PointDef, int, Mapping[str, Any]]]:
    """(key, point, offset from the model ID, instance values) of every point of a model."""
    out = [(f"{mdef.id}.{p.name}", p, p.offset, spec.values) for p in mdef.group.points]
    pos = mdef.group.points_size
    for child in mdef.group.groups:
        if child.groups:
            raise ValueError(f"model {mdef.id}: nested group {child.name} is not supported")
        for i, inst in enumerate(_instances(child, spec, spec.values)):
            for p in child.points:
                out.append((f"{mdef.id}.{child.name}[{i + 1}].{p.name}", p, pos + p.offset, inst))
            pos += child.fixed_size
    return out


def _model_slots(mdef: ModelDef, address: int, spec: ModelSpec) -> dict[str, Slot]:
    slots: dict[str, Slot] = {}
    for key, p, off, inst in _walk(mdef, spec):
        sf = p.sf if isinstance(p.sf, int) or p.sf is None else _sf_value(p.sf, inst, spec)
        slots[key] = PointSlot(address + off, p.size, p.access == "RW", p.type, sf)
    return slots


def _sf_value(name: str, inst: Mapping[str, Any], spec: ModelSpec) -> int:
    # A sunssf point left out is encoded as 0 by encode_model.
    value = inst.get(name, spec.values.get(name))
    return int(value) if value is not None else 0


def _writable_mask(mdef: ModelDef, spec: ModelSpec, length: int) -> list[bool]:
    mask = [False] * length
    for _key, p, off, _inst in _walk(mdef, spec):
        if p.access == "RW":
            mask[off : off + p.size] = [True] * p.size
    return mask


def build_map_image(rmap: RegisterMap, values: Mapping[str, float]) -> RegisterImage:
    """Image of a register-map device covering its lowest to its highest register.

    Gaps between registers read as 0 and refuse writes, so block reads across them work
    (``RegisterMap.blocks`` merges nearby registers into one read).
    """
    tables = {r.table for r in rmap.registers}
    base = min(r.address for r in rmap.registers)
    end = max(r.address + r.size for r in rmap.registers)
    if len(tables) > 1 and _tables_overlap(rmap):
        raise ValueError(f"map {rmap.name!r}: holding and input registers overlap")
    regs = [0] * (end - base)
    writable = [False] * (end - base)
    slots: dict[str, Slot] = {}
    measurement: list[tuple[int, int]] = []
    for reg in rmap.registers:
        slots[reg.channel] = MapSlot(reg.address, reg.size, reg.writable, reg, rmap.word_order)
        off = reg.address - base
        writable[off : off + reg.size] = [reg.writable] * reg.size
        if not reg.writable:
            measurement.append((off, reg.size))
    image = RegisterImage(base, regs, writable, slots, measurement)
    for channel, value in values.items():
        image.set(channel, value)
    return image


def _tables_overlap(rmap: RegisterMap) -> bool:
    # One register list serves both tables, so the same address may not be used twice.
    used: set[int] = set()
    for reg in rmap.registers:
        span = set(range(reg.address, reg.address + reg.size))
        if used & span:
            return True
        used |= span
    return False
