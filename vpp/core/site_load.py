"""Reading site files and the messages of bad ones.

A bad file fails fast with :class:`ConfigError`, whose message names each bad field by its
path, e.g. ``devices[pv-004].modbus.port: must be 1..65535`` (:func:`error_lines`); a file
that cannot be read at all with :class:`SiteFileError` (:func:`read_document`).
:func:`vpp.core.site.parse_site` and :func:`vpp.core.site.read_site` put these together with
the schema; the error classes can be imported from :mod:`vpp.core.site` too.

This module stands below the schema (:mod:`vpp.core.site` imports it): it imports nothing
from it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError


class ConfigError(ValueError):
    """A site file that cannot be used. ``errors`` holds one ``path: message`` per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(errors))


class SiteFileError(ConfigError):
    """A site file that cannot be read at all: missing, a folder, not UTF-8, not TOML.

    ``reason`` says why in one line; ``errors`` holds it as ``(file): <reason>``.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.reason = reason
        super().__init__(source, [f"(file): {reason}"])

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


# --- messages


_ENUM_REPR = re.compile(r"<\w+\.\w+: ('[^']*'|-?\d+)>")


def _format_loc(loc: Sequence[int | str], kinds: set[str], labels: dict[int, str]) -> str:
    out = ""
    for n, part in enumerate(loc):
        if isinstance(part, int):
            if n == 1 and loc[0] == "devices":
                out = labels.get(part, f"devices[{part}]")
            else:
                out += f"[{part}]"
        elif (n == 2 and loc[0] == "devices" and part in kinds) or part.startswith(
            "function-after"
        ):
            # pydantic adds the union tag and validator names to the path; users never wrote
            # them. Only the tag right after a device's index: grid.meter is a real field.
            continue
        else:
            out += f".{part}" if out else part
    return out or "(file)"


def error_lines(
    exc: ValidationError, labels: dict[int, str], device_kinds: Sequence[str]
) -> list[str]:
    """One ``path: message`` line per error, paths as a user reads them in the TOML file.

    labels : how to name each device by its index in ``devices``
        (:func:`~vpp.core.site_refs.device_labels`)
    device_kinds : the tags of the device union (``kind = "pv"``...), in the order to list
        them
    """
    kinds = set(device_kinds)
    expected = ", ".join(device_kinds)
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = "unknown field"
        elif kind == "missing":
            msg = "required field missing"
        elif kind == "finite_number":
            msg = f"must be a finite number, got {err['input']}"
        elif kind == "union_tag_invalid":
            loc += ("kind",)
            msg = f"unknown kind {err.get('ctx', {}).get('tag')!r} (one of: {expected})"
        elif kind == "union_tag_not_found":
            loc += ("kind",)
            msg = f"required field missing (one of: {expected})"
        msg = _ENUM_REPR.sub(r"\1", msg)  # enum members as their values, never their repr
        lines.append(f"{_format_loc(loc, kinds, labels)}: {msg}")
    return lines


# --- files


def read_document(path: Path) -> dict[str, Any]:
    """The TOML document of a site file (UTF-8, a byte-order mark is allowed).

    Raises :class:`SiteFileError` for a file that cannot be read or parsed.
    """
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SiteFileError(source, "not found") from None
    except IsADirectoryError:
        raise SiteFileError(source, "is a folder, not a site file") from None
    except OSError as exc:
        raise SiteFileError(source, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SiteFileError(source, _not_utf8(raw, exc)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SiteFileError(source, f"not valid TOML: {exc}") from None
    return data


def _not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    line = raw.count(b"\n", 0, exc.start) + 1
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    return f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column}"
