"""neurosim: simulate Equilibrium Propagation learning on ideal and neuromorphic hardware.

Everything the command line does is a plain call here, for batch scripts:

    import neurosim
    result = neurosim.train("mnist_fc1_ep", overrides=["train.epochs=1"], out="runs/quick")
    print(result.test_error)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config, load_config
from .errors import ConfigError, DataError, DivergenceError, NeurosimError


def train(*args, **kwargs):
    """Train from a config; see :func:`neurosim.trainer.train`."""
    from .trainer import train as _train

    return _train(*args, **kwargs)


def bench(*args, **kwargs):
    """Measure training throughput; see :func:`neurosim.bench.bench`."""
    from .bench import bench as _bench

    return _bench(*args, **kwargs)


def gdu(*args, **kwargs):
    """Check Theorem 1 on one batch; see :func:`neurosim.gdu.gdu`."""
    from .gdu import gdu as _gdu

    return _gdu(*args, **kwargs)


def asymmetry_study(*args, **kwargs):
    """Fig. 1c study over initial weight angles; see :func:`neurosim.asymmetry.asymmetry_study`."""
    from .asymmetry import asymmetry_study as _study

    return _study(*args, **kwargs)


# Imported eagerly (both are light: no torch, no dask at import): the functions must be what
# ``neurosim.sweep`` and ``neurosim.report`` name. Importing a submodule binds its name on the
# package, and it is only bound the first time, which is here, before the functions replace it.
from .report import report
from .sweep import sweep

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "NeurosimError",
    "__version__",
    "asymmetry_study",
    "bench",
    "gdu",
    "load_config",
    "report",
    "sweep",
    "train",
]
