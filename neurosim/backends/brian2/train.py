"""The Brian2 backends (``backend.name: brian2`` and ``brian2-spiking``) behind the trainer's one loop.

Each epoch is one Brian2 run (``brian2.rate``, or ``brian2.spiking``): the training examples in
the epoch's shuffled order with plasticity on, then the test set with plasticity off; train and
test errors come from the free-phase outputs Brian2 recorded. The torch ``ContinuousModel`` of
the config holds the weights between epochs (loaded back from the synapses by their indices), so
the checkpoint, ``--resume`` and ``RunResult.network`` are the torch trainer's. The shuffle and
the signs of beta come from the same seeded generators as torch training, drawn in the same
order by the estimator's own ``draw_beta``: with batch size 1 the torch model trained on the same
config visits the same examples with the same betas (the agreement tests hold the two to 1e-12).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from neurosim.config import Config, load_config
from neurosim.data import TensorDataset, load_splits
from neurosim.errors import ConfigError, NeurosimError
from neurosim.core.estimators import Estimator
from neurosim.core.network import Network, build_network
from neurosim.backends.base import Backend, Epoch, EpochMetrics, epoch_seed, register
from neurosim.backends.brian2.rate import Brian2RateNetwork, Layout, Params, Schedule


def layout_for(config: Config, n_examples: int, n_rows: int) -> Layout:
    """The Brian2 layout (what the compiled code depends on) of a config and data size."""
    c = config.circuit
    return Layout(sizes=tuple(c.layers), activation=c.activation, eps=c.eps, tau_ms=config.backend.tau_ms,
                  clamp=c.clamp, T=config.estimator.T, K=config.estimator.K, rule=config.estimator.name,
                  n_examples=n_examples, n_rows=n_rows)


def torch_params(network: Network) -> Params:
    """(W_n, b_n) of the torch model, float64 numpy copies."""
    m = network.model
    return [(w.detach().cpu().double().numpy().copy(), b.detach().cpu().double().numpy().copy())
            for w, b in zip(m.weights, m.biases)]


@torch.no_grad()
def load_params(network: Network, params: Params) -> None:
    """Write (W_n, b_n) into the torch model (exact: float64 to float64)."""
    m = network.model
    for (w, b), pw, pb in zip(params, m.weights, m.biases):
        pw.copy_(torch.from_numpy(w))
        pb.copy_(torch.from_numpy(b))


def epoch_schedule(epoch: Epoch, estimator: Estimator, n_train: int, n_test: int,
                   data: tuple[np.ndarray, np.ndarray]) -> Schedule:
    """Training examples in the epoch's order with their betas (gate 1), then the test set (gate 0).

    The order is ``TensorDataset.batches``' draw from the shuffle stream and each example's beta
    the estimator's ``draw_beta`` from the beta stream, once per example (batch size 1), as in
    torch training."""
    shuffle_gen, beta_gen = epoch.generator(0), epoch.generator(1)
    order = torch.randperm(n_train, generator=shuffle_gen).numpy()
    betas = np.array([estimator.draw_beta(beta_gen) for _ in range(n_train)], dtype=np.float64)
    beta = estimator.config.beta
    images, targets = data
    return Schedule(images=images, targets=targets,
                    rows=np.concatenate([order, n_train + np.arange(n_test)]),
                    betas=np.concatenate([betas, np.full(n_test, beta)]).astype(np.float64),
                    gates=np.concatenate([np.ones(n_train), np.zeros(n_test)]))


def make_network(config: Config, network: Network, n_examples: int, n_rows: int):
    """The Brian2 network of a config (rate or spiking; devices on spiking synapses, checked by
    ``brian2.spiking.check_devices`` first) holding the torch network's weights, for runs of
    ``n_examples`` examples over a table of ``n_rows``."""
    if config.backend.name == "brian2-spiking":  # spikes and an STDP-style rule (brian2/spiking.py)
        from neurosim.backends.brian2.spiking import Brian2SpikingNetwork, device_configs, layout_for as spiking_layout_for

        n_layers = len(network.model.weights)
        devices = device_configs(network.synapses, n_layers)
        arrays = [network.synapses.arrays[id(w)] if d is not None else None
                  for w, d in zip(network.model.weights, devices)]
        return Brian2SpikingNetwork(spiking_layout_for(config, n_examples, n_rows, devices), torch_params(network),
                                    config.estimator.lr, config.backend.target, config.backend.build_dir,
                                    devices=arrays)
    return Brian2RateNetwork(layout_for(config, n_examples, n_rows), torch_params(network), config.estimator.lr,
                             config.backend.target, config.backend.build_dir)


def _progress_bar(epoch: int, epochs: int):
    from tqdm.auto import tqdm

    return tqdm(total=100, desc=f"epoch {epoch}/{epochs} (Brian2)", unit="%", leave=False, file=sys.stderr,
                disable=None,  # on a terminal only: a log file gets the epoch lines
                bar_format="{desc}: {percentage:3.0f}% simulated |{bar}| {elapsed} < {remaining}")


@register
class Brian2RateBackend(Backend):
    """Rate neurons as Brian2 equations: the continuous-time network, one example at a time, EP
    or C-EP, in float64 on the CPU, with ideal synapses."""

    name = "brian2"
    devices_supported = False
    """Device models on the synapses (the spiking backend simulates them; the rate network does not)."""

    @classmethod
    def check(cls, config: Config) -> None:
        e, synapses = config.estimator, config.synapses
        checks = [
            ("circuit.dynamics", config.circuit.dynamics, config.circuit.dynamics == "continuous",
             "continuous for backend brian2 (the leaky integrators of SPEC §4)"),
            ("estimator.name", e.name, e.name in ("ep", "cep"), "ep or cep for backend brian2 (BPTT has no Brian2 form)"),
            ("estimator.tol", e.tol, e.tol is None,
             "null for backend brian2 (its phases are compiled with fixed lengths T and K)"),
            ("estimator.symmetric", e.symmetric, not e.symmetric,
             "false for backend brian2 (one nudged phase per example; random_sign is supported)"),
            ("estimator.lr_schedule", e.lr_schedule, e.lr_schedule == "constant",
             "constant for backend brian2 (the rates are compiled into the network)"),
            ("loss", config.loss, config.loss == "mse", "mse for backend brian2 (the nudge is beta (y - s))"),
            ("train.batch_size", config.train.batch_size, config.train.batch_size == 1,
             "1 for backend brian2 (one network learns online, example after example)"),
            ("synapses.device", synapses.device,
             cls.devices_supported or (synapses.device == "ideal" and not synapses.layers and not synapses.params),
             "ideal for backend brian2 (device models run in torch and in brian2-spiking)"),
            ("compute.dtype", config.compute.dtype, config.compute.dtype == "float64",
             "float64 for backend brian2 (Brian2 simulates in double precision)"),
            ("compute.device", config.compute.device, config.compute.device == "cpu", "cpu for backend brian2"),
        ]
        for key, value, ok, expected in checks:
            if not ok:
                raise ConfigError(key, value, expected)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.b2net = None  # made at the first epoch, from the weights as built or resumed

    def _data(self, datasets: list[TensorDataset]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images = torch.cat([d.images for d in datasets]).double().numpy()
        labels = torch.cat([d.labels for d in datasets]).numpy()
        return images, labels, np.eye(datasets[0].num_classes)[labels]

    def run_epoch(self, epoch: Epoch) -> EpochMetrics:
        config, network = self.config, self.network
        n_train, n_test = len(self.train_set), len(self.test_set)
        t0 = time.perf_counter()
        if self.b2net is None:
            self.tables = self._data([self.train_set, self.test_set])
            self.b2net = make_network(config, network, n_train + n_test, n_train + n_test)
        b2net, (images, labels, targets) = self.b2net, self.tables
        schedule = epoch_schedule(epoch, network.estimator, n_train, n_test, (images, targets))
        b2net.set_params(torch_params(network))
        if hasattr(b2net, "run_seed"):  # spikes: new, reproducible random numbers every epoch
            b2net.run_seed = epoch_seed(config.seed, epoch.number, 2) % 2**32
        bar = _progress_bar(epoch.number, epoch.epochs) if epoch.progress and config.backend.target == "cpp_standalone" else None
        if bar is not None:  # the compiled binary reports every 2 s of wall time
            b2net.on_progress = lambda fraction, seconds: (setattr(bar, "n", round(100 * fraction, 1)), bar.refresh())
        try:
            out = b2net.run(schedule)
        finally:
            if bar is not None:
                bar.close()
                b2net.on_progress = None
        load_params(network, b2net.params)
        seconds = time.perf_counter() - t0
        for name, p in network.model.named_parameters():
            epoch.check_finite(p, f"parameter {name}", n_train)
        free = out.free_outputs
        wrong = free.argmax(1) != labels[schedule.rows]
        loss = 0.5 * ((free - targets[schedule.rows]) ** 2).sum(1)
        extra = {
            "brian2_examples_per_second": round((n_train + n_test) / out.seconds, 1),
            "brian2_simulation_seconds": round(out.seconds, 3),
            # CPU time of the simulation: its throughput whatever else runs on the machine
            "brian2_examples_per_cpu_second": round((n_train + n_test) / max(out.cpu_seconds, 1e-9), 1),
            "brian2_build_seconds": round(b2net.build_seconds, 3),
            "brian2_build_cpu_seconds": round(b2net.build_cpu_seconds, 3),
        }
        b2net.build_seconds = b2net.build_cpu_seconds = 0.0
        return EpochMetrics(
            train_error=float(wrong[:n_train].mean()),
            test_error=float(wrong[n_train:].mean()) if n_test else float("nan"),
            train_loss=float(loss[:n_train].mean()),
            test_loss=float(loss[n_train:].mean()) if n_test else float("nan"),
            # One Brian2 run simulates the training and the test examples: its whole wall time
            # is counted as training time (a conservative samples/s).
            train_seconds=seconds, extra=extra)

    def evaluate(self, dataset: TensorDataset) -> tuple[float, float]:
        """The free phase of ``dataset`` through a Brian2 network of this backend (plasticity off)."""
        return free_phase(self.config, self.network, dataset, self.name == "brian2-spiking",
                          self.config.backend.target, self.config.backend.build_dir)[:2]

    def progress_note(self, row: dict[str, Any]) -> str:
        return f", Brian2 {row['brian2_examples_per_second']:.0f} examples/s"

    def result(self) -> dict[str, Any]:
        b = self.config.backend
        return {"backend": {"name": b.name, "target": b.target,
                            "build_dir": str(self.b2net.build_dir) if b.target == "cpp_standalone" else None}}

    def versions(self) -> dict[str, str]:
        import brian2

        return {"brian2": brian2.__version__}

    @classmethod
    def bench_points(cls, config: Config, estimators: Iterable[str] | None,
                     batch_sizes: Iterable[int]) -> list[tuple[str, int]]:
        """One example at a time, whatever batch sizes are asked for; the config's own estimator by default."""
        return [(name, 1) for name in (estimators or [config.estimator.name])]

    def bench(self, samples: int) -> dict[str, Any]:
        """Examples/s of the network learning the training examples (one run, after a first run of
        the same size that builds or loads the compiled project)."""
        config, network = self.config, self.network
        images, _, targets = self._data([self.train_set])
        n = len(self.train_set)
        b2net = make_network(config, network, n, n)
        schedule = Schedule(images, targets, np.arange(n), np.full(n, config.estimator.beta), np.ones(n))
        b2net.run(schedule)  # build (or load) and warm up
        b2net.set_params(torch_params(network))
        out = b2net.run(schedule)
        return {"estimator": config.estimator.name, "batch_size": 1, "samples": n,
                "samples_per_second": round(n / out.seconds, 1),
                "samples_per_cpu_second": round(n / max(out.cpu_seconds, 1e-9), 1),
                "seconds_per_60k_epoch": round(60000 * out.seconds / n, 2),
                "T": config.estimator.T, "K": config.estimator.K, "layers": config.circuit.layers,
                "device": f"{config.backend.name} ({config.backend.target})", "dtype": "float64", "threads": 1,
                "build_seconds": round(b2net.build_seconds, 2)}


