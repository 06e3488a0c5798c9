"""The sweep file's structure: reading its keys, checking each, and building its axes.

Everything here runs before any point's config is built, and names the exact place of a
mistake (``sweep.yaml: grid: estimator.beta: linspace``): a typo found here costs nothing, one
found on the cluster costs an allocation. The format itself is described in
``neurosim.sweeps.spec``, which turns the parsed fields into a ``SweepSpec`` and its points.
"""

from __future__ import annotations

import copy
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurosim.config import load_config
from neurosim.errors import ConfigError
from neurosim.schema import parse_override
from neurosim.sweeps.names import REFERENCE_NAME

TOP_KEYS = ("name", "description", "base", "overrides", "grid", "zip", "random", "repeats", "seeds",
            "reference", "report")
METRICS = ("test_error", "best_test_error", "train_error", "epochs", "wall_seconds", "samples_per_second",
           "pulses", "pulses_per_device_mean", "pulses_per_device_max", "energy_joules")
"""Numeric columns of results.csv that a report can plot."""
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")


@dataclass
class Axis:
    """One dimension of the sweep: a key (grid, seeds) or several that move together (zip, random)."""

    kind: str
    """Where it was declared (grid, zip[0], random, seeds), for error messages."""
    keys: list[str]
    rows: list[tuple[Any, ...]]
    """One tuple of values (one per key) per position along the axis."""


@dataclass
class PlotSpec:
    """A figure of the report: metric vs ``x`` (one line per value of ``lines``), or a heat map."""

    kind: str
    """'line' or 'heatmap'."""
    x: str
    y: str | None = None
    """Heat maps: the key on the vertical axis. Line plots: None."""
    lines: str | None = None
    metric: str = "test_error"
    logx: bool | None = None
    """None: logarithmic when every x is positive and they span more than a factor of 20."""
    logy: bool = False


