"""Declarative register maps for devices that do not speak SunSpec.

A map is a TOML file (``adapters/maps/<name>.toml``) listing each register: channel name (a
standard name with its unit, e.g. ``el_power_w``), address, table (holding or input), type,
scale, unit, and whether the controller may write it. The same map decodes what a device says,
encodes what the controller writes, and builds the register image of the simulated device.

value = raw * scale;  raw = round(value / scale)
"""

from __future__ import annotations

import itertools
import math
import struct
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

RegisterType = Literal["uint16", "int16", "uint32", "int32", "float32"]
_SIZE: dict[str, int] = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2}
_STRUCT: dict[str, str] = {"uint16": "H", "int16": "h", "uint32": "I", "int32": "i", "float32": "f"}
MAX_READ = 125


class RegisterMapError(ValueError):
    """A map file that is wrong, or a value that does not fit its register."""


@dataclass(frozen=True, slots=True)
class RegisterDef:
    channel: str
    address: int
    type: RegisterType
    scale: float
    unit: str
    access: Literal["r", "rw"]
    table: Literal["holding", "input"]
    description: str = ""
    min: float | None = None
    max: float | None = None

    @property
    def size(self) -> int:
        return _SIZE[self.type]

    @property
    def writable(self) -> bool:
        return self.access == "rw"


@dataclass(frozen=True, slots=True)
class RegisterMap:
    name: str
    kind: str
    word_order: Literal["big", "little"]
    registers: tuple[RegisterDef, ...]

    def channel(self, name: str) -> RegisterDef:
        for reg in self.registers:
            if reg.channel == name:
                return reg
        raise RegisterMapError(f"map {self.name!r} has no channel {name!r}")

    def blocks(self, table: str) -> list[tuple[int, int]]:
        """(address, count) reads covering every register of ``table``, fewest requests."""
        spans = sorted((r.address, r.address + r.size) for r in self.registers if r.table == table)
        blocks: list[tuple[int, int]] = []
        for start, end in spans:
            if blocks and end - blocks[-1][0] <= MAX_READ:
                first, count = blocks[-1]
                blocks[-1] = (first, max(count, end - first))
            else:
                blocks.append((start, end - start))
        return blocks

    def decode(self, table: str, address: int, regs: Sequence[int]) -> dict[str, float | None]:
        """Channel values from a block of ``table`` registers read from ``address``."""
        out: dict[str, float | None] = {}
        for reg in self.registers:
            lo = reg.address - address
            if reg.table != table or lo < 0 or lo + reg.size > len(regs):
                continue
            out[reg.channel] = decode_register(reg, regs[lo : lo + reg.size], self.word_order)
        return out

    def encode(self, channel: str, value: float) -> tuple[int, list[int]]:
        """(address, registers) that write ``value`` to ``channel``; range-checked."""
        reg = self.channel(channel)
        return reg.address, encode_register(reg, value, self.word_order)


def decode_register(
    reg: RegisterDef, words: Sequence[int], word_order: str = "big"
) -> float | None:
    """Scaled value of one register; None for a float that is not finite (not available)."""
    if word_order == "little":
        words = list(reversed(words))
    raw = struct.unpack(">" + _STRUCT[reg.type], struct.pack(f">{len(words)}H", *words))[0]
    if reg.type == "float32":
        return None if not math.isfinite(raw) else float(raw) * reg.scale
    return float(raw * reg.scale)


def encode_register(reg: RegisterDef, value: float, word_order: str = "big") -> list[int]:
    """Registers for ``value`` (engineering units); RegisterMapError if it does not fit."""
    if not math.isfinite(value):
        raise RegisterMapError(f"{reg.channel}: value {value} is not a finite number")
    if (reg.min is not None and value < reg.min) or (reg.max is not None and value > reg.max):
        raise RegisterMapError(f"{reg.channel}: {value} {reg.unit} outside {reg.min}..{reg.max}")
    raw: float | int = value / reg.scale
    if reg.type != "float32":
        raw = round(raw)
    try:
        packed = struct.pack(">" + _STRUCT[reg.type], raw)
    except struct.error:
        raise RegisterMapError(
            f"{reg.channel}: {value} {reg.unit} does not fit a {reg.type} register"
        ) from None
    words = list(struct.unpack(f">{reg.size}H", packed))
    return list(reversed(words)) if word_order == "little" else words


def parse_map(name: str, text: str) -> RegisterMap:
    """Parse and check a map; errors name the register by its index and channel."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegisterMapError(f"map {name!r}: not valid TOML: {exc}") from None
    head = data.get("device", {})
    regs: list[RegisterDef] = []
    for i, entry in enumerate(data.get("registers", [])):
        where = f"map {name!r} registers[{i}] ({entry.get('channel', '?')})"
        try:
            reg = RegisterDef(
                channel=str(entry["channel"]),
                address=int(entry["address"]),
                type=entry["type"],
                scale=float(entry.get("scale", 1.0)),
                unit=str(entry.get("unit", "")),
                access=entry.get("access", "r"),
                table=entry.get("table", "holding"),
                description=str(entry.get("description", "")),
                min=entry.get("min"),
                max=entry.get("max"),
            )
        except KeyError as exc:
            raise RegisterMapError(f"{where}: missing {exc.args[0]!r}") from None
        if reg.type not in _SIZE:
            raise RegisterMapError(f"{where}: type must be one of {sorted(_SIZE)}")
        if reg.access not in ("r", "rw") or reg.table not in ("holding", "input"):
            raise RegisterMapError(f"{where}: access must be r/rw and table holding/input")
        if not 0 <= reg.address <= 65536 - reg.size or reg.scale == 0:
            raise RegisterMapError(f"{where}: address out of range or scale is 0")
        regs.append(reg)
    if not regs:
        raise RegisterMapError(f"map {name!r}: no registers")
    _check_overlaps(name, regs)
    return RegisterMap(
        name=name,
        kind=str(head.get("kind", name)),
        word_order=head.get("word_order", "big"),
        registers=tuple(regs),
    )


def _check_overlaps(name: str, regs: Sequence[RegisterDef]) -> None:
    for table in ("holding", "input"):
        spans = sorted((r.address, r.address + r.size, r.channel) for r in regs if r.table == table)
        for (_, end, a), (start, _, b) in itertools.pairwise(spans):
            if start < end:
                raise RegisterMapError(f"map {name!r}: {a} and {b} overlap in {table} registers")


@cache
def load_map(name: str) -> RegisterMap:
    """A shipped map by name (``heat_pump``, ``datacentre_meter``) or a path to a TOML file."""
    if name.endswith(".toml"):
        return parse_map(Path(name).stem, Path(name).read_text(encoding="utf-8"))
    source = resources.files("adapters") / "maps" / f"{name}.toml"
    if not source.is_file():
        raise RegisterMapError(f"no register map named {name!r}")
    return parse_map(name, source.read_text(encoding="utf-8"))


def channel_values(values: Mapping[str, float | None], rmap: RegisterMap) -> dict[str, float]:
    """The subset of ``values`` that the map has channels for (for the simulators)."""
    names = {r.channel for r in rmap.registers}
    return {k: v for k, v in values.items() if k in names and v is not None}
