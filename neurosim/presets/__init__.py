"""The data that ships with neurosim, found by name: circuits, devices, experiments, studies,
sweeps (YAML, one folder each beside this file) and the bundled dataset sample (``datasets/``).

Data describes things and code runs them: a user writes ``circuit: mnist_fc1`` or
``neurosim train mnist_fc1_ep`` and gets the file shipped in the package, while a path to a
file of their own works the same way.
"""

from __future__ import annotations

from pathlib import Path

from neurosim.errors import ConfigError

KINDS = ("circuits", "devices", "experiments", "studies", "sweeps")
HERE = Path(__file__).resolve().parent
DATASETS_DIR = HERE / "datasets"
"""Datasets bundled with the package (the MNIST sample), read by :mod:`neurosim.data`."""


def _folder(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown catalog kind {kind!r}")
    return HERE / kind


def available(kind: str) -> list[str]:
    """Names of the shipped files of one kind, sorted."""
    return sorted(p.stem for p in _folder(kind).glob("*.yaml"))


def find(kind: str, name: str) -> Path:
    """A path to an existing YAML file, or the shipped file ``<kind>/<name>.yaml``."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if path.parent == Path(".") and path.suffix in ("", ".yaml", ".yml"):  # a bare name
        shipped = _folder(kind) / f"{path.stem}.yaml"
        if shipped.is_file():
            return shipped
    names = ", ".join(available(kind)) or "(none)"
    singular = {"circuits": "circuit", "devices": "synapses.device", "experiments": "experiment",
                "studies": "study", "sweeps": "sweep"}[kind]
    raise ConfigError(singular, name, f"a YAML file or one of the shipped {kind}: {names}")
