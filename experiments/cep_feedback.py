"""Why C-EP stands large rates with beta < 0 and not with beta > 0: the sign of the in-phase feedback.

During C-EP's nudged phase W_1 moves by (eta_1 / beta) (rho(h_{t+1}) - rho(h_t)) x^T / B at every
step, so the hidden drive W_1 x moves by (eta_1 / beta) (x x^T / B) (rho(h_{t+1}) - rho(h_t)): a
move of the hidden states pushes the drive further the same way when beta > 0 (Hebbian: positive
feedback, the summed update overshoots EP's and, past a gain of about one, runs away) and back the
other way when beta < 0 (anti-Hebbian: negative feedback, the summed update falls short of EP's
but stays bounded). The input's fan-in makes this loop strongest on W_1 (|x|^2 is about 100 for
an MNIST digit).

This script measures it on MNIST batches (float64), on the initial mnist_fc1_cep network and on
the same network after one epoch of EP-1h training (mnist_fc1_ep's rates, 60k samples): for each
rate scale (times the paper's C-EP-1h rates) and each sign of beta, C-EP's summed update of each
layer, divided by eta, against the same at eta -> 0 (EP's update at that beta): its gain (the
projection on EP's update over EP's squared norm; 1 = EP) and its cosine with it. The batches
measured are the first 10 of the test set (not trained on).

    python experiments/cep_feedback.py --data-dir ../shared/data [--out experiments/results/cep_feedback]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

import neurosim
from neurosim.data import load_dataset
from neurosim.io import atomic_write_json
from neurosim.core.network import build_network

BASE = "mnist_fc1_cep"          # T=40, K=15, beta=0.2, eta = [0.0056, 0.0028] (input side first)
SCALES = [0.5, 1.0, 2.0, 4.0, 8.0, 14.0]   # 14x: EP-1h's own rates, 0.08 / 0.04
BATCHES, BATCH = 10, 20
LIMIT = 1e-4                    # "eta -> 0": scale of the reference run


def summed_updates(network, x, y, scale: float, beta: float, paper_lr) -> list[torch.Tensor]:
    """W_n after one C-EP batch minus W_n before, divided by eta_n, for a copy of ``network``."""
    net = copy.deepcopy(network)
    net.estimator.config.beta = beta
    net.estimator.config.lr = [scale * lr for lr in paper_lr]
    before = [g[0].detach().clone() for g in net.estimator.groups]
    net.estimator.train_step(x, y)
    return [(g[0].detach() - b) / (scale * lr) for g, b, lr in zip(net.estimator.groups, before, paper_lr)]


def measure(network, images, targets, paper_lr, beta0: float, label: str) -> list[dict]:
    rows = []
    for beta in (beta0, -beta0):
        for scale in SCALES:
            gains, cosines = [[] for _ in paper_lr], [[] for _ in paper_lr]
            for b in range(BATCHES):
                x, y = images[b * BATCH:(b + 1) * BATCH], targets[b * BATCH:(b + 1) * BATCH]
                reference = summed_updates(network, x, y, LIMIT, beta, paper_lr)
                measured = summed_updates(network, x, y, scale, beta, paper_lr)
                for n, (m, r) in enumerate(zip(measured, reference)):
                    gains[n].append(float((m * r).sum() / (r * r).sum()))
                    cosines[n].append(float((m * r).sum() / (m.norm() * r.norm())))
            row = {"network": label, "beta": beta, "scale": scale, "eta": [scale * lr for lr in paper_lr],
                   "gain": [sum(g) / len(g) for g in gains], "gain_min": [min(g) for g in gains],
                   "gain_max": [max(g) for g in gains],
                   "cosine": [sum(c) / len(c) for c in cosines], "cosine_min": [min(c) for c in cosines]}
            rows.append(row)
            print(f"{label}, beta {beta:+.1f}, {scale:4.1f}x: gain W_1 {row['gain'][0]:8.3f} "
                  f"[{row['gain_min'][0]:.3f}, {row['gain_max'][0]:.3f}], W_2 {row['gain'][1]:7.3f}; "
                  f"cosine W_1 {row['cosine'][0]:.3f}, W_2 {row['cosine'][1]:.3f}", flush=True)
    return rows


def ep_epoch(network, data_dir: str | None) -> None:
    """One epoch of EP-1h (mnist_fc1_ep's estimator) on the network's weights, in place."""
    config = neurosim.load_config("mnist_fc1_ep", ["compute.dtype=float64"])
    trainer = build_network(config, "cpu", torch.float64)
    trainer.model.load_state_dict(network.model.state_dict())
    train = load_dataset("mnist", "train", data_dir, dtype=torch.float64)
    images = train.images.reshape(len(train.labels), -1)
    targets = torch.nn.functional.one_hot(train.labels, 10).double()
    order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(0))
    for start in range(0, len(order), config.train.batch_size):
        index = order[start:start + config.train.batch_size]
        trainer.estimator.train_step(images[index], targets[index])
    network.model.load_state_dict(trainer.model.state_dict())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="experiments/results/cep_feedback")
    args = parser.parse_args()
    config = neurosim.load_config(BASE, ["compute.dtype=float64"])
    network = build_network(config, "cpu", torch.float64)
    paper_lr = list(config.estimator.lr)
    data = load_dataset("mnist", "test", args.data_dir, dtype=torch.float64, subset=BATCHES * BATCH)
    images = data.images.reshape(BATCHES * BATCH, -1)
    targets = torch.nn.functional.one_hot(data.labels, 10).double()
    rows = measure(network, images, targets, paper_lr, config.estimator.beta, "initial")
    ep_epoch(network, args.data_dir)
    rows += measure(network, images, targets, paper_lr, config.estimator.beta, "after 1 EP epoch")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "result.json", {"base": BASE, "batches": BATCHES, "batch_size": BATCH,
                                            "reference_scale": LIMIT, "rows": rows})
    plot(rows, out / "cep_feedback.png")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(r["network"] for r in rows))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.6 * len(labels), 3.8), squeeze=False)
    for ax, label in zip(axes[0], labels):
        for beta, marker in ((rows[0]["beta"], "o"), (-rows[0]["beta"], "s")):
            sel = [r for r in rows if r["network"] == label and r["beta"] == beta]
            for n, line in enumerate(("-", ":")):
                ax.plot([r["scale"] for r in sel], [r["gain"][n] for r in sel], marker + line,
                        label=f"W_{n + 1}, beta {beta:+.1f}")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("eta / paper's C-EP-1h eta")
        ax.set_title(f"{label}: C-EP summed update / EP's")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("gain (projection on EP's update)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
