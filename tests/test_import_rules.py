"""The rooms of ``emustudio/`` import only what docs/design.md's "may import" table allows.

Every module's imports of ``emustudio`` (at the top or inside a function, under
``TYPE_CHECKING`` too) are read from its source and held against :data:`MAY_IMPORT`, the same
table as docs/design.md's; a test also checks that the two tables agree. A new dependency
between rooms is a change to the map, made in both places and on purpose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "emustudio"
DESIGN = ROOT / "docs" / "design.md"

# Top-level modules and the room each belongs to; a package is its own room.
MODULE_ROOMS = {
    "context": "context",
    "ids": "context",
    "credentials": "context",
    "origin": "context",
    "audit": "audit",
    "pipeline": "pipeline",
    "aws_handler": "pipeline",
    "s3_handler": "pipeline",
    "config": "config",
    "cli": "composition",
    "server": "composition",
    "demo": "composition",
    "demo_identity_center": "composition",
    "demo_console": "composition",
    "__init__": "composition",
    "__main__": "composition",
}

# room -> the rooms it may import (its own always). Keep in step with docs/design.md.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "aws": frozenset(),
    "iam": frozenset(),
    "store": frozenset(),
    "config": frozenset(),
    "context": frozenset({"aws"}),
    "audit": frozenset({"aws", "context", "store"}),
    "authz": frozenset({"aws", "context", "iam", "store"}),
    "runtime": frozenset({"config", "store"}),
    "engines": frozenset({"config", "runtime", "store"}),
    "s3": frozenset({"config", "store"}),
    "backup": frozenset({"config", "store"}),
    "services": frozenset({"aws", "context", "iam", "store", "runtime", "engines", "s3"}),
    "pipeline": frozenset({"aws", "context", "audit", "services"}),
    "auth": frozenset({"aws", "context", "iam", "store", "audit", "services", "proxy"}),
    "proxy": frozenset({"context"}),
    "web": frozenset({"aws", "context", "iam", "store", "audit", "services", "auth", "pipeline"}),
    "testing": frozenset({"aws", "iam", "store"}),
    "composition": frozenset(
        {
            "aws",
            "iam",
            "config",
            "store",
            "context",
            "audit",
            "authz",
            "runtime",
            "engines",
            "s3",
            "backup",
            "services",
            "pipeline",
            "auth",
            "proxy",
            "web",
        }
    ),
}


def room_of(module: str) -> str | None:
    """The room of a dotted module name under ``emustudio`` (None for the package itself)."""
    parts = module.split(".")
    if parts[0] != "emustudio" or len(parts) == 1:
        return None
    name = parts[1]
    if (PACKAGE / name).is_dir():
        return name
    return MODULE_ROOMS.get(name, f"<unknown module {name}>")


def imported(tree: ast.AST) -> set[str]:
    """Every ``emustudio`` module a source imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "emustudio":
                names.update(f"emustudio.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return {name for name in names if name.startswith("emustudio.")}


def breaches() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT)
        module = ".".join(relative.with_suffix("").parts)
        source = room_of(module if "." in module else f"{module}.__init__")
        if source is None:
            continue
        allowed = MAY_IMPORT.get(source)
        assert allowed is not None, f"{relative}: room {source!r} is not in the table"
        for name in sorted(imported(ast.parse(path.read_text(), str(path)))):
            target = room_of(name)
            if target is not None and target != source and target not in allowed:
                found.append(f"{relative} ({source}) imports {name} ({target})")
    return found


def test_every_room_imports_only_what_the_map_allows() -> None:
    assert breaches() == []


def test_the_table_here_is_the_table_in_docs_design() -> None:
    """docs/design.md's "may import" table lists the same rooms and rules."""
    text = DESIGN.read_text()
    section = text.split("## What each room may import", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| [^|]* \| ([^|]*) \|$", section, re.MULTILINE)
    documented = {room: frozenset(re.findall(r"`([a-z0-9_]+)`", allowed)) for room, allowed in rows}
    assert documented == MAY_IMPORT


def module_graph() -> dict[str, set[str]]:
    """module -> the ``emustudio`` modules it imports (``from pkg import submodule`` counts as
    importing the submodule; anything else from a package, as importing the package)."""
    modules: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in modules else node.module)
        graph[name] = {dep for dep in deps if dep in modules and dep != name}
    return graph


def test_no_module_imports_itself_back() -> None:
    """No import cycle between modules, not even one hidden in a function or TYPE_CHECKING."""
    graph = module_graph()
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, trail = stack.pop()
            for dep in graph[node]:
                if dep == start:
                    cycles.append(" -> ".join([*trail, dep]))
                elif dep not in seen:
                    seen.add(dep)
                    stack.append((dep, [*trail, dep]))
    assert cycles == []
