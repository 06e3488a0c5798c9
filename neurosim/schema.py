"""The schema engine of every YAML neurosim reads: numbers as YAML 1.2 reads them, and
dataclasses built from mappings with every key and type checked.

Configs, device presets, sweep and study files all go through here, so that a typo anywhere
fails the same way: a :class:`~neurosim.errors.ConfigError` naming the dotted key, the value
and what was expected. The sections themselves (what keys exist) live with what they describe:
:mod:`neurosim.config` for runs, :mod:`neurosim.hardware.devices` for device records.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from neurosim.errors import ConfigError


class YAMLLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader reading numbers as YAML 1.2 does, for every YAML neurosim reads
    (config, circuit and sweep files, ``--set`` values).

    PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``1e-3``, ``1e6``
    and ``1.0e30`` are strings there and a config key holding one is refused as "expected a
    number". YAML 1.2 reads them as floats, and so does this loader.
    ``.inf``, ``-.inf`` and ``.nan`` are floats in both (validation refuses them where a value
    must be finite).
    """


YAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",  # the YAML 1.2 forms that YAML 1.1 lacks: an exponent without a dot or sign
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)[eE][-+]?[0-9]+$"), list("-+.0123456789"))


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`YAMLLoader` (YAML 1.2 numbers); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=YAMLLoader)


def parse_value(text: str) -> Any:
    """One ``--set`` value: YAML, read as config files are (``1e6`` and ``[1.0e30, 1.0e30]`` are
    numbers, ``[784, 256, 10]`` a list, ``null`` None); an empty text is None."""
    return load_yaml(text) if text.strip() else None


def parse_override(item: str) -> tuple[str, Any]:
    """Split a ``--set`` string ``key=value`` into its dotted key and its value (:func:`parse_value`)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(item, item, "an override of the form key=value (e.g. train.epochs=3)")
    try:
        value = parse_value(text)
    except yaml.YAMLError as exc:
        raise ConfigError(key.strip(), text, f"a YAML value: {exc}") from None
    return key.strip(), value


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for the dotted key ``a.b.c``, creating missing sections."""
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[: i + 1]), child, "a section (mapping) to set sub-keys in")
        node = child
    node[parts[-1]] = value


def read_yaml(path: Path, expected: str = "a mapping of config keys at the top level",
              empty_ok: bool = False) -> dict[str, Any]:
    """A YAML file that must hold a mapping (``expected`` says of what, for the error); an empty
    file is ``{}`` if ``empty_ok``."""
    try:
        data = load_yaml(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "(file)", f"valid YAML: {exc}") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), type(data).__name__, expected)
    return data


@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A dataclass's resolved type hints and field names (resolving hints is the slow part of a
    load: a sweep of thousands of points validates thousands of configs)."""
    return typing.get_type_hints(cls), frozenset(f.name for f in dataclasses.fields(cls))


def build(cls: type, raw: Any, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, checking every key and type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix or "(top level)", raw, "a mapping")
    hints, names = _fields(cls)
    for key in raw:
        if key not in names:
            raise ConfigError(_join(prefix, str(key)), raw[key],
                              f"one of the known keys: {', '.join(sorted(names))}")
    kwargs = {key: _coerce(hints[key], value, _join(prefix, key)) for key, value in raw.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(key, value, "a mapping of names to values")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(key, value, f"a list of {_name(args[0])}")
        return [_coerce(args[0], item, f"{key}[{i}]") for i, item in enumerate(value)]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, value, "a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "an integer")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, value, "a string")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in this module


def _name(hint: Any) -> str:
    return {float: "numbers", int: "integers", str: "strings", bool: "booleans"}.get(hint, str(hint))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))


def positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(key, value, "a positive integer")
