"""Training runs: the one epoch loop of every backend, with metrics, checkpoints, resume, results.

The simulation itself is the backend's (``neurosim.backends``: torch, Brian2 rate, Brian2
spiking, or any registered one); everything around it is here, once, so that every backend's
run folder, resume, divergence checks and warnings behave the same. A run writes into one folder: ``config.yaml`` (resolved), ``metrics.jsonl`` (a line per
epoch), ``checkpoint.pt`` (after every epoch), ``result.json`` and ``curves.png``. Every file
is replaced atomically, so a run killed at any moment can be continued with ``resume=True``.
Shuffling and the sign of beta come from generators seeded by (seed, epoch), so a resumed
run ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from neurosim.version import __version__
from neurosim.config import Config, load_config, save_config
from neurosim.data import TensorDataset
from neurosim.errors import ConfigError, NeurosimError, NeurosimWarning, arg
from neurosim.io import atomic_torch_save, atomic_write_json, atomic_write_text
from neurosim.core.network import Network
from neurosim.core.schedules import lr_factor
from neurosim.backends import get_backend
from neurosim.backends.base import CHECKPOINT, Backend, Epoch, prepare
from neurosim.backends.torch import evaluate  # noqa: F401  (its old home: studies and tests import it here)

RESUMABLE_CHANGES = {"name", "train.epochs", "compute.device", "compute.threads", "compute.fused", "data.dir", "data.download",
                     "gdu", "gdu.etas", "gdu.batch_size", "gdu.synapses_per_layer", "gdu.seed",
                     "estimator.tol_scope", "estimator.tol_every"}
"""Keys that may differ between an interrupted run and its resumption: what it is called, where it
runs, how long it goes on and how fast it computes, not what (a run of one experiment continues
under another with the same settings, e.g. a 15-epoch study point extended to a 30-epoch one).
The two tolerance keys only decide how many steps a phase spends reaching the same fixed points
within ``estimator.tol`` (each epoch's steps are in metrics.jsonl, so a switch shows there)."""


@dataclass
class RunResult:
    """What ``train`` returns (and writes to result.json)."""

    out_dir: Path
    test_error: float
    train_error: float
    epochs: int
    wall_seconds: float
    samples_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)
    network: Network | None = None

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("history", "network", "out_dir")}


def train(config: Config | str | Path | Mapping[str, Any], out: str | Path | None = None,
          resume: bool = False, overrides: list[str] | None = None, progress: bool = True) -> RunResult:
    """Train the network a config describes; the Python twin of ``neurosim train``.

    ``config`` is a Config, a YAML path, a shipped experiment name or a mapping; ``overrides``
    are ``key=value`` strings as for ``--set``. ``out`` defaults to ``runs/<config.name>``.
    Whatever the backend (``neurosim.backends``), the run is this one loop.
    """
    if not isinstance(config, Config):
        config = load_config(config, overrides)
    elif overrides:
        config = load_config(config.to_dict(), overrides)
    out_dir = Path(out) if out is not None else Path("runs") / config.name
    backend = get_backend(config.backend.name)(config)  # its refusals come before any file is touched
    start_epoch, history, previous_seconds, saved_state = prepare_out_dir(config, out_dir, resume)

    network = backend.build()
    train_set, test_set = backend.train_set, backend.test_set
    initial = network.model.diagnostics()  # before any saved state: the network as initialised
    if saved_state is not None:
        backend.load_state_dict(saved_state)
    # Made only now, so that a run stopped by missing data or a bad model leaves no empty folder.
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")

    t_run = time.perf_counter()
    initial_weights = _flat_parameters(network) if start_epoch == 0 else None
    for epoch in range(start_epoch + 1, config.train.epochs + 1):
        network.estimator.lr_scale = lr_factor(config.estimator, epoch, config.train.epochs)
        row = _run_epoch(backend, Epoch(epoch, config.train.epochs, config.seed, out_dir, progress))
        if epoch == 1 and initial_weights is not None:
            moved = float((_flat_parameters(network) - initial_weights).norm() / initial_weights.norm())
            if message := chance_level_warning(config, row, train_set, moved):
                row["warning"] = message  # kept in metrics.jsonl and the checkpoint's history
        history.append(row)
        save_epoch(out_dir, config, backend, history, previous_seconds + time.perf_counter() - t_run)
        if progress:
            print(f"epoch {epoch}/{config.train.epochs}: train error {row['train_error']:.2%}, "
                  f"test error {row['test_error']:.2%} ({row['seconds']:.1f} s{backend.progress_note(row)})"
                  + "".join(f", {k} {v}" for k, v in network.model.diagnostics().items()), file=sys.stderr)
        if "warning" in row:
            warnings.warn(row["warning"], NeurosimWarning, stacklevel=2)

    wall = previous_seconds + time.perf_counter() - t_run
    last = history[-1]
    train_seconds = sum(r["train_seconds"] for r in history)
    result = RunResult(out_dir=out_dir, test_error=last["test_error"], train_error=last["train_error"],
                       epochs=last["epoch"], wall_seconds=round(wall, 3),
                       samples_per_second=round(len(train_set) * len(history) / train_seconds, 1),
                       history=history, network=network)
    warned = [r["warning"] for r in history if "warning" in r]
    atomic_write_json(out_dir / "result.json", {
        "name": config.name, **result.summary(),
        "best_test_error": min(r["test_error"] for r in history),
        **({"warnings": warned} if warned else {}),
        **({"initial": initial, "final": network.model.diagnostics()} if initial else {}),
        **backend.result(),
        **({"synapses": {"device": config.synapses.device, **network.synapses.report()}}
           if not network.synapses.ideal else {}),
        "train_samples": len(train_set), "test_samples": len(test_set),
        "machine": machine_info(backend.device), "versions": {**versions(), **backend.versions()}})
    return result


