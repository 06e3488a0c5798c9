"""The house's rules, read from the code: layers, no import circles, no private names across modules.

neurosim is layered (docs/guide/architecture.md): the foundation (errors, io, schema, data,
presets) at the bottom, then hardware, config, core, backends, run, studies and sweeps, and the
command line and the package's face on top. A module may import its own layer or lower ones,
never a higher one; no set of modules may import each other in a circle; and no module takes
another module's underscore names. Every import counts, those inside functions too: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neurosim"
LAYERS = {  # first part of the module path below neurosim -> layer (low to high)
    "errors": 0, "io": 0, "schema": 0, "data": 0, "presets": 0, "version": 0,
    "hardware": 1,
    "config": 2,
    "core": 3,
    "backends": 4,
    "run": 5,
    "studies": 6, "sweeps": 6,
    "cli": 7, "__init__": 7, "__main__": 7, "compat": 7,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every neurosim import in one module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "neurosim"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "neurosim":
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            found += [(m, [], node.lineno) for m in submodules]
            rest = [n for n in names if f"{target}.{n}" not in known]
            if rest:
                found.append((target, rest, node.lineno))
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, _, _ in imports(name, path, known):
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name:
                edges[name].add(target)
    return edges


def layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in LAYERS, f"{module}: not in a layer of test_architecture.LAYERS; give it one"
    return LAYERS[key]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    assert circles(graph()) == []


def test_higher_layers_import_lower_ones_only() -> None:
    upward = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
              for a, targets in graph().items() for b in sorted(targets)
              if layer(b) > layer(a) and not b.startswith(a + ".")]
    assert upward == []


def test_no_module_takes_another_modules_private_names() -> None:
    mods = modules()
    known = set(mods)
    taken = []
    for name, path in mods.items():
        for target, names, line in imports(name, path, known):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != name:
                taken.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {', '.join(private)} from {target}")
    assert taken == []


def test_the_checks_can_fail() -> None:
    """The graph reader sees lazy and relative imports, and the circle finder finds circles."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = graph()
    assert "neurosim.errors" in edges["neurosim.config"]
    assert all(layer(m) >= 0 for m in edges)
