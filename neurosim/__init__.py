"""neurosim: simulate Equilibrium Propagation learning on ideal and neuromorphic hardware.

Everything the command line does is a plain call here, for batch scripts:

    import neurosim
    result = neurosim.train("mnist_fc1_ep", overrides=["train.epochs=1"], out="runs/quick")
    print(result.test_error)
"""

from __future__ import annotations

__version__ = "0.1.0"

# Imported eagerly: these functions share their module's name, and importing a submodule binds
# its name on the package the first time only (here), before the function replaces it; a lazy
# wrapper would be replaced by the module as soon as anything imported ``neurosim.gdu``.
from .bench import bench
from .config import Config, load_config
from .errors import ConfigError, DataError, DivergenceError, NeurosimError
from .gdu import gdu
from .report import report
from .sweep import sweep


def train(*args, **kwargs):
    """Train from a config; see :func:`neurosim.trainer.train`."""
    from .trainer import train as _train

    return _train(*args, **kwargs)


def asymmetry_study(*args, **kwargs):
    """Fig. 1c study over initial weight angles; see :func:`neurosim.asymmetry.asymmetry_study`."""
    from .asymmetry import asymmetry_study as _study

    return _study(*args, **kwargs)


def drift_study(*args, **kwargs):
    """Test error of a trained run as its conductances drift; see :func:`neurosim.drift.drift_study`."""
    from .drift import drift_study as _drift

    return _drift(*args, **kwargs)


__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "NeurosimError",
    "__version__",
    "asymmetry_study",
    "bench",
    "drift_study",
    "gdu",
    "load_config",
    "report",
    "sweep",
    "train",
]
