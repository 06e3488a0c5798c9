"""reference/layers.md: the package's layers and modules as the code has them today.

Read from the imports of every module by the same reader that enforces the rules
(tests/test_architecture.py: its LAYERS table, its graph), so the picture and the rules can't
disagree: a diagram of the subpackages with their imports, and every module with its layer,
size and first docstring line.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from common import ROOT, GenError

sys.path.insert(0, str(ROOT / "tests"))
import test_architecture as arch  # noqa: E402

LAYER_NAMES = {0: "foundation", 1: "hardware", 2: "config", 3: "core", 4: "backends", 5: "run",
               6: "studies and sweeps", 7: "command line and package face"}


def room(module: str) -> str:
    """The box a module is drawn in: its subpackage, or itself for a top-level module."""
    parts = module.split(".")
    return "neurosim" if len(parts) == 1 else parts[1]


def first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ").replace("|", "\\|")


def render() -> dict[str, str]:
    mods = arch.modules()
    edges = arch.graph()
    missing = [m for m in mods if len(m.split(".")) > 1 and m.split(".")[1] not in arch.LAYERS]
    if missing:
        raise GenError(f"modules without a layer in tests/test_architecture.py: {missing}")
    rooms: dict[str, int] = {}
    for m in mods:
        rooms[room(m)] = arch.layer(m)
    # Arrows into the foundation are left out: every layer may use it, and drawn they hide the rest.
    arrows = sorted({(room(a), room(b)) for a, ts in edges.items() for b in ts
                     if room(a) != room(b) and rooms.get(room(b), 0) > 0})
    lines = ["flowchart BT"]
    for level in sorted(set(rooms.values())):
        members = sorted(r for r, l in rooms.items() if l == level)
        lines.append(f'  subgraph L{level}["{level}: {LAYER_NAMES[level]}"]')
        lines += [f"    {r}[{r}]" for r in members]
        lines.append("  end")
    lines += [f"  {a} --> {b}" for a, b in arrows]
    table = ["| module | layer | lines | what it is for |", "|---|---|---|---|"]
    for m, path in sorted(mods.items(), key=lambda kv: (arch.layer(kv[0]), kv[0])):
        n = len(path.read_text().splitlines())
        table.append(f"| `{m}` | {arch.layer(m)} {LAYER_NAMES[arch.layer(m)]} | {n} | {first_line(path)} |")
    total = sum(len(p.read_text().splitlines()) for p in mods.values())
    page = "\n".join([
        "# Layers and modules",
        "",
        "Generated at build time from the imports of every module of `neurosim/` (the reader of "
        "`tests/test_architecture.py`, which fails the suite on an import circle, an import from a "
        "higher layer, or a private name taken across modules). An arrow `a --> b`: a module of "
        "`a` imports one of `b`; arrows into the foundation (layer 0), which every layer may use, "
        "are not drawn. Why the layers are what they are, and where to add things: "
        "[architecture](../guide/architecture.md).",
        "",
        "```mermaid",
        *lines,
        "```",
        "",
        f"{len(mods)} modules, {total:,} lines.",
        "",
        *table,
        "",
    ])
    return {"reference/layers.md": page}