@register
class Brian2SpikingBackend(Brian2RateBackend):
    """Spiking neurons and an STDP-style rule (``brian2.spiking``), with device models on the synapses."""

    name = "brian2-spiking"
    devices_supported = True

    @classmethod
    def check(cls, config: Config) -> None:
        e, window = config.estimator, config.backend.window
        if e.name not in ("ep", "cep"):
            raise ConfigError("estimator.name", e.name,
                              "ep or cep for backend brian2-spiking (updates at the end of each example, or continually)")
        if not window <= min(e.T, e.K):
            raise ConfigError("backend.window", window, f"at most min(estimator.T, estimator.K) = {min(e.T, e.K)} steps")
        super().check(config)

    def __init__(self, config: Config) -> None:
        from neurosim.backends.brian2.spiking import check_devices

        check_devices(config)  # devices it cannot simulate: refused before any file is written
        super().__init__(config)


def free_phase(config: Config, network: Network, dataset: TensorDataset, spiking: bool, target: str,
               build_dir: str | None) -> tuple[float, float, np.ndarray, float]:
    """Test error, loss, free-phase outputs and Brian2 seconds of ``dataset`` run through Brian2 with
    the network's weights and plasticity off (rate network, or the spiking one read as free-window
    firing rates; K = window nudged steps keep the phases' layout, unused at gate 0)."""
    n = len(dataset)
    images = dataset.images.double().numpy()
    targets = np.eye(dataset.num_classes)[dataset.labels.numpy()]
    lrs = [0.0] * (len(config.circuit.layers) - 1)
    if spiking:
        from neurosim.backends.brian2.spiking import Brian2SpikingNetwork, layout_for as spiking_layout_for

        layout = replace(spiking_layout_for(config, n, n), K=config.backend.window, rule="ep")
        b2net = Brian2SpikingNetwork(layout, torch_params(network), lrs, target, build_dir)
    else:
        layout = Layout(sizes=tuple(config.circuit.layers), activation=config.circuit.activation,
                        eps=config.circuit.eps, tau_ms=config.backend.tau_ms, clamp=config.circuit.clamp,
                        T=config.estimator.T, K=0, rule="ep", n_examples=n, n_rows=n)
        b2net = Brian2RateNetwork(layout, torch_params(network), lrs, target, build_dir)
    beta = config.estimator.beta or 1.0
    out = b2net.run(Schedule(images, targets, np.arange(n), np.full(n, beta), np.zeros(n)))
    wrong = out.free_outputs.argmax(1) != dataset.labels.numpy()
    return (float(wrong.mean()), float((0.5 * (out.free_outputs - targets) ** 2).sum(1).mean()),
            out.free_outputs, out.seconds)


