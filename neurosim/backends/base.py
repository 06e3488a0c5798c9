"""The Backend interface: what a simulator implements so that the one trainer loop can run it.

``neurosim.run.trainer`` owns everything a run does around the simulation (run folders, resume,
seeds per epoch, divergence checks, metrics, checkpoints, results, plots, warnings); a backend
owns only the simulation: which configs it can run, how it builds its network, how one epoch
trains and is evaluated, and how fast it learns (``neurosim bench``). Every backend keeps its
weights in a torch :class:`~neurosim.core.network.Network` between epochs, so checkpoints,
``--resume`` and ``RunResult.network`` are the same whatever simulates the network.

A new backend is one module: a subclass of :class:`Backend` decorated with :func:`register`,
imported by ``neurosim/backends/__init__.py`` (or by the user before loading a config).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

import torch
from torch import Tensor

from neurosim import config as config_module
from neurosim.config import Config
from neurosim.data import TensorDataset, load_splits
from neurosim.errors import ConfigError, DivergenceError
from neurosim.core.network import Network, build_network, configure_torch

CHECKPOINT = "checkpoint.pt"
"""The checkpoint file of a run folder (the divergence message names it)."""

_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make ``cls`` the backend of ``backend.name: <cls.name>``. Its capability
    check is handed to the config layer, which validates every loaded config against it."""
    _REGISTRY[cls.name] = cls
    config_module.RUN_CHECKS[cls.name] = cls.check
    return cls


def unregister(name: str) -> None:
    """Forget a backend (tests register toy backends and take them away again)."""
    _REGISTRY.pop(name, None)
    config_module.RUN_CHECKS.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """The registered backends' names, in registration order."""
    return tuple(_REGISTRY)


def get_backend(name: str) -> type[Backend]:
    """The backend class registered under ``name``; a ConfigError naming the known ones otherwise."""
    if name not in _REGISTRY:
        raise ConfigError("backend.name", name, "one of " + ", ".join(_REGISTRY))
    return _REGISTRY[name]


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """The seed of random stream ``stream`` in ``epoch`` of a run seeded ``seed``: a resumed run
    draws exactly what an uninterrupted one drew (0: shuffle, 1: sign of beta, 2: spikes)."""
    return (seed * 1_000_003 + epoch * 7919 + stream) % (2**63)


def diverged(reason: str, epoch: int, batch: int, out_dir: Path) -> DivergenceError:
    """The DivergenceError of a run that went wrong at (epoch, batch): what happened, and which
    checkpoint is still good."""
    kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept in {out_dir / CHECKPOINT}"
            if epoch > 1 or (out_dir / CHECKPOINT).exists() else "no epoch had completed")
    return DivergenceError(f"run diverged at epoch {epoch}, batch {batch}: {reason}; {kept}. "
                           "Lower the learning rates (estimator.lr) or beta.")


def check_finite(t: Tensor, what: str, epoch: int, batch: int, out_dir: Path) -> None:
    """Raise DivergenceError if ``t`` holds NaN or inf, saying which checkpoint is still good."""
    if not bool(torch.isfinite(t).all()):
        raise diverged(f"{what} became NaN or infinite", epoch, batch, out_dir)


def check_sizes(config: Config, train_set: TensorDataset) -> None:
    """The circuit's input and output sizes against the data, before anything is built on them."""
    circuit = config.circuit
    layers = circuit.layers
    n_in = train_set.images.shape[1]
    if circuit.input_size != n_in:
        key, value = ("circuit.input_shape", circuit.input_shape) if circuit.convolutional else ("circuit.layers", layers)
        raise ConfigError(key, value, f"an input of {n_in} values for {config.data.name}")
    if layers[-1] != train_set.num_classes:
        raise ConfigError("circuit.layers", layers,
                          f"a last size of {train_set.num_classes} (classes of {config.data.name})")


def prepare(config: Config) -> tuple[torch.device, TensorDataset, TensorDataset, Network]:
    """Torch settings, the data checked against the circuit, and the network as initialised (any backend)."""
    device, dtype = configure_torch(config)
    train_set, test_set = load_splits(config.data.name, root=config.data.dir, device=device, dtype=dtype,
                                      train_subset=config.data.train_subset,
                                      test_subset=config.data.test_subset, download=config.data.download)
    check_sizes(config, train_set)
    return device, train_set, test_set, build_network(config, device, dtype)


