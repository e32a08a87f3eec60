"""The package's layout rules, checked on the source (standard library `ast` only):

- no import cycles between edgeattn modules, counting imports inside functions too (they hide
  cycles, they do not remove them); only `if TYPE_CHECKING:` imports are left out;
- no module imports another module's private names, or a private module;
- no module over ~400 lines without the reason written at its top ("long because ...").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgeattn"
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement outside `if TYPE_CHECKING:` blocks."""
    found: list[tuple[str, list[str]]] = []
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]

    def visit(nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.extend((alias.name, []) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                found.append((base, [alias.name for alias in node.names]))
            visit(list(ast.iter_child_nodes(node)))

    visit([ast.parse(path.read_text(), str(path))])
    return found


def edges(name: str) -> set[str]:
    """The edgeattn modules `name` imports (`from pkg import sub` counts as importing `pkg.sub`)."""
    out = set()
    for module, names in imports(MODULES[name]):
        if module != "edgeattn" and not module.startswith("edgeattn."):
            continue
        subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
        out.update(subs)
        if len(subs) < len(names) or not names:
            out.add(module)
    out.discard(name)
    return {m for m in out if m in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module are the cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            connect(v)
    return found


def test_the_import_graph_has_no_cycles():
    graph = {name: edges(name) for name in MODULES}
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    """Negative control: the check above must be able to fail."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_module_imports_private_names_of_another():
    offenders = []
    for name, path in MODULES.items():
        for module, names in imports(path):
            if not module.startswith("edgeattn"):
                continue
            private_module = any(part.startswith("_") and part != "__main__" for part in module.split("."))
            private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if (private_module or private_names) and module != name:
                offenders.append(f"{name}: from {module} import {', '.join(names)}")
    assert offenders == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_long_modules_say_why(name):
    path = MODULES[name]
    lines = len(path.read_text().splitlines())
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "long because" in doc, f"{path} has {lines} lines and no 'long because ...' in its docstring"