def evaluate_brian2(run: str | Path, target: str = "numpy", data_dir: str | None = None,
                    test_subset: int | None = None, build_dir: str | None = None,
                    network: str = "auto") -> dict[str, Any]:
    """Run a trained network's test set through Brian2 (free phase only), whichever backend trained it.

    ``run`` is a run folder or its ``checkpoint.pt``; the circuit must have continuous dynamics
    (a torch ``mnist_ct1_ep`` run, or a Brian2 one). The weights go into the synapses by their
    indices; returns the test error and loss and the free-phase outputs, as Brian2 computed them.
    ``network``: 'rate' (the leaky integrators), 'spiking' (the spiking network of the run's
    backend settings, outputs read as free-window firing rates) or 'auto' (spiking for a
    brian2-spiking run, else rate). ``test_subset`` defaults to the run's own ``data.test_subset``.
    """
    if network not in ("auto", "rate", "spiking"):
        raise ConfigError("network", network, "auto, rate or spiking")
    path = Path(run)
    checkpoint = path / "checkpoint.pt" if path.is_dir() else path
    if not checkpoint.exists():
        raise NeurosimError(f"no checkpoint at {checkpoint}")
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = load_config(saved["config"], [] if data_dir is None else [f"data.dir={data_dir}"])
    if config.circuit.dynamics != "continuous":
        raise ConfigError("circuit.dynamics", config.circuit.dynamics,
                          "continuous: only the leaky-integrator network has a Brian2 form")
    spiking = network == "spiking" or (network == "auto" and config.backend.name == "brian2-spiking")
    model = build_network(config, "cpu", torch.float64)
    model.load_state_dict(saved["network"])
    _, test_set = load_splits(config.data.name, root=config.data.dir, dtype=torch.float64,
                              train_subset=1, download=config.data.download,
                              test_subset=test_subset if test_subset is not None else config.data.test_subset)
    error, loss, outputs, seconds = free_phase(config, model, test_set, spiking, target, build_dir)
    return {"test_error": error, "test_loss": loss, "test_samples": len(test_set),
            "network": "spiking" if spiking else "rate", "free_outputs": outputs, "seconds": seconds}
