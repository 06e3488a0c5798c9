"""Sweep files: a base config and the axes to vary, expanded into named, validated points.

A sweep is data (YAML), like an experiment: it names a base experiment, ``--set``-style
overrides applied to every point, and axes. Expanding it is deterministic, so the same file
always gives the same points with the same folder names, which is what lets an interrupted
sweep find its finished points again. Every point's config is validated here, before anything
runs: a typo in an axis key would otherwise cost a whole cluster allocation.

    name: cep_beta_eta
    base: mnist_fc1_cep                 # experiment name, or a YAML path (relative to this file)
    overrides: [train.epochs=3]         # --set strings, or a mapping {train.epochs: 3}
    grid:                               # every combination of these
      estimator.beta: [0.1, 0.2, 0.4]
      circuit.initial_angle: {linspace: [0, 180, 5]}    # also {logspace: [1e-3, 1e-1, 3]}
    zip:                                # these advance together (one axis); a list for several
      estimator.lr: [[0.0028, 0.0014], [0.0056, 0.0028]]
      estimator.T: [40, 60]
    random:                             # samples drawn once from a seeded generator
      samples: 8
      seed: 0
      keys:
        estimator.beta: {log_uniform: [0.01, 1.0]}
        synapses.params.dw_min_std: {uniform: [0.0, 0.5]}
        estimator.random_sign: {choice: [true, false]}
    repeats: 2                          # seeds base, base+1 (or seeds: [0, 1])
    reference: {label: ideal, overrides: [synapses.device=ideal]}   # one extra run, drawn as a line
    report:
      metric: test_error
      plots:
        - {x: estimator.beta, lines: estimator.lr, logx: true}
        - {heatmap: [estimator.beta, estimator.lr]}

The axes combine as a cartesian product: grid keys, zip groups, the random samples and the
seeds, in that order. Numbers such as ``1e-5`` are read as numbers (YAML 1.2), unlike plain
PyYAML, because sweeps over rates write them all the time.

One cohesive job per module: ``parse`` checks the file's structure and builds its axes,
``names`` turns swept values into folder names, and this module expands the axes into points
and validates each point's config.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from neurosim.config import Config, load_config
from neurosim.errors import ConfigError, arg
from neurosim.schema import load_yaml, parse_override, read_yaml, set_dotted  # noqa: F401  (load_yaml: the public reader)
from neurosim.sweeps.names import REFERENCE_NAME, deduplicate, format_value, point_name
from neurosim.sweeps.parse import METRICS, Axis, PlotSpec, check_not_swept, parse

__all__ = ["METRICS", "REFERENCE_NAME", "Axis", "PlotSpec", "Point", "SweepSpec", "config_of", "format_value"]


@dataclass
class Point:
    """One training run of a sweep: its swept values, folder name and validated config."""

    name: str
    values: dict[str, Any]
    config: dict[str, Any]
    """The resolved config (``Config.to_dict()``), validated."""

    @property
    def epochs(self) -> int:
        return int(self.config["train"]["epochs"])


@dataclass
class SweepSpec:
    """A parsed sweep file (see the module docstring)."""

    name: str
    base: str
    axes: list[Axis]
    overrides: list[str] = field(default_factory=list)
    """``--set`` strings applied to every point, before the typed ``settings``."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Overrides given as a mapping (typed YAML values)."""
    description: str = ""
    reference: dict[str, Any] | None = None
    """{label, base, overrides}: one more run drawn as a horizontal line in the plots."""
    metric: str = "test_error"
    plots: list[PlotSpec] = field(default_factory=list)
    source: str = "sweep"
    """The file the spec came from (or 'sweep' for a mapping), named in error messages."""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """The swept keys, in the order of the axes."""
        return [key for axis in self.axes for key in axis.keys]

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any]) -> SweepSpec:
        """Read a sweep from a YAML path, a shipped sweep name, or a mapping; check its structure."""
        if isinstance(source, Mapping):
            return cls(**parse(copy.deepcopy(dict(source)), "sweep", None))
        from neurosim.presets import find

        path = find("sweeps", str(source))
        raw = read_yaml(path, "a mapping with name, base and axes at the top level")
        return cls(**parse(raw, str(path), path.parent))

    def points(self, extra_overrides: list[str] | None = None) -> list[Point]:
        """Every point of the sweep, named and validated (``extra_overrides``: ``--set`` of the caller)."""
        base = self.base_config(extra_overrides)
        rows = list(itertools.product(*(axis.rows for axis in self.axes))) if self.axes else [()]
        points = []
        for combo in rows:
            values: dict[str, Any] = {}
            for axis, row in zip(self.axes, combo):
                values.update(zip(axis.keys, row))
            points.append(Point(point_name(values, self.keys), values, self._config(base, values)))
        deduplicate(points, self.source)
        return points

    def reference_point(self, extra_overrides: list[str] | None = None) -> Point | None:
        """The reference run (if the spec asks for one): the base with the reference's overrides."""
        if self.reference is None:
            return None
        ref = self.reference
        config = _resolve(ref["base"] or self.base, self.overrides + ref["overrides"] + list(extra_overrides or []),
                          {**self.settings, **ref["settings"]}, f"{self.source}: reference")
        return Point(REFERENCE_NAME, {}, config)

    def base_config(self, extra_overrides: list[str] | None = None) -> dict[str, Any]:
        """The resolved config every point starts from (base, overrides, settings, caller's --set)."""
        extra = list(extra_overrides or [])
        for item in extra:
            key = parse_override(item)[0]
            check_not_swept(key, self.keys, f"{arg('overrides: ', '--set ')}{item}")
        return _resolve(self.base, self.overrides + extra, self.settings, f"{self.source}: base/overrides")

    def _config(self, base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        raw = copy.deepcopy(base)
        try:
            for key, value in values.items():
                set_dotted(raw, key, copy.deepcopy(value))
            return load_config(raw).to_dict()
        except ConfigError as exc:
            key = next((k for k in values if exc.key == k or exc.key.startswith(k + ".") or k.startswith(exc.key + ".")),
                       None)
            axis = next((a.kind for a in self.axes if key in a.keys), None)
            where = f"{axis}: {key}" if key else exc.key
            shown = point_name(values, self.keys)
            raise ConfigError(f"{self.source}: {where} (point {shown})", exc.value,
                              exc.expected if key is None or exc.key == key else f"{exc.expected} (at {exc.key})") from None


def _resolve(base: str, overrides: list[str], settings: dict[str, Any], where: str) -> dict[str, Any]:
    """load_config(base, overrides) with the typed ``settings`` on top, as a validated dict."""
    try:
        resolved = load_config(base, overrides).to_dict()
        for key, value in settings.items():
            set_dotted(resolved, key, copy.deepcopy(value))
        return load_config(resolved).to_dict()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.key}", exc.value, exc.expected) from None


def config_of(point: Point) -> Config:
    """The point's config as a Config object."""
    return load_config(point.config)
