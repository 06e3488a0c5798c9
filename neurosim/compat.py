"""Old import paths of the modules that moved into layers (neurosim 0.1 -> 0.2), kept for users.

Batch scripts and notebooks written against the flat layout (``neurosim.device_models``,
``neurosim.runtime``, ``neurosim.trainer``, ``neurosim.backends.brian2_train``, ...) keep working:
importing an old name gives the module at its new place, with a ``DeprecationWarning`` that
names the new path. Only names users were shown in the README and docs are kept; they will be
removed in a later release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

MOVED = {
    "neurosim.device_models": "neurosim.hardware.devices",
    "neurosim.synapses": "neurosim.hardware.synapses",
    "neurosim.read_side": "neurosim.hardware.read_side",
    "neurosim.runtime": "neurosim.core.network",
    "neurosim.models": "neurosim.core.models",
    "neurosim.estimators": "neurosim.core.estimators",
    "neurosim.phases": "neurosim.core.phases",
    "neurosim.trainer": "neurosim.run.trainer",
    "neurosim.catalog": "neurosim.presets",
    "neurosim.sweep_spec": "neurosim.sweeps.spec",
    "neurosim.backends.brian2_train": "neurosim.backends.brian2.train",
    "neurosim.backends.brian2_rate": "neurosim.backends.brian2.rate",
    "neurosim.backends.brian2_spiking": "neurosim.backends.brian2.spiking",
}
"""Old module path -> new module path."""


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve an old path to the already-importable new module (the same module object)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there (the old path will be "
                      f"removed in a later release)", DeprecationWarning, stacklevel=3)
        module = importlib.import_module(new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The new module is already executed."""


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
