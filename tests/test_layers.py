"""The import floors: ``vpp.core`` imports nothing above it; ``adapters`` and ``optimizer``
import nothing of the application but ``vpp.core``; the composition root is the only place
that wires the web server and metrics to the controller."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(package: str) -> dict[str, set[str]]:
    """Every module imported by each file of ``package`` (relative path -> module names)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def offending(package: str, allowed: tuple[str, ...], watched: tuple[str, ...]) -> list[str]:
    bad = []
    for path, names in imports(package).items():
        for name in names:
            top = name.split(".")[0]
            if top in watched and not any(name == a or name.startswith(a + ".") for a in allowed):
                bad.append(f"{path} imports {name}")
    return sorted(bad)


def test_core_imports_nothing_above_it() -> None:
    assert offending("vpp/core", ("vpp.core",), ("vpp", "adapters", "optimizer")) == []


def test_adapters_and_optimizer_stand_on_the_core_only() -> None:
    assert offending("adapters", ("vpp.core",), ("vpp",)) == []
    assert offending("optimizer", ("vpp.core",), ("vpp", "adapters")) == []


def test_imports_are_seen() -> None:
    """The checks above would pass on an empty walk: make sure they read real imports."""
    assert "vpp.core.site" in imports("adapters")["adapters/poll.py"]
