"""reference/config.md: every config key, from the dataclasses of neurosim/config.py.

Type and default come from ``dataclasses.fields``, the meaning from each field's attribute
docstring (the string literal after it in the source). A field without one fails the build.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

from common import GenError, attribute_docs, cell, default_of, literal, table, type_name

INTRO = """# Config keys

Generated at build time from the dataclasses of `neurosim/config.py` (their docstrings): every key
a config file or `--set key=value` accepts, its type, its default and its meaning. `neurosim config
NAME` prints a config fully resolved, with these defaults filled in. A wrong key, type or value stops
before anything runs, with a message that names the key.

The parameters a synaptic device preset accepts (`synapses.params.*`) are listed with the
[device catalog](devices.md#parameters).

"""


def walk(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field, str, type]]:
    """(dotted key, field, doc, owner class) for every key, sections before their keys."""
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        doc = docs.get(f.name, "").strip()
        if not doc:
            raise GenError(f"config key {key!r} ({cls.__name__}.{f.name}) has no docstring in neurosim/config.py")
        out.append((key, f, doc, cls))
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(walk(tp, key + "."))
        for arg in typing.get_args(tp):  # list[ConvLayerConfig] and the like
            if dataclasses.is_dataclass(arg):
                out.append((key + "[i]", None, inspect.cleandoc(arg.__doc__ or ""), arg))
                out.extend(walk(arg, key + "[i]."))
    return out


def all_keys() -> list[str]:
    from neurosim.config import Config

    return [key for key, f, *_ in walk(Config) if f is not None]


def render() -> dict[str, str]:
    from neurosim.config import Config

    hints_cache: dict[type, dict] = {}
    sections: dict[str, list[list[str]]] = {}
    section_doc: dict[str, str] = {}
    top: list[list[str]] = []
    for key, f, doc, owner in walk(Config):
        if f is None:  # the entries of a list of sections
            section_doc[key] = f"Each entry of `{key[:-3]}`: {doc}"
            sections.setdefault(key, [])
            continue
        hints = hints_cache.setdefault(owner, typing.get_type_hints(owner))
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            own = (tp.__doc__ or "").strip()
            section_doc[key] = doc if own.startswith(tp.__name__ + "(") else f"{doc} {own}"
            sections.setdefault(key, [])
            continue
        default = default_of(f)
        row = [f"`{key}`", f"`{type_name(f.type)}`", literal(default), doc]
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        (sections.setdefault(parent, []) if parent else top).append(row)
    header = ["key", "type", "default", "meaning"]
    parts = [INTRO, "## Top-level keys\n\n", table(header, top)]
    for name, rows in sections.items():
        parts.append(f"\n## `{name}`\n\n{cell(section_doc.get(name, ''))}\n\n")
        if rows:
            parts.append(table(header, rows))
    return {"reference/config.md": "".join(parts)}