def parse(raw: dict[str, Any], where: str, folder: Path | None) -> dict[str, Any]:
    """Check a sweep file's structure; the fields of its ``SweepSpec`` (``where``: the file, for
    error messages; ``folder``: where relative base paths are found)."""
    for key, value in raw.items():
        if key not in TOP_KEYS:
            raise ConfigError(f"{where}: {key}", value, f"one of the sweep keys: {', '.join(TOP_KEYS)}")
    for key in ("name", "base"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{where}: {key}", raw.get(key), "a non-empty string (every sweep names its "
                              "name and base experiment)")
    name = raw["name"]
    if re.search(r"[^A-Za-z0-9._+-]", name):
        raise ConfigError(f"{where}: name", name, "letters, digits and . _ + - only (it names the folder)")
    base = _resolve_base(raw["base"], folder)
    overrides, settings = _overrides(raw.get("overrides"), f"{where}: overrides")
    axes: list[Axis] = []
    grid = raw.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise ConfigError(f"{where}: grid", grid, "a mapping of dotted keys to lists of values")
    for key, values in grid.items():
        axes.append(Axis("grid", [_key(key, f"{where}: grid")], [(v,) for v in _values(values, f"{where}: grid: {key}")]))
    zips = raw.get("zip") or []
    for i, group in enumerate([zips] if isinstance(zips, Mapping) else zips):
        axes.append(_zip_axis(group, f"{where}: zip[{i}]" if not isinstance(zips, Mapping) else f"{where}: zip"))
    if not isinstance(zips, (Mapping, list)):
        raise ConfigError(f"{where}: zip", zips, "a mapping of keys to equally long lists, or a list of them")
    if raw.get("random") is not None:
        axes.append(_random_axis(raw["random"], f"{where}: random"))
    seeds = _seeds(raw, settings, overrides, base, where)
    if seeds is not None:
        axes.append(Axis("seeds", ["seed"], [(s,) for s in seeds]))
    keys = [k for axis in axes for k in axis.keys]
    for i, key in enumerate(keys):
        for other in keys[:i]:
            if key == other or key.startswith(other + ".") or other.startswith(key + "."):
                raise ConfigError(f"{where}: {key}", None, f"a key swept by one axis only (it overlaps {other})")
    for item in overrides:
        check_not_swept(parse_override(item)[0], keys, f"{where}: overrides: {item}")
    for key in settings:
        check_not_swept(key, keys, f"{where}: overrides: {key}")
    reference = _reference(raw.get("reference"), folder, f"{where}: reference")
    metric, plots = _report(raw.get("report"), keys, f"{where}: report")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description", description, "a string")
    return {"name": name, "base": base, "axes": axes, "overrides": overrides, "settings": settings,
            "description": description, "reference": reference, "metric": metric, "plots": plots,
            "source": where, "raw": raw}


def _resolve_base(base: str, folder: Path | None) -> str:
    """A base path relative to the sweep file's folder, else as given (a name or a path from here)."""
    if folder is not None and not Path(base).is_absolute() and (folder / base).is_file():
        return str(folder / base)
    return base


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(where, key, "a dotted config key such as estimator.beta")
    return key


def _overrides(value: Any, where: str) -> tuple[list[str], dict[str, Any]]:
    if value is None:
        return [], {}
    if isinstance(value, Mapping):
        return [], {_key(k, where): v for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        for item in value:
            try:
                parse_override(item)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc.key}", exc.value, exc.expected) from None
        return list(value), {}
    raise ConfigError(where, value, "a list of key=value strings (as --set) or a mapping of keys to values")


def _values(values: Any, where: str) -> list[Any]:
    if isinstance(values, Mapping):
        if len(values) != 1 or next(iter(values)) not in ("linspace", "logspace"):
            raise ConfigError(where, values, "a list of values, {linspace: [start, stop, n]} or "
                              "{logspace: [start, stop, n]}")
        kind, args = next(iter(values.items()))
        if (not isinstance(args, list) or len(args) != 3 or not all(_number(a) for a in args)
                or not isinstance(args[2], int) or args[2] < 1):
            raise ConfigError(f"{where}: {kind}", args, "[start, stop, n] with numbers and n a positive integer")
        start, stop, n = args
        if kind == "logspace" and (start <= 0 or stop <= 0):
            raise ConfigError(f"{where}: logspace", args, "positive start and stop (the values, not exponents)")
        if n == 1:
            return [start]
        if kind == "linspace":
            return [_round(start + (stop - start) * i / (n - 1)) for i in range(n)]
        return [_round(start * (stop / start) ** (i / (n - 1))) for i in range(n)]
    if not isinstance(values, list) or not values:
        raise ConfigError(where, values, "a non-empty list of values")
    return list(values)


def _zip_axis(group: Any, where: str) -> Axis:
    if not isinstance(group, Mapping) or not group:
        raise ConfigError(where, group, "a mapping of keys to lists of equal length (the values advance together)")
    keys = [_key(k, where) for k in group]
    columns = [_values(v, f"{where}: {k}") for k, v in group.items()]
    lengths = {k: len(c) for k, c in zip(keys, columns)}
    if len(set(lengths.values())) != 1:
        raise ConfigError(where, lengths, "lists of equal length (zipped values advance together)")
    return Axis(where.rsplit(": ", 1)[-1], keys, list(zip(*columns)))


def _random_axis(block: Any, where: str) -> Axis:
    if not isinstance(block, Mapping):
        raise ConfigError(where, block, "a mapping with samples, seed and keys")
    for key in block:
        if key not in ("samples", "seed", "keys", "digits"):
            raise ConfigError(f"{where}: {key}", block[key], "one of samples, seed, keys, digits")
    samples, seed, digits = block.get("samples"), block.get("seed", 0), block.get("digits", 4)
    for name, value, low in (("samples", samples, 1), ("seed", seed, 0), ("digits", digits, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{where}: {name}", value, f"an integer >= {low}")
    keys = block.get("keys")
    if not isinstance(keys, Mapping) or not keys:
        raise ConfigError(f"{where}: keys", keys, "a mapping of dotted keys to distributions, e.g. "
                          "estimator.beta: {log_uniform: [0.01, 1]}")
    draws = {_key(k, f"{where}: keys"): _distribution(v, f"{where}: keys: {k}") for k, v in keys.items()}
    rng = random.Random(seed)  # one stream, keys in file order: the same file gives the same samples
    rows = []
    for _ in range(samples):
        rows.append(tuple(_draw(rng, kind, args, digits) for kind, args in draws.values()))
    return Axis("random", list(draws), rows)


def _distribution(value: Any, where: str) -> tuple[str, list[Any]]:
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise ConfigError(where, value, "one of {uniform: [low, high]}, {log_uniform: [low, high]}, "
                          "{int_uniform: [low, high]}, {choice: [values]}")
    kind, args = next(iter(value.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}: choice", args, "a non-empty list of values")
        return kind, args
    if not isinstance(args, list) or len(args) != 2 or not all(_number(a) for a in args) or args[0] > args[1]:
        raise ConfigError(f"{where}: {kind}", args, "[low, high] with low <= high")
    if kind == "log_uniform" and args[0] <= 0:
        raise ConfigError(f"{where}: {kind}", args, "a positive low bound (log scale)")
    if kind == "int_uniform" and not all(isinstance(a, int) for a in args):
        raise ConfigError(f"{where}: {kind}", args, "integer bounds")
    return kind, args


def _draw(rng: random.Random, kind: str, args: list[Any], digits: int) -> Any:
    if kind == "choice":
        return copy.deepcopy(rng.choice(args))
    if kind == "int_uniform":
        return rng.randint(args[0], args[1])
    if kind == "uniform":
        return _round(rng.uniform(args[0], args[1]), digits)
    return _round(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))), digits)


def _round(x: float, digits: int = 6) -> float:
    """``digits`` significant digits: short folder names, and values a person can type again."""
    return float(f"{x:.{digits}g}")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _seeds(raw: dict[str, Any], settings: dict[str, Any], overrides: list[str], base: str,
           where: str) -> list[int] | None:
    if "repeats" in raw and "seeds" in raw:
        raise ConfigError(f"{where}: repeats", raw["repeats"], "either repeats or seeds, not both")
    if "seeds" in raw:
        seeds = raw["seeds"]
        if (not isinstance(seeds, list) or not seeds
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
                or len(set(seeds)) != len(seeds)):
            raise ConfigError(f"{where}: seeds", seeds, "a list of distinct non-negative integers")
        return list(seeds)
    if "repeats" in raw:
        repeats = raw["repeats"]
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ConfigError(f"{where}: repeats", repeats, "a positive integer (runs per point, seeds base seed + i)")
        try:
            first = load_config(base, overrides).seed
        except ConfigError as exc:
            raise ConfigError(f"{where}: base/overrides: {exc.key}", exc.value, exc.expected) from None
        first = settings.get("seed", first)
        return [first + i for i in range(repeats)]
    return None


def _reference(value: Any, folder: Path | None, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(where, value, "a mapping {label, overrides, base (optional)}")
    for key in value:
        if key not in ("label", "overrides", "base"):
            raise ConfigError(f"{where}: {key}", value[key], "one of label, overrides, base")
    overrides, settings = _overrides(value.get("overrides"), f"{where}: overrides")
    base = value.get("base")
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{where}: base", base, "an experiment name or YAML path")
    label = value.get("label", REFERENCE_NAME)
    if not isinstance(label, str):
        raise ConfigError(f"{where}: label", label, "a string")
    return {"label": label, "overrides": overrides, "settings": settings,
            "base": _resolve_base(base, folder) if base else None}


def _report(value: Any, keys: list[str], where: str) -> tuple[str, list[PlotSpec]]:
    if value is None:
        return "test_error", []
    if not isinstance(value, Mapping):
        raise ConfigError(where, value, "a mapping with metric and plots")
    for key, item in value.items():
        if key not in ("metric", "plots"):
            raise ConfigError(f"{where}: {key}", item, "one of metric, plots")
    metric = _metric(value.get("metric", "test_error"), f"{where}: metric")
    plots = value.get("plots") or []
    if not isinstance(plots, list):
        raise ConfigError(f"{where}: plots", plots, "a list of {x, lines} or {heatmap: [x, y]} entries")
    return metric, [_plot(p, keys, metric, f"{where}: plots[{i}]") for i, p in enumerate(plots)]


def _plot(entry: Any, keys: list[str], metric: str, where: str) -> PlotSpec:
    allowed = ("x", "lines", "heatmap", "metric", "logx", "logy")
    if not isinstance(entry, Mapping):
        raise ConfigError(where, entry, "a mapping {x: KEY, lines: KEY} or {heatmap: [KEY, KEY]}")
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}: {key}", entry[key], f"one of {', '.join(allowed)}")

    def swept(key: Any, name: str) -> str:
        if key not in keys:
            raise ConfigError(f"{where}: {name}", key, f"a swept key: {', '.join(keys) or '(none)'}")
        return key

    for flag in ("logx", "logy"):
        if flag in entry and not isinstance(entry[flag], bool):
            raise ConfigError(f"{where}: {flag}", entry[flag], "true or false")
    metric = _metric(entry.get("metric", metric), f"{where}: metric")
    if "heatmap" in entry:
        pair = entry["heatmap"]
        if "x" in entry or "lines" in entry or not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"{where}: heatmap", pair, "two swept keys [x, y] (and no x or lines)")
        return PlotSpec("heatmap", swept(pair[0], "heatmap[0]"), swept(pair[1], "heatmap[1]"), metric=metric)
    if "x" not in entry:
        raise ConfigError(where, dict(entry), "an x key (line plot) or heatmap: [x, y]")
    lines = swept(entry["lines"], "lines") if entry.get("lines") is not None else None
    return PlotSpec("line", swept(entry["x"], "x"), None, lines, metric, entry.get("logx"), entry.get("logy", False))


def _metric(value: Any, where: str) -> str:
    if value not in METRICS:
        raise ConfigError(where, value, f"one of {', '.join(METRICS)}")
    return value


def check_not_swept(key: str, keys: list[str], where: str) -> None:
    for swept in keys:
        if key == swept or key.startswith(swept + ".") or swept.startswith(key + "."):
            raise ConfigError(where, key, f"a key that no axis sweeps ({swept} is swept; the axis would win)")
