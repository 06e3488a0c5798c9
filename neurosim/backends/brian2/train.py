"""``neurosim.train`` with ``backend: brian2``: the same run folder, metrics and result as torch.

Each epoch is one Brian2 run (``brian2_rate``): the training examples in the epoch's shuffled
order with plasticity on, then the test set with plasticity off; train and test errors come
from the free-phase outputs Brian2 recorded. The torch ``ContinuousModel`` of the config holds
the weights between epochs (loaded back from the synapses by their indices), so the checkpoint,
``--resume`` and ``RunResult.network`` are the torch trainer's. The shuffle and the signs of
beta come from the same seeded generators as torch training, drawn in the same order: with
batch size 1 the torch model trained on the same config visits the same examples with the
same betas (the agreement tests hold the two to 1e-12).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosim.config import Config, save_config
from neurosim.data import TensorDataset, load_splits
from neurosim.io import atomic_write_json
from neurosim.core.network import Network, build_network
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


def epoch_schedule(config: Config, train_set: TensorDataset, test_set: TensorDataset, epoch: int,
                   data: tuple[np.ndarray, np.ndarray]) -> Schedule:
    """Training examples in the epoch's order with their betas (gate 1), then the test set (gate 0)."""
    from neurosim.run.trainer import _epoch_seed

    shuffle_gen = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch, 0))
    beta_gen = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch, 1))
    n_train, n_test = len(train_set), len(test_set)
    order = torch.randperm(n_train, generator=shuffle_gen).numpy()  # TensorDataset.batches' draw
    beta = config.estimator.beta
    if config.estimator.random_sign:  # Estimator.draw_beta, once per example (batch size 1)
        flips = np.array([torch.randint(0, 2, (1,), generator=beta_gen).item() for _ in range(n_train)])
        betas = np.where(flips == 1, -beta, beta)
    else:
        betas = np.full(n_train, beta)
    images, targets = data
    return Schedule(images=images, targets=targets,
                    rows=np.concatenate([order, n_train + np.arange(n_test)]),
                    betas=np.concatenate([betas, np.full(n_test, beta)]).astype(np.float64),
                    gates=np.concatenate([np.ones(n_train), np.zeros(n_test)]))


def bench_brian2(config: Config, samples: int) -> dict[str, Any]:
    """Examples/s of a Brian2 config's network learning ``samples`` training examples (one run,
    after a first run of the same size that builds or loads the compiled project)."""
    from neurosim.config import load_config
    from neurosim.run.trainer import prepare_run

    config = load_config(config.to_dict(), [f"data.train_subset={samples}", "data.test_subset=1"])
    if config.backend.name == "brian2-spiking":
        from neurosim.backends.brian2.spiking import check_devices

        check_devices(config)
    _, train_set, _, network = prepare_run(config)
    images = train_set.images.double().numpy()
    targets = np.eye(train_set.num_classes)[train_set.labels.numpy()]
    n = len(train_set)
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


def make_network(config: Config, network: Network, n_examples: int, n_rows: int):
    """The Brian2 network of a config (rate or spiking; devices on spiking synapses, checked by
    ``brian2_spiking.check_devices`` first) holding the torch network's weights, for runs of
    ``n_examples`` examples over a table of ``n_rows``."""
    if config.backend.name == "brian2-spiking":  # spikes and an STDP-style rule (brian2_spiking.py)
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


