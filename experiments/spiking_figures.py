"""Figures of the spiking backend (issue 8) on the tests' small network: 64-32-10 on 8x8 MNIST digits.

    python experiments/spiking_figures.py --data-dir ../shared/data [--out experiments/results/spiking_figures]

Writes rates_vs_rho.png (free-window firing rates against rho(s*) of the torch rate model),
raster.png (one training example's free and nudged phases, spikes of both layers and the
output states), updates.png (spike-pair rule vs rate EP weight updates, summed over a batch)
and numbers.json (what the figures show, as numbers). Numpy target, seeded: no compiler.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from neurosim.backends.brian2.rate import Schedule  # noqa: E402
from neurosim.backends.brian2.spiking import Brian2SpikingNetwork, SpikingLayout  # noqa: E402
from neurosim.backends.brian2.train import torch_params  # noqa: E402
from neurosim.config import load_config  # noqa: E402
from neurosim.data import small_digits  # noqa: E402
from neurosim.core.phases import fixed_points  # noqa: E402
from neurosim.core.network import build_network  # noqa: E402

SIZES = (64, 32, 10)


def digits(data_dir: str, n: int):
    return small_digits(data_dir, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", default="experiments/results/spiking_figures")
    parser.add_argument("--examples", type=int, default=8)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n, beta, lr = args.examples, 0.5, 1e-5
    x, y = digits(args.data_dir, n)
    config = load_config({"circuit": "digits8_ct2",
                          "estimator": {"name": "ep", "T": 12, "K": 4, "beta": beta, "lr": [0.1, 0.1]},
                          "train": {"batch_size": 1}, "compute": {"dtype": "float64"}})
    network = build_network(config, "cpu", torch.float64)
    phases = [fixed_points(network.model, x[k:k + 1], y[k:k + 1], beta) for k in range(n)]
    numbers: dict = {}

    # 1. free-window rates vs rho(s*), both spike modes
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax, spikes in zip(axes, ("regular", "poisson")):
        layout = SpikingLayout(SIZES, "hard_sigmoid", 0.05, 10.0, True, 200, 100, "ep", n, n, r_max_hz=2000.0,
                               window=100, spikes=spikes)
        b2 = Brian2SpikingNetwork(layout, torch_params(network), [0.0, 0.0], "numpy")
        res = b2.run(Schedule(x.numpy(), y.numpy(), np.arange(n), np.full(n, beta), np.zeros(n)))
        diffs = []
        for layer, colour in ((0, "C0"), (1, "C3")):
            ref = np.stack([p[0][layer + 1].numpy() for p in phases])
            ax.scatter(ref.ravel(), res.rates_free[layer].ravel(), s=6, c=colour, label=f"layer {layer + 1}")
            diffs.append(np.abs(res.rates_free[layer] - ref).ravel())
        d = np.concatenate(diffs)
        numbers[f"rates_{spikes}"] = {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean())}
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(title=f"{spikes}: max |diff| {d.max():.3f}", xlabel="rho(s*) (rate model)",
               ylabel="spike count / (r_max L dt)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rates_vs_rho.png", dpi=110)
    plt.close(fig)

    # 2. weight updates: spike-pair rule vs rate EP, and a raster of the first example
    layout = SpikingLayout(SIZES, "hard_sigmoid", 0.05, 10.0, True, 200, 160, "ep", n, n, r_max_hz=2000.0,
                           window=100, record_states=True)
    before = torch_params(network)
    b2 = Brian2SpikingNetwork(layout, before, [lr, lr], "numpy")
    res = b2.run(Schedule(x.numpy(), y.numpy(), np.arange(n), np.full(n, beta), np.ones(n)))
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for layer, ax in enumerate(axes):
        ref = sum((np.outer(p[1][layer + 1], p[1][layer]) - np.outer(p[0][layer + 1], p[0][layer])) / beta
                  for p in phases)
        upd = (b2.params[layer][0] - before[layer][0]) / lr
        cos = float((upd * ref).sum() / (np.linalg.norm(upd) * np.linalg.norm(ref)))
        numbers[f"updates_W{layer + 1}"] = {"cosine": cos, "norm_ratio": float(np.linalg.norm(upd) / np.linalg.norm(ref))}
        ax.scatter(ref.ravel(), upd.ravel(), s=4)
        lim = np.abs(ref).max()
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
        ax.set(title=f"W_{layer + 1}: cosine {cos:.3f}", xlabel="rate EP update (sum of 8)", ylabel="spiking update")
    fig.tight_layout()
    fig.savefig(out / "updates.png", dpi=110)
    plt.close(fig)

    steps = layout.steps_per_example
    dt_ms = layout.eps * layout.tau_ms
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    offset = 0
    for layer, (idx, times) in enumerate(res.spikes):
        keep = times < steps * dt_ms
        axes[0].scatter(times[keep], idx[keep] + offset, s=1, c="C0" if layer == 0 else "C3")
        offset += SIZES[layer + 1]
    axes[0].set(ylabel="neuron (hidden, then output)", title="one training example: spikes")
    axes[1].plot(np.arange(steps) * dt_ms, res.states[1][:steps])
    axes[1].set(ylabel="output states s")
    g = np.zeros(steps)
    g[layout.T - layout.window:layout.T] = -1
    g[steps - layout.window:] = 1
    axes[2].plot(np.arange(steps) * dt_ms, g, drawstyle="steps-post")
    axes[2].set(ylabel="phase sign g", xlabel="time (ms)")
    for ax in axes:
        ax.axvline(layout.T * dt_ms, c="k", lw=0.8, ls=":")
    fig.tight_layout()
    fig.savefig(out / "raster.png", dpi=110)
    plt.close(fig)
    (out / "numbers.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
