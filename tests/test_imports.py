"""The modules of ``refinenet`` import each other without cycles.

Every import counts, wherever it is written (module level, inside a function, under
``TYPE_CHECKING``): a cycle that only closes at call time still means the two modules cannot
be understood, tested or loaded one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "refinenet"


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """``{"refinenet.engine.run": path, "refinenet.engine": .../__init__.py, ...}``."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (at ``path``) imports.

    ``import a.b`` imports ``a.b``; ``from a import b`` imports ``a.b`` when that is a module,
    else ``a`` (``b`` is then a name defined in ``a``). Relative imports are resolved against
    the module's package (a package's ``__init__`` is its own package). A module that calls
    ``import_module`` also imports every module whose dotted name it spells as a string.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    dynamic = any(
        isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
        for node in ast.walk(tree)
    )
    for node in ast.walk(tree):
        if dynamic and isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in modules else source)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    names = module_names()
    return {name: imported_modules(name, path, set(names)) for name, path in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    return None


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "refinenet.engine.trainer" in graph["refinenet.engine"]  # from .trainer import ... in __init__
    assert "refinenet.models" in graph["refinenet"]  # from . import models
    assert "refinenet.models.refinenet" in graph["refinenet.models"]
    # Imports inside functions count: the CLI imports the trainer only when it runs.
    assert "refinenet.engine.trainer" in graph["refinenet.engine.cli"]
    # importlib.import_module("refinenet.engine.cli") in the top-level command line.
    assert "refinenet.engine.cli" in graph["refinenet.cli"]


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_imports_resolve(tmp_path):
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import x\nfrom . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from ..sub import leaf\n    from .. import sub\n")
    names = {"p", "p.sub", "p.sub.leaf"}
    assert imported_modules("p.sub", pkg / "sub" / "__init__.py", names) == {"p", "p.sub.leaf"}
    assert imported_modules("p.sub.leaf", pkg / "sub" / "leaf.py", names) == {"p.sub"}


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    if cycle:
        pytest.fail("import cycle: " + " -> ".join(cycle))
