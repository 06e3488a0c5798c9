"""Point names: the folder name of each point, derived from its swept values alone.

A name must be the same every time the same sweep file is expanded (an interrupted sweep finds
its finished points by name), readable (``beta=0.2_lr=0.0056-0.0028_seed=1``) and safe as a
folder name on any file system. The report shows values the way names do, so both use
``format_value``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from neurosim.errors import ConfigError

REFERENCE_NAME = "reference"
"""The folder (and results.csv point) of a sweep's reference run."""
MAX_NAME = 100
"""Longer names are cut and end in a digest of the values."""


class Named(Protocol):
    """A point as far as naming is concerned (``neurosim.sweeps.spec.Point``)."""

    name: str
    values: dict[str, Any]


def point_name(values: dict[str, Any], keys: list[str]) -> str:
    """A folder name from the swept values, stable across runs: ``beta=0.2_lr=0.0056-0.0028_seed=1``."""
    if not values:
        return "base"
    lasts = [k.rsplit(".", 1)[-1] for k in keys]
    parts = []
    for key, value in values.items():
        last = key.rsplit(".", 1)[-1]
        short = last if lasts.count(last) == 1 else key
        parts.append(f"{short}={_name_value(value)}")
    name = re.sub(r"[^A-Za-z0-9._+=-]", "_", "_".join(parts))
    if len(name) > MAX_NAME:
        name = f"{name[:MAX_NAME - 9]}_{digest(values)}"
    return name


def _name_value(value: Any) -> str:
    """A value as a folder name shows it: a YAML file's path by its stem, so that a sweep over
    ``devices/mine.yaml`` (which ``neurosim chip`` passes as an absolute path, for workers on other
    machines) names its point ``device=mine``, not after the directories it happens to sit in."""
    if isinstance(value, str) and re.search(r"[/\\].*\.ya?ml$", value):
        return re.split(r"[/\\]", value)[-1].rsplit(".", 1)[0]
    return format_value(value)


def format_value(value: Any) -> str:
    """A swept value as folder names, tables and plot labels show it (floats as repr: exact)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def digest(values: dict[str, Any]) -> str:
    """Eight hex digits of the values: a name that tells apart points whose names collide."""
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]


def deduplicate(points: Sequence[Named], where: str) -> None:
    """Two points that differ only where their names cannot show it get a digest each."""
    seen: dict[str, list[Named]] = {}
    for point in points:
        seen.setdefault(point.name, []).append(point)
    for name, group in seen.items():
        if len(group) < 2:
            continue
        digests = {digest(p.values) for p in group}
        if len(digests) < len(group):
            raise ConfigError(f"{where}: axes", group[0].values, "distinct points (this point appears twice)")
        for point in group:
            point.name = f"{name[:MAX_NAME - 9]}_{digest(point.values)}"