def train_brian2(config: Config, out_dir: Path, resume: bool, progress: bool):
    """The body of ``neurosim.train`` for Brian2 backends (see the module docstring)."""
    from neurosim.run.trainer import (
        RunResult,
        _prepare_out_dir,
        machine_info,
        prepare_run,
        save_epoch,
        versions,
    )

    if config.backend.name == "brian2-spiking":  # devices it cannot simulate: refused before any file is written
        from neurosim.backends.brian2.spiking import check_devices

        check_devices(config)
    start_epoch, history, previous_seconds, saved_state = _prepare_out_dir(config, out_dir, resume)
    device, train_set, test_set, network = prepare_run(config)
    if saved_state is not None:
        network.load_state_dict(saved_state)
    out_dir.mkdir(parents=True, exist_ok=True)  # as in trainer.train: only once data and model are ready
    save_config(config, out_dir / "config.yaml")

    n_train, n_test = len(train_set), len(test_set)
    classes = train_set.num_classes
    images = torch.cat([train_set.images, test_set.images]).double().numpy()
    labels = torch.cat([train_set.labels, test_set.labels]).numpy()
    targets = np.eye(classes)[labels]
    b2net = make_network(config, network, n_train + n_test, n_train + n_test)

    t_run = time.perf_counter()
    for epoch in range(start_epoch + 1, config.train.epochs + 1):
        t0 = time.perf_counter()
        schedule = epoch_schedule(config, train_set, test_set, epoch, (images, targets))
        b2net.set_params(torch_params(network))
        if hasattr(b2net, "run_seed"):  # spikes: new, reproducible random numbers every epoch
            from neurosim.run.trainer import _epoch_seed

            b2net.run_seed = _epoch_seed(config.seed, epoch, 2) % 2**32
        bar = _progress_bar(epoch, config.train.epochs) if progress and config.backend.target == "cpp_standalone" else None
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
        free = out.free_outputs
        y = targets[schedule.rows]
        wrong = free.argmax(1) != labels[schedule.rows]
        loss = 0.5 * ((free - y) ** 2).sum(1)
        for name, p in network.model.named_parameters():
            if not bool(torch.isfinite(p).all()):
                from neurosim.run.trainer import _check_finite

                _check_finite(p, f"parameter {name}", epoch, n_train, out_dir)
        row: dict[str, Any] = {
            "epoch": epoch, "train_error": float(wrong[:n_train].mean()),
            "test_error": float(wrong[n_train:].mean()) if n_test else float("nan"),
            "train_loss": float(loss[:n_train].mean()),
            "test_loss": float(loss[n_train:].mean()) if n_test else float("nan"),
            "seconds": round(seconds, 3),
            # One Brian2 run simulates the training and the test examples: its whole wall time
            # is counted as training time (a conservative samples/s).
            "train_seconds": round(seconds, 3),
            "samples_per_second": round(n_train / seconds, 1),
            "brian2_examples_per_second": round((n_train + n_test) / out.seconds, 1),
            "brian2_simulation_seconds": round(out.seconds, 3),
            # CPU time of the simulation: its throughput whatever else runs on the machine
            "brian2_examples_per_cpu_second": round((n_train + n_test) / max(out.cpu_seconds, 1e-9), 1),
            "brian2_build_seconds": round(b2net.build_seconds, 3),
            "brian2_build_cpu_seconds": round(b2net.build_cpu_seconds, 3),
            **network.synapses.report(),
        }
        b2net.build_seconds = b2net.build_cpu_seconds = 0.0
        history.append(row)
        save_epoch(out_dir, config, network, history, previous_seconds + time.perf_counter() - t_run)
        if progress:
            print(f"epoch {epoch}/{config.train.epochs}: train error {row['train_error']:.2%}, "
                  f"test error {row['test_error']:.2%} ({row['seconds']:.1f} s, Brian2 "
                  f"{row['brian2_examples_per_second']:.0f} examples/s)", file=sys.stderr)

    wall = previous_seconds + time.perf_counter() - t_run
    last = history[-1]
    train_seconds = sum(r["train_seconds"] for r in history)
    result = RunResult(out_dir=out_dir, test_error=last["test_error"], train_error=last["train_error"],
                       epochs=last["epoch"], wall_seconds=round(wall, 3),
                       samples_per_second=round(n_train * len(history) / train_seconds, 1),
                       history=history, network=network)
    import brian2

    atomic_write_json(out_dir / "result.json", {
        "name": config.name, **result.summary(),
        "best_test_error": min(r["test_error"] for r in history),
        "backend": {"name": config.backend.name, "target": config.backend.target,
                    "build_dir": str(b2net.build_dir) if config.backend.target == "cpp_standalone" else None},
        **({"synapses": {"device": config.synapses.device, **network.synapses.report()}}
           if not network.synapses.ideal else {}),
        "train_samples": n_train, "test_samples": n_test,
        "machine": machine_info(device), "versions": {**versions(), "brian2": brian2.__version__}})
    return result


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
    from neurosim.config import load_config
    from neurosim.errors import ConfigError, NeurosimError

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
    n = len(test_set)
    images = test_set.images.double().numpy()
    targets = np.eye(test_set.num_classes)[test_set.labels.numpy()]
    lrs = [0.0] * (len(config.circuit.layers) - 1)
    if spiking:  # the free window must fit in the phases: K = window nudged steps, unused (gate 0)
        from dataclasses import replace

        from neurosim.backends.brian2.spiking import Brian2SpikingNetwork, layout_for as spiking_layout_for

        layout = replace(spiking_layout_for(config, n, n), K=config.backend.window, rule="ep")
        b2net = Brian2SpikingNetwork(layout, torch_params(model), lrs, target, build_dir)
    else:
        layout = Layout(sizes=tuple(config.circuit.layers), activation=config.circuit.activation,
                        eps=config.circuit.eps, tau_ms=config.backend.tau_ms, clamp=config.circuit.clamp,
                        T=config.estimator.T, K=0, rule="ep", n_examples=n, n_rows=n)
        b2net = Brian2RateNetwork(layout, torch_params(model), lrs, target, build_dir)
    beta = config.estimator.beta or 1.0
    out = b2net.run(Schedule(images, targets, np.arange(n), np.full(n, beta), np.zeros(n)))
    wrong = out.free_outputs.argmax(1) != test_set.labels.numpy()
    return {"test_error": float(wrong.mean()), "test_loss": float((0.5 * (out.free_outputs - targets) ** 2).sum(1).mean()),
            "test_samples": n, "network": "spiking" if spiking else "rate", "free_outputs": out.free_outputs,
            "seconds": out.seconds}
