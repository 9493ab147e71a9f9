"""Present a device scan: as JSON-ready data (API, files) or as rich tables (CLI).

Values are the decoded engineering values in the units of the SunSpec definition; enums also
carry their symbol name and bitfields the names of their set bits. A model whose length L
differs from its definition shows its warning (JSON ``"warnings"``, the table's caption) and
marks the points beyond L as missing.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.sunspec.decode import DecodedGroup, DecodedModel
from adapters.sunspec.discovery import ScanResult
from adapters.sunspec.models import (
    GroupDef,
    PointDef,
    UnknownModelError,
    bit_names,
    load_model,
    symbol_name,
)

__all__ = ["BEYOND_L", "scan_to_json", "scan_to_table", "scan_to_text"]

#: The "meaning" of a point beyond the model's reported length L in a table.
BEYOND_L = "missing: beyond L"


def scan_to_json(result: ScanResult) -> dict[str, Any]:
    """The scan as plain data: base, refused registers and every model with its points.

    Shape: ``{"base": 40000, "unreadable": [...], "models": [{"id": 1, "name": "common",
    "address": 40002, "length": 66, "points": [{"name": "Mn", "value": "SMA", "unit": null},
    ...], "groups": {"module": [{"points": [...], "groups": {...}}, ...]}, "errors": [...],
    "warnings": [...], "missing": [...]}]}``. Enum points add ``"symbol"``, bitfield points
    ``"bits"``; ``"missing"`` names the points beyond the model's L in definition order (their
    value is null); a model kept undecoded adds ``"raw"`` (its body registers).
    """
    return {
        "base": result.base,
        "unreadable": sorted(result.unreadable),
        "models": [_model_json(model) for model in result.models],
    }


def _model_json(model: DecodedModel) -> dict[str, Any]:
    gdef = _definition(model)
    entry: dict[str, Any] = {
        "id": model.id,
        "name": model.name,
        "address": model.address,
        "length": model.length,
        "points": _points_json(gdef, model.values),
        "groups": _groups_json(gdef, model.groups),
        "errors": [str(e) for e in model.errors],
        "warnings": [str(w) for w in model.warnings],
        "missing": _missing(gdef, model),
    }
    if not model.decoded:
        entry["raw"] = list(model.raw)
    return entry


def _missing(gdef: GroupDef | None, model: DecodedModel) -> list[str]:
    """The points beyond the model's L, in definition order."""
    if gdef is None or not model.missing:
        return []
    return [
        path for path, _, _ in _rows(gdef, model.values, model.groups, "") if path in model.missing
    ]


def _definition(model: DecodedModel) -> GroupDef | None:
    try:
        return load_model(model.id).group
    except UnknownModelError:
        return None


def _points_json(gdef: GroupDef | None, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    if gdef is None:
        return []
    return [_point_json(pdef, values.get(pdef.name)) for pdef in gdef.points]


def _point_json(pdef: PointDef, value: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": pdef.name, "value": _json_value(value), "unit": pdef.units}
    if pdef.type.startswith("enum"):
        entry["symbol"] = symbol_name(pdef, value)
    elif pdef.type.startswith("bitfield"):
        entry["bits"] = bit_names(pdef, value)
    return entry


def _json_value(value: Any) -> Any:
    # JSON has no infinity; NaN never gets here (it decodes to None).
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _groups_json(
    gdef: GroupDef | None, groups: Mapping[str, list[DecodedGroup]]
) -> dict[str, list[dict[str, Any]]]:
    if gdef is None:
        return {}
    result: dict[str, list[dict[str, Any]]] = {}
    for child in gdef.groups:
        result[child.name] = [
            {"points": _points_json(child, g.values), "groups": _groups_json(child, g.groups)}
            for g in groups.get(child.name, [])
        ]
    return result


def scan_to_table(result: ScanResult) -> list[Table]:
    """One rich table per model: point (with group path), value, unit, symbol or bits."""
    return [_model_table(model) for model in result.models]


def _model_table(model: DecodedModel) -> Table:
    table = Table(title=f"model {model.id} {model.name} @ {model.address} (L={model.length})")
    for column in ("point", "value", "unit", "meaning"):
        table.add_column(column, justify="right" if column == "value" else "left")
    gdef = _definition(model)
    if gdef is not None:
        for path, pdef, value in _rows(gdef, model.values, model.groups, ""):
            meaning = BEYOND_L if path in model.missing else _meaning(pdef, value)
            table.add_row(path, _text(value), pdef.units or "", meaning)
    if not model.decoded:
        table.add_row("raw", " ".join(f"{r:04X}" for r in model.raw), "", "")
    notes = [*(f"warning: {w}" for w in model.warnings), *(str(e) for e in model.errors)]
    if notes:
        table.caption = "; ".join(notes)
    return table


def _rows(
    gdef: GroupDef, values: Mapping[str, Any], groups: Mapping[str, list[DecodedGroup]], path: str
) -> Iterator[tuple[str, PointDef, Any]]:
    for pdef in gdef.points:
        yield path + pdef.name, pdef, values.get(pdef.name)
    for child in gdef.groups:
        for i, instance in enumerate(groups.get(child.name, []), start=1):
            prefix = f"{path}{child.name}[{i}]."
            yield from _rows(child, instance.values, instance.groups, prefix)


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _meaning(pdef: PointDef, value: Any) -> str:
    if pdef.type.startswith("enum"):
        return symbol_name(pdef, value) or ""
    if pdef.type.startswith("bitfield"):
        return ", ".join(bit_names(pdef, value))
    return ""


def scan_to_text(result: ScanResult, width: int = 100) -> str:
    """The tables of scan_to_table rendered as plain text (no colour codes)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(f"SunSpec base {result.base}, {len(result.models)} models")
    for table in scan_to_table(result):
        console.print(table)
    return buffer.getvalue()
