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


def module_graph() -> dict[str, set[str]]:
    """Imports between the project's modules (function-level ones too; not the ones only
    for type checkers), module name -> modules it imports."""
    graph: dict[str, set[str]] = {}
    for package in ("vpp", "adapters", "optimizer"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skip: set[int] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    skip.update(id(n) for n in ast.walk(node))
            found: set[str] = set()
            for node in ast.walk(tree):
                if id(node) in skip:
                    continue
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                elif isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
            graph[name] = {m for m in found if m.split(".")[0] in ("vpp", "adapters", "optimizer")}
    return graph


def test_no_import_circle_between_two_modules() -> None:
    graph = module_graph()
    modules = set(graph)

    def resolve(target: str) -> str | None:
        # "from vpp.recorder import x" may name a package: it counts as the package's module.
        return target if target in modules else None

    def own_package(a: str, b: str) -> bool:
        # A package's __init__ re-exports its modules, which import their siblings through it.
        return b.startswith(a + ".") or a.startswith(b + ".")

    pairs = sorted(
        (a, b)
        for a, targets in graph.items()
        for t in targets
        if (b := resolve(t)) is not None
        and a < b
        and a in graph.get(b, set())
        and not own_package(a, b)
    )
    assert pairs == []
    assert "vpp.recorder.export" not in graph["vpp.recorder.store"]


def test_only_tests_and_benchmarks_use_the_testing_harness() -> None:
    """``vpp.testing`` starts simulators and servers for tests and benchmarks: nothing of the
    application, the adapters or the optimizer may depend on it."""
    graph = module_graph()
    assert "vpp.testing.harness" in graph  # the walk sees the package
    users = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if not name.startswith("vpp.testing")
        for target in targets
        if target == "vpp.testing" or target.startswith("vpp.testing.")
    )
    assert users == []