@dataclass(frozen=True)
class Epoch:
    """One epoch as the trainer hands it to a backend: which one, its seeds, where a failure is reported."""

    number: int
    """1-based."""
    epochs: int
    """train.epochs (progress bars say 'epoch 3/10')."""
    seed: int
    """The run's seed; every random stream of the epoch derives from (seed, number)."""
    out_dir: Path
    """The run folder (a divergence message names its last good checkpoint)."""
    progress: bool = False
    """Progress bars on a terminal."""

    def generator(self, stream: int) -> torch.Generator:
        """A CPU generator for random stream ``stream`` of this epoch (see :func:`epoch_seed`)."""
        return torch.Generator().manual_seed(epoch_seed(self.seed, self.number, stream))

    def check_finite(self, t: Tensor, what: str, batch: int) -> None:
        check_finite(t, what, self.number, batch, self.out_dir)

    def diverged(self, reason: str, batch: int) -> DivergenceError:
        """The error for a failure found inside a training step (e.g. a device write beyond reason)."""
        return diverged(reason, self.number, batch, self.out_dir)


@dataclass
class EpochMetrics:
    """What one epoch measured; the trainer turns it into the metrics.jsonl row (same keys for every backend)."""

    train_error: float
    test_error: float
    train_loss: float
    test_loss: float
    train_seconds: float
    """Wall time counted as training (samples/s is computed from it)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Backend-specific entries of the row, after the standard ones (e.g. Brian2's simulation speed)."""


class Backend(ABC):
    """A simulator of the network a config describes. The trainer calls, in order: the
    constructor (refusals that need more than the config's values: before any file is written),
    :meth:`build`, :meth:`load_state_dict` on resume, then :meth:`run_epoch` once per epoch and
    :meth:`state_dict` after each, and :meth:`result` at the end."""

    name: ClassVar[str]
    """The value of ``backend.name`` that selects this backend."""

    @classmethod
    def check(cls, config: Config) -> None:
        """What this backend can simulate, checked whenever a config is loaded: raise a
        ConfigError naming the first key it cannot run. The default accepts everything."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.device: torch.device | None = None
        self.train_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None
        self.network: Network | None = None

    def build(self) -> Network:
        """Data and network as initialised from the seed (the trainer measures its initial
        diagnostics and loads a checkpoint into it next); returns the torch network that holds
        the weights between epochs."""
        self.device, self.train_set, self.test_set, self.network = prepare(self.config)
        return self.network

    @abstractmethod
    def run_epoch(self, epoch: Epoch) -> EpochMetrics:
        """Train on the epoch's batches or examples (shuffled and nudged from ``epoch``'s
        generators, states checked with ``epoch.check_finite`` every ``train.check_every``
        batches) and measure the epoch's train and test errors and losses."""

    @abstractmethod
    def evaluate(self, dataset: TensorDataset) -> tuple[float, float]:
        """Error rate and mean cost of the network's free phase on ``dataset``."""

    def state_dict(self) -> dict:
        """What a checkpoint stores: the torch network's state (weights, read-out, devices)."""
        return self.network.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state)

    def progress_note(self, row: dict[str, Any]) -> str:
        """Text added inside the parentheses of the epoch line on stderr (after the seconds)."""
        return ""

    def result(self) -> dict[str, Any]:
        """Entries of result.json about the backend (after the diagnostics, before the synapses)."""
        return {}

    def versions(self) -> dict[str, str]:
        """Versions of the backend's own libraries, added to result.json's ``versions``."""
        return {}

    @classmethod
    def bench_points(cls, config: Config, estimators: Iterable[str] | None,
                     batch_sizes: Iterable[int]) -> list[tuple[str, int]]:
        """The (estimator, batch size) pairs ``neurosim bench`` times; ``estimators`` None: the defaults."""
        return [(name, batch_size) for name in (estimators or [config.estimator.name]) for batch_size in batch_sizes]

    @abstractmethod
    def bench(self, samples: int) -> dict[str, Any]:
        """One row of ``neurosim bench``: training throughput on the config's first ``samples``
        training examples (after a warm-up), evaluation left out. Keys: estimator, batch_size,
        samples, samples_per_second, seconds_per_60k_epoch, T, K, layers, device, dtype, threads."""
