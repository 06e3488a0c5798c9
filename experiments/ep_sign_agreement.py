"""Does EP's update at -beta point where the one at +beta does? It must, for beta < 0 to be usable.

mnist_fc1_cep_negbeta trains C-EP with beta = -0.2 because its in-phase feedback is then negative
(experiments/cep_feedback.py). That relies on EP's -beta estimate carrying the same gradient as the
+beta one. With the smooth sigmoid of the prototypical model it does; with the clamped hard
sigmoid of the continuous-time model (mnist_ct1, and the Brian2 spiking network built on it) a
state pinned at 0 cannot be nudged lower, and the two one-sided estimates part. This script
measures, on one batch of 20 training digits and each model's initial network (float64), the
cosine between EP's updates (all layers) at +beta and at -beta, and between +beta and a small
+beta (how far finite nudging is from its limit).

    python experiments/ep_sign_agreement.py --data-dir ../shared/data [--out experiments/results/ep_sign_agreement]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import neurosim
from neurosim.data import load_dataset
from neurosim.io import atomic_write_json
from neurosim.core.network import build_network

EXPERIMENTS = ["mnist_fc1_ep", "mnist_ct1_ep"]
BETAS = [0.05, 0.2, 0.5]


def ep_update(name: str, beta: float, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    config = neurosim.load_config(name, [f"estimator.beta={beta}", "estimator.random_sign=false",
                                         "compute.dtype=float64"])
    network = build_network(config, "cpu", torch.float64)
    updates, _ = network.estimator.compute(x, y)
    return torch.cat([u.flatten() for group in updates for u in group])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="experiments/results/ep_sign_agreement")
    args = parser.parse_args()
    data = load_dataset("mnist", "train", args.data_dir, dtype=torch.float64, subset=20)
    x = data.images.reshape(20, -1)
    y = torch.nn.functional.one_hot(data.labels, 10).double()
    rows = []
    for name in EXPERIMENTS:
        small = ep_update(name, 0.01, x, y)
        for beta in BETAS:
            plus, minus = ep_update(name, beta, x, y), ep_update(name, -beta, x, y)
            row = {"experiment": name, "beta": beta, "cosine_plus_minus": cosine(plus, minus),
                   "cosine_plus_small": cosine(plus, small), "norm_ratio_minus_plus": float(minus.norm() / plus.norm())}
            rows.append(row)
            print(f"{name}, beta {beta}: cos(+beta, -beta) {row['cosine_plus_minus']:.3f}, "
                  f"cos(+beta, +0.01) {row['cosine_plus_small']:.3f}, |-beta| / |+beta| {row['norm_ratio_minus_plus']:.3f}",
                  flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "result.json", {"batch": 20, "reference_beta": 0.01, "rows": rows})


if __name__ == "__main__":
    main()
