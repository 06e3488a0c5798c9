"""Helpers shared by the page generators of docs/gen (run by mkdocs-gen-files at build time).

Every generator returns ``{path inside the site: str | bytes}`` so that tests can call it without
MkDocs. Generators raise ``GenError`` on anything malformed: a build must fail, never skip.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results"


class GenError(RuntimeError):
    """A malformed input of the documentation generators (fails the build)."""


def attribute_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass: the string literal right after ``name: type = ...``.

    A docstring after a run of undocumented fields of one family (sharing the part before the
    first or after the last underscore, as ``gamma_up`` / ``gamma_down`` or ``dw_min_dtod`` /
    ``up_down_dtod``) documents the whole run, as the source writes it.
    """
    source = textwrap.dedent(inspect.getsource(cls))
    body = ast.parse(source).body[0].body
    docs: dict[str, str] = {}
    pending: list[str] = []
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            pending.append(node.target.id)
            continue
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str) and pending):
            text = inspect.cleandoc(node.value.value)
            last = pending[-1]
            docs[last] = text
            for name in reversed(pending[:-1]):
                if name in docs or not _same_family(name, last):
                    break
                docs[name] = text
        pending = [p for p in pending if p not in docs][-8:] if not isinstance(node, ast.Expr) else []
    return docs


def _same_family(a: str, b: str) -> bool:
    if "_" not in a or "_" not in b:
        return False
    return a.split("_")[0] == b.split("_")[0] or a.rsplit("_", 1)[-1] == b.rsplit("_", 1)[-1]


def type_name(tp: Any) -> str:
    text = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))
    return text.replace("typing.", "")


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    raise GenError(f"field {f.name} has no default")


def literal(value: Any) -> str:
    """A value as it would be written in YAML, in backticks."""
    if dataclasses.is_dataclass(value):
        return "(section)"
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value) if value == "" else value
    else:
        text = json.dumps(value) if isinstance(value, (list, dict)) else repr(value)
    return f"`{text}`"


def prose(text: str) -> str:
    """Docstring text as markdown: rst ``code`` becomes `code`, < and > outside code are escaped."""
    text = re.sub(r"``(.+?)``", r"`\1`", str(text))
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in parts)


def cell(text: str) -> str:
    """Text for one markdown table cell (one line, pipes escaped)."""
    return prose(re.sub(r"\s+", " ", str(text))).replace("|", "\\|").strip()


def table(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        raise GenError(f"empty table {header}")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise GenError(f"row {row} does not match header {header}")
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise GenError(f"missing results file {path}") from exc
    except json.JSONDecodeError as exc:
        raise GenError(f"malformed JSON in {path}: {exc}") from exc


def read_yaml(path: Path) -> Any:
    """A YAML file read as neurosim reads its own (YAML 1.2 numbers: 1e-3 is a number)."""
    import yaml

    from neurosim.schema import load_yaml

    try:
        return load_yaml(Path(path).read_text())
    except FileNotFoundError as exc:
        raise GenError(f"missing file {path}") from exc
    except yaml.YAMLError as exc:
        raise GenError(f"malformed YAML in {path}: {exc}") from exc


def write_all(pages: dict[str, str | bytes]) -> None:
    """Write generated pages and assets through mkdocs-gen-files (inside a build)."""
    import mkdocs_gen_files

    for path, content in pages.items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with mkdocs_gen_files.open(path, mode) as handle:
            handle.write(content)
