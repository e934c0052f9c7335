"""The package's layering: no import cycles inside `ganlib`, and `ganlib` never imports
`lessons/`, `solutions/` or `tests/` (DESIGN.md, "the library is standalone").

Imports are read from the source with `ast`, including the ones inside functions
(a lazy import still ties two modules together), so this runs no ganlib code.
"""

import ast
import pathlib

import pytest

# Backend-neutral (the package's import graph, read from the source): CI runs it once, on TensorFlow.
pytestmark = pytest.mark.backend_neutral

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "ganlib"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path, modules):
    """The ganlib modules that `path` imports (`from pkg import sub` counts as `pkg.sub`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:   # ganlib.a.b.func -> ganlib.a.b
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) - {module_name(p)} for p in paths}


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_known_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_resolve_relative_and_from_imports(tmp_path):
    modules = {"ganlib", "ganlib.models", "ganlib.models.base", "ganlib.losses"}
    graph = import_graph()
    assert "ganlib.models.base" in graph["ganlib.models.cgan"]
    assert "ganlib.losses" in graph["ganlib.models.cgan"]
    source = PACKAGE / "models" / "cgan.py"
    assert imported_modules(source, modules) >= {"ganlib.models.base", "ganlib.losses"}


def test_ganlib_has_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles in ganlib: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("outside", ["lessons", "solutions", "tests"])
def test_ganlib_never_imports_the_course_folders(outside):
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == outside or n.startswith(outside + ".") for n in names), \
                f"{path.relative_to(PACKAGE.parent)} imports {outside}"
