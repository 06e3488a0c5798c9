"""Training throughput (samples/s) of the estimators at several batch sizes.

Used to re-measure the README's speed table: it times ``train_step`` (free phase, nudged
phase or backpropagation, and the update) on real data, after a short warm-up, exactly as
the trainer runs it, and leaves evaluation out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from neurosim.config import Config, load_config
from neurosim.backends import get_backend


def bench(config: Config | str | Path | Mapping[str, Any] = "mnist_fc1_ep", batch_sizes: list[int] = (20, 128, 512),
          estimators: list[str] | None = None, samples: int = 6000,
          overrides: list[str] | None = None, rounds: int = 3) -> list[dict[str, Any]]:
    """One row per (estimator, batch size): samples/s and the implied seconds per MNIST epoch.

    The config's backend says what it times (``Backend.bench_points`` and ``Backend.bench``):
    torch times EP and BPTT by default at every batch size; a Brian2 config (``backend.name``
    brian2 or brian2-spiking) is timed as it would train, one example at a time, with its own
    estimator.

    With synapses on devices (``synapses.device`` or per-layer devices), each row also times the
    same config on ideal synapses, interleaved with the device runs (``rounds`` times each, the
    best of each kept), and reports ``vs_ideal``: how many times slower the device run is. On a
    shared or noisy machine only such a side-by-side ratio means something.
    """
    base = config.to_dict() if isinstance(config, Config) else config
    first = load_config(base, list(overrides or []))
    backend_class = get_backend(first.backend.name)
    on_devices = _on_devices(first)
    rows = []
    for name, batch_size in backend_class.bench_points(first, estimators, batch_sizes):
        point = list(overrides or []) + [f"estimator.name={name}", f"train.batch_size={batch_size}",
                                         f"data.train_subset={samples}", "data.test_subset=1"]
        backend = backend_class(load_config(base, point))
        backend.build()
        if not on_devices:
            rows.append(backend.bench(samples))
            continue
        ideal = backend_class(load_config(base, point + ["synapses.device=ideal", "synapses.layers=[]"]))
        ideal.build()
        device_rows, ideal_rows = [], []
        for _ in range(max(1, rounds)):  # interleaved: a drift of the machine's speed hits both
            device_rows.append(backend.bench(samples))
            ideal_rows.append(ideal.bench(samples))
        row = max(device_rows, key=lambda r: r["samples_per_second"])
        best_ideal = max(r["samples_per_second"] for r in ideal_rows)
        row["ideal_samples_per_second"] = best_ideal
        row["vs_ideal"] = round(best_ideal / row["samples_per_second"], 2)
        row["synapses"] = first.synapses.device
        rows.append(row)
    return rows


def _on_devices(config: Config) -> bool:
    """Whether any weight layer of the config is on (non-ideal) devices."""
    synapses = config.synapses
    if synapses.device != "ideal":
        return True
    return any((layer.get("device") if isinstance(layer, Mapping) else getattr(layer, "device", None))
               not in (None, "ideal") for layer in (synapses.layers or []))


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'estimator':<10}{'batch':>7}{'samples/s':>12}{'s/epoch(60k)':>14}  device (threads)"]
    if rows and "samples_per_cpu_second" in rows[0]:
        lines[0] += "  samples/CPU-s  build s"
    if rows and "vs_ideal" in rows[0]:
        lines[0] += "  vs ideal (same run)"
    for r in rows:
        lines.append(f"{r['estimator']:<10}{r['batch_size']:>7}{r['samples_per_second']:>12.0f}"
                     f"{r['seconds_per_60k_epoch']:>14.2f}  {r['device']} ({r['threads']})"
                     + (f"  {r['samples_per_cpu_second']:>13.0f}  {r['build_seconds']:>7.1f}"
                        if "samples_per_cpu_second" in r else "")
                     + (f"  {r['vs_ideal']:.2f}x slower ({r['ideal_samples_per_second']:.0f} samples/s ideal)"
                        if "vs_ideal" in r else ""))
    return "\n".join(lines)