def prepare_run(config: Config) -> tuple[torch.device, TensorDataset, TensorDataset, Network]:
    """Torch settings, the data checked against the circuit, and the network as initialised (any
    backend; ``neurosim.backends.base.prepare``)."""
    return prepare(config)


def save_epoch(out_dir: Path, config: Config, backend: Backend | Network, history: list[dict[str, Any]],
               wall_seconds: float) -> None:
    """After every epoch: the checkpoint a resume starts from, metrics.jsonl and the curves, each
    replaced atomically."""
    atomic_torch_save(out_dir / CHECKPOINT, {
        "epoch": history[-1]["epoch"], "network": backend.state_dict(), "history": history,
        "config": config.to_dict(), "wall_seconds": wall_seconds})
    atomic_write_text(out_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    _plot(out_dir, history, config.name)


def _run_epoch(backend: Backend, epoch: Epoch) -> dict[str, Any]:
    """One epoch through the backend, as the row metrics.jsonl keeps (the same keys, in the same
    order, for every backend: the standard ones, the backend's own, then the schedule's factor,
    the model's diagnostics and the synapses' counters)."""
    config, network = backend.config, backend.network
    t0 = time.perf_counter()
    m = backend.run_epoch(epoch)
    n_train = len(backend.train_set)
    return {"epoch": epoch.number, "train_error": m.train_error, "test_error": m.test_error,
            "train_loss": m.train_loss, "test_loss": m.test_loss,
            "seconds": round(time.perf_counter() - t0, 3), "train_seconds": round(m.train_seconds, 3),
            "samples_per_second": round(n_train / m.train_seconds, 1), **m.extra,
            **({"lr_scale": round(network.estimator.lr_scale, 6)}
               if config.estimator.lr_schedule != "constant" else {}),
            **network.model.diagnostics(), **network.synapses.report()}


CHANCE_MARGIN = 0.95
"""Chance level: train and test errors after epoch 1 both at least this fraction of the error of
a trivial classifier (the better of guessing and of always answering the most frequent class):
0.84 on MNIST."""
MOVED_FAR = 1.0
"""...and the weights moved by more than their initial norm in that epoch (relative change).
Measured on the bundled sample after one epoch: learning rates of 1e4 to 1e6 move them 5e4 to
3e7 times; EP at the paper's rates 0.08, C-EP at its rates (slow: still at chance after 400
digits, with or without device noise) and EP at rates 1e-4 (too small) 0.0003 to 0.09."""


def chance_level_warning(config: Config, row: Mapping[str, Any], train_set: TensorDataset,
                         moved: float) -> str | None:
    """The warning for a first epoch that ended at chance-level error while the weights moved far
    (``moved``: ||W_1 - W_0|| / ||W_0|| over all parameters), else None. A slow run, one on a few
    hundred digits or at small rates, is at chance too but its weights barely move: no warning."""
    counts = torch.bincount(train_set.labels.cpu(), minlength=train_set.num_classes)
    trivial = min(1 - 1 / train_set.num_classes, 1 - float(counts.max()) / len(train_set))
    if min(row["train_error"], row["test_error"]) < CHANCE_MARGIN * trivial or not moved > MOVED_FAR:
        return None
    return (f"train error {row['train_error']:.1%} and test error {row['test_error']:.1%} after epoch 1 are at "
            f"chance level ({trivial:.1%}, the error of a trivial classifier on {config.data.name}) and the "
            f"weights moved {moved:.3g} times their initial norm: the learning rates may be too large "
            f"(estimator.lr = {config.estimator.lr}); try rates 10 to 100 times smaller")


def _flat_parameters(network: Network) -> Tensor:
    return torch.cat([p.detach().flatten().to(torch.float64) for p in network.model.parameters()])


def prepare_out_dir(config: Config, out_dir: Path, resume: bool
                     ) -> tuple[int, list[dict[str, Any]], float, dict | None]:
    """Start a run folder, or reload it for --resume; never overwrite a finished or started run."""
    checkpoint = out_dir / CHECKPOINT
    if not resume:
        if checkpoint.exists() or (out_dir / "result.json").exists():
            raise NeurosimError(f"{out_dir} already holds a run; pass {arg('resume=True', '--resume')} to continue "
                                f"it, or choose another run folder ({arg('out=...', '--out')})")
        return 0, [], 0.0, None  # the folder is made once data and model are ready (train())
    if not checkpoint.exists():
        raise NeurosimError(f"cannot resume: {checkpoint} does not exist (start the run without "
                            f"{arg('resume=True', '--resume')})")
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception as exc:  # a checkpoint written atomically is whole; this is another file
        raise NeurosimError(f"cannot resume: {checkpoint} is not a readable checkpoint ({exc})") from None
    # Keys added to the config since the run started take their defaults in the saved config.
    started = with_defaults(saved["config"], Config().to_dict())
    resumable = RESUMABLE_CHANGES
    if config.estimator.lr_schedule != "constant":  # the schedule spans train.epochs
        resumable = resumable - {"train.epochs"}
    changed = config_differences(started, config.to_dict()) - resumable
    if changed:
        raise ConfigError(sorted(changed)[0], "(changed)",
                          f"the value the run was started with, to resume it (changed: {sorted(changed)})")
    if saved["epoch"] >= config.train.epochs:
        raise NeurosimError(f"{out_dir} already finished {saved['epoch']} epochs; "
                            f"raise train.epochs to train further")
    return saved["epoch"], saved["history"], saved["wall_seconds"], saved["network"]


def with_defaults(saved: Any, defaults: Any) -> Any:
    """``saved`` with the sections and keys it lacks taken from ``defaults`` (recursively): a
    config saved before a key existed compares as if it had the key's default."""
    if not isinstance(saved, dict) or not isinstance(defaults, dict):
        return saved
    return {**defaults, **{k: with_defaults(v, defaults.get(k)) for k, v in saved.items()}}


def config_differences(a: Any, b: Any, prefix: str = "") -> set[str]:
    """The dotted keys whose values differ between two config dicts (resume and sweeps refuse them)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        return set().union(*(config_differences(a.get(k), b.get(k), f"{prefix}{k}.") for k in keys)) if keys else set()
    return set() if a == b else {prefix.rstrip(".")}


def _plot(out_dir: Path, history: list[dict[str, Any]], title: str) -> None:
    from neurosim.run.plots import plot_curves

    plot_curves(history, out_dir / "curves.png", title)


def machine_info(device: torch.device) -> dict[str, Any]:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def versions() -> dict[str, str]:
    import numpy

    return {"neurosim": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__}
