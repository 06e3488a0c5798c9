"""neurosim: simulate Equilibrium Propagation learning on ideal and neuromorphic hardware.

Everything the command line does is a plain call here, for batch scripts:

    import neurosim
    result = neurosim.train("mnist_fc1_ep", overrides=["train.epochs=1"], out="runs/quick")
    print(result.test_error)
"""

from __future__ import annotations

from neurosim.version import __version__

from neurosim import backends  # noqa: F401  (registers the backends every loaded config is checked against)
from neurosim import compat
from neurosim.config import Config, load_config
from neurosim.errors import ConfigError, DataError, DivergenceError, NeurosimError
from neurosim.studies.bench import bench
from neurosim.studies.chip import chip
from neurosim.studies.gdu import gdu
from neurosim.sweeps.execution import sweep
from neurosim.sweeps.report import report

compat.install()  # old import paths (neurosim.device_models, ...) still resolve, with a warning


def train(*args, **kwargs):
    """Train from a config; see :func:`neurosim.run.trainer.train`."""
    from neurosim.run.trainer import train as _train

    return _train(*args, **kwargs)


def asymmetry_study(*args, **kwargs):
    """Fig. 1c study over initial weight angles; see :func:`neurosim.studies.asymmetry.asymmetry_study`."""
    from neurosim.studies.asymmetry import asymmetry_study as _study

    return _study(*args, **kwargs)


def drift_study(*args, **kwargs):
    """Test error of a trained run as its conductances drift; see :func:`neurosim.studies.drift.drift_study`."""
    from neurosim.studies.drift import drift_study as _drift

    return _drift(*args, **kwargs)


def fit_device(*args, **kwargs):
    """Fit the response laws to measured pulse responses; see :func:`neurosim.hardware.fitting.fit_device`
    (and :func:`neurosim.hardware.fitting.write_fit` to write the preset, its record and its plot)."""
    from neurosim.hardware.fitting import fit_device as _fit

    return _fit(*args, **kwargs)


__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "NeurosimError",
    "__version__",
    "asymmetry_study",
    "bench",
    "chip",
    "drift_study",
    "fit_device",
    "gdu",
    "load_config",
    "report",
    "sweep",
    "train",
]
