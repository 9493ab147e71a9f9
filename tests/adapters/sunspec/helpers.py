"""Test helpers: an in-memory register reader and a reader for the SMA YAML test vectors."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.sunspec.discovery import RegisterReadError

DATA = Path(__file__).resolve().parents[2] / "data" / "sunspec"
SMA_DIR = DATA / "sma_sunnyboy36"
IMAGES_DIR = DATA / "pysunspec2_device_images"
SUNS = [0x5375, 0x6E53]
END = [0xFFFF, 0]


class DictReader:
    """A device as a dict of address -> register; absent addresses are refused.

    Like a real device answering "illegal data address", a read touching any absent register
    raises RegisterReadError. ``requests`` records every read for request-count assertions.
    """

    def __init__(self, registers: Mapping[int, int]) -> None:
        self.registers = dict(registers)
        self.requests: list[tuple[int, int]] = []

    @classmethod
    def image(cls, base: int, regs: Iterable[int | None]) -> DictReader:
        """A reader over consecutive registers from ``base`` (None = unreadable)."""
        return cls({base + i: r for i, r in enumerate(regs) if r is not None})

    async def read(self, address: int, count: int) -> list[int]:
        self.requests.append((address, count))
        if not 1 <= count <= 125:
            raise RegisterReadError(f"illegal count {count}")
        try:
            return [self.registers[a] for a in range(address, address + count)]
        except KeyError as exc:
            raise RegisterReadError(f"illegal data address {exc.args[0]}") from None


def device_image(*models: list[int]) -> list[int]:
    """SunS marker, the given models (header + body each), end marker."""
    regs = list(SUNS)
    for model in models:
        regs += model
    return regs + END


# --- SMA YAML test vectors ---------------------------------------------------------------
# The file is a Modbus Schema Toolkit schema. PyYAML is not installed, so this reads the few
# regular structures the tests need: field expressions of the schema and the `tests:` section.

_HEX = re.compile(r"^[0-9A-Fa-f]{4}$")


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


@dataclass
class YamlVectors:
    """Registers of the test input (address -> value, refused ones absent) and expectations.

    ``expected[block][field]`` is the list of expected strings ([] = no value);
    ``addresses[block][field]`` the first register the schema reads for that field.
    """

    registers: dict[int, int] = field(default_factory=dict)
    unreadable: set[int] = field(default_factory=set)
    expected: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    addresses: dict[str, dict[str, int]] = field(default_factory=dict)


def read_yaml_vectors(path: Path = SMA_DIR / "SunSpecSunnyBoy36.yaml") -> YamlVectors:
    """Parse the schema's field addresses and its first test's input and expectations."""
    lines = path.read_text(encoding="utf-8").splitlines()
    split = lines.index("tests:")
    vectors = YamlVectors()
    _read_schema(lines[:split], vectors)
    _read_tests(lines[split + 1 :], vectors)
    return vectors


def _read_schema(lines: list[str], vectors: YamlVectors) -> None:
    block = fld = ""
    for line in lines:
        if line.startswith("  - id: "):
            block = _unquote(line[len("  - id: ") :])
            vectors.addresses[block] = {}
        elif line.startswith("      - id: "):
            fld = _unquote(line[len("      - id: ") :])
        elif line.startswith("        expression: ") and block:
            match = re.search(r"hr:(\d+)", line)
            if match:
                vectors.addresses[block][fld] = int(match.group(1))


def _read_tests(lines: list[str], vectors: YamlVectors) -> None:
    i = 0
    while i < len(lines):
        line = lines[i]
        if "firstRegisterAddress:" in line:
            first = int(_unquote(line.split(":", 1)[1]).removeprefix("hr:"))
            i = _read_registers(lines, i + 2, first, vectors)
            continue
        if line.strip().startswith("- id: ") and line.startswith("      - id: "):
            i = _read_expected(lines, i, vectors)
            continue
        i += 1


def _read_registers(lines: list[str], i: int, address: int, vectors: YamlVectors) -> int:
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith("          ")):
        for token in lines[i].split("#", 1)[0].split():
            if token == "----":
                vectors.unreadable.add(address)
            elif _HEX.match(token):
                vectors.registers[address] = int(token, 16)
            else:
                raise ValueError(f"unexpected register token {token!r}")
            address += 1
        i += 1
    return i


def _read_expected(lines: list[str], i: int, vectors: YamlVectors) -> int:
    block = _unquote(lines[i].split("- id:", 1)[1])
    expected: dict[str, list[str]] = {}
    vectors.expected[block] = expected
    i += 2  # skip "expected:"
    current: list[str] | None = None
    while i < len(lines) and lines[i].startswith("          "):
        text = lines[i].strip()
        if text.startswith("- "):
            assert current is not None
            current.append(_unquote(text[2:]))
        else:
            name, _, rest = text.rpartition(":")
            current = []
            expected[_unquote(name)] = current
            if rest.strip() not in ("", "[]"):
                raise ValueError(f"unexpected expectation line {text!r}")
        i += 1
    return i


def expected_value(point: Any, ours_sf_is_none: bool) -> Any:
    """pysunspec2's computed value in our representation."""
    value = point.cvalue
    ptype = point.pdef["type"]
    if value is None:
        return None
    if ptype == "pad":
        return None  # we never give pads a value
    if ptype == "ipaddr":
        return str(ipaddress.IPv4Address(value))
    if ptype == "ipv6addr":
        return str(ipaddress.IPv6Address(bytes.fromhex(value.replace(":", ""))))
    if point.sf_required and ours_sf_is_none:
        return None  # pysunspec2 returns the raw value when the scale factor is unimplemented
    return value


def compare_group(ref: Any, values: dict[str, Any], groups: dict[str, Any], path: str) -> int:
    """Compare one pysunspec2 group (``sunspec2.device`` Group or Model) with our values and
    groups, point by point; return the number of points compared."""
    compared = 0
    for name, point in ref.points.items():
        if name in ("ID", "L"):
            continue
        sf_none = False
        if point.sf is not None:
            scope = ref.points if point.sf in ref.points else point.model.points
            sf_none = scope[point.sf].value is None
        want = expected_value(point, sf_none)
        got = values[name]
        if isinstance(want, float) or isinstance(got, float):
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), f"{path}{name}"
        else:
            assert got == want, f"{path}{name}"
        compared += 1
    for gname, group in ref.groups.items():
        instances = group if isinstance(group, list) else [group]
        assert len(groups[gname]) == len(instances), f"{path}{gname} count"
        for i, (theirs, ours) in enumerate(zip(instances, groups[gname], strict=True)):
            compared += compare_group(theirs, ours.values, ours.groups, f"{path}{gname}[{i}].")
    return compared
