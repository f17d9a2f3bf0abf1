"""The house's layers, held against the code's own imports (issue 16): processes on top, one
library below, storage and the event contract at the bottom, imports only downward, no loops.

Every `import` and `from … import` of the project's packages is read from the source (function
bodies and `if TYPE_CHECKING:` blocks included: a loop that only a late import hides is still a
loop). ARCHITECTURE.md draws the same layers; a new package gets its place in LAYERS first."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("motcua", "services", "tools", "core", "schemas")

# Lowest first. A module may import its own part and any part of a lower layer, never a part of
# its own layer or a higher one (parts of one layer stand side by side, unaware of each other).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("schemas", "core.zone", "core.private", "core.settings", "core.extra"),
    ("core.unshown", "core.storage", "core.messaging"),
    ("core.reference",),
    ("core.figures", "core.ingestion"),
    ("core.plans",),
    ("core.feeds",),
    ("services.ingest", "services.metrics", "services.api"),
    ("tools.grafana", "tools.simulator"),
    ("motcua",),
)
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    # The umbrella packages are empty folders' markers, not modules of a layer.
    return {name: path for name, path in found.items() if name not in {"services", "core", "tools"}}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports (a `from package import module` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            wanted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            wanted = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in wanted:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def part_of(name: str) -> str:
    for part in sorted(LAYER, key=len, reverse=True):
        if name == part or name.startswith(part + "."):
            return part
    raise AssertionError(f"{name} belongs to no layer: give its package a place in LAYERS")


MODULES = modules()
GRAPH = {name: imports(name, path, MODULES) for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for name in GRAPH:
        part_of(name)


def test_imports_only_run_downward() -> None:
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if part_of(name) != part_of(target) and LAYER[part_of(target)] >= LAYER[part_of(name)]
    )
    assert not upward, "imports that run upward or sideways:\n" + "\n".join(upward)


def test_no_import_loops() -> None:
    # Tarjan's strongly connected components over modules: any component of two or more is a loop.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not loops, "import loops:\n" + "\n".join(" <-> ".join(loop) for loop in loops)


def test_routes_and_the_page_call_the_library_not_each_other() -> None:
    crossing = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        for a, b in (("services.api.routes", "services.api.page"),)
        if (name.startswith(a) and target.startswith(b))
        or (name.startswith(b) and target.startswith(a))
    )
    assert not crossing, "\n".join(crossing)


def test_a_process_is_an_entry_point_settings_and_its_loop() -> None:
    # The three processes share one shape; their work lives in the library below them.
    shape: dict[str, set[str]] = defaultdict(set)
    for name in GRAPH:
        parts = name.split(".")
        if parts[0] == "services" and len(parts) == 3:
            shape[parts[1]].add(parts[2])
    for process in ("ingest", "metrics", "api"):
        assert {"main", "settings"} <= shape[process], process
