"""Training throughput (samples/s) of the estimators at several batch sizes.

Used to re-measure the README's speed table: it times ``train_step`` (free phase, nudged
phase or backpropagation, and the update) on real data, after a short warm-up, exactly as
the trainer runs it, and leaves evaluation out.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import torch

from neurosim.config import Config, load_config
from neurosim.data import load_splits
from neurosim.core.network import build_network, configure_torch


def bench(config: Config | str | Path | Mapping[str, Any] = "mnist_fc1_ep", batch_sizes: list[int] = (20, 128, 512),
          estimators: list[str] | None = None, samples: int = 6000,
          overrides: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (estimator, batch size): samples/s and the implied seconds per MNIST epoch.

    ``estimators`` defaults to EP and BPTT; a Brian2 config (``backend.name`` brian2 or
    brian2-spiking) is timed as it would train, one example at a time, with its own estimator.
    """
    base = config.to_dict() if isinstance(config, Config) else config
    first = load_config(base, list(overrides or []))
    if first.backend.name != "torch":
        from neurosim.backends.brian2.train import bench_brian2

        return [bench_brian2(load_config(base, list(overrides or []) + [f"estimator.name={name}"]), samples)
                for name in (estimators or [first.estimator.name])]
    estimators = estimators or ["ep", "bptt"]
    rows = []
    for name in estimators:
        for batch_size in batch_sizes:
            cfg = load_config(base, list(overrides or []) + [f"estimator.name={name}",
                                                            f"train.batch_size={batch_size}"])
            device, dtype = configure_torch(cfg)
            train_set, _ = load_splits(cfg.data.name, root=cfg.data.dir, device=device, dtype=dtype,
                                       train_subset=samples, test_subset=1, download=cfg.data.download)
            network = build_network(cfg, device, dtype)
            y_all = torch.nn.functional.one_hot(train_set.labels, train_set.num_classes).to(dtype)
            batches = [(x, y_all[i * batch_size:(i + 1) * batch_size])
                       for i, (x, _) in enumerate(train_set.batches(batch_size, shuffle=False, drop_last=True))]
            generator = torch.Generator().manual_seed(0)
            for x, y in batches[:3]:  # warm-up: allocator, kernels, lazy initialisations
                network.estimator.train_step(x, y, generator)
            _sync(device)
            t0 = time.perf_counter()
            for x, y in batches:
                network.estimator.train_step(x, y, generator)
            _sync(device)
            seconds = time.perf_counter() - t0
            done = len(batches) * batch_size
            rows.append({"estimator": name, "batch_size": batch_size, "samples": done,
                         "samples_per_second": round(done / seconds, 1),
                         "seconds_per_60k_epoch": round(60000 * seconds / done, 2),
                         "T": cfg.estimator.T, "K": cfg.estimator.K, "layers": cfg.circuit.layers,
                         "device": str(device), "dtype": cfg.compute.dtype,
                         "threads": torch.get_num_threads()})
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'estimator':<10}{'batch':>7}{'samples/s':>12}{'s/epoch(60k)':>14}  device (threads)"]
    if rows and "samples_per_cpu_second" in rows[0]:
        lines[0] += "  samples/CPU-s  build s"
    for r in rows:
        lines.append(f"{r['estimator']:<10}{r['batch_size']:>7}{r['samples_per_second']:>12.0f}"
                     f"{r['seconds_per_60k_epoch']:>14.2f}  {r['device']} ({r['threads']})"
                     + (f"  {r['samples_per_cpu_second']:>13.0f}  {r['build_seconds']:>7.1f}"
                        if "samples_per_cpu_second" in r else ""))
    return "\n".join(lines)
