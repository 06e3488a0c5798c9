"""neurosim: simulate Equilibrium Propagation learning on ideal and neuromorphic hardware.

Everything the command line does is a plain call here, for batch scripts:

    import neurosim
    result = neurosim.train("mnist_fc1_ep", overrides=["train.epochs=1"], out="runs/quick")
    print(result.test_error)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402
from .errors import ConfigError, DataError, DivergenceError, NeurosimError  # noqa: E402


def train(*args, **kwargs):
    """Train from a config; see :func:`neurosim.trainer.train`."""
    from .trainer import train as _train

    return _train(*args, **kwargs)


def bench(*args, **kwargs):
    """Measure training throughput; see :func:`neurosim.bench.bench`."""
    from .bench import bench as _bench

    return _bench(*args, **kwargs)


__all__ = ["Config", "load_config", "train", "bench", "ConfigError", "DataError", "DivergenceError",
           "NeurosimError", "__version__"]
