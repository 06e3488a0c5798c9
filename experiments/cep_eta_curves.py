"""C-EP approaching EP as eta gets small: training curves of C-EP(eta) and EP(lr = eta).

Summed over the nudged phase, C-EP's per-step updates telescope to EP's update (Eq. 2) when the
weights do not move during the phase; so C-EP with per-step rate eta and EP with learning rate
eta, from the same initial network and the same batches, follow the same trajectory in the
limit eta -> 0, and part as eta grows (the weights move during the phase, the dynamics see them
move). This script trains both at eta = scale * (paper's C-EP-1h rates) for several scales on
the first N training samples, and plots test error per epoch plus the relative distance
between the two networks' weights after training.

    python experiments/cep_eta_curves.py --data-dir ../shared/data [--out experiments/results/cep_eta_curves]

Runs already finished in the output folder are read back (an interrupted script resumes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import neurosim
from neurosim.io import atomic_write_json
from neurosim.run.plots import plot_error_curves

BASE = "mnist_fc1_cep"          # the paper's C-EP-1h row: T=40, K=15, beta=0.2, eta = [0.0056, 0.0028]
SCALES = [4.0, 2.0, 1.0, 0.5]
EPOCHS = 10
TRAIN_SAMPLES = 10000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="experiments/results/cep_eta_curves")
    args = parser.parse_args()
    out = Path(args.out)
    base = neurosim.load_config(BASE)
    common = [f"train.epochs={EPOCHS}", f"data.train_subset={TRAIN_SAMPLES}", "compute.threads=1"]
    if args.data_dir:
        common.append(f"data.dir={args.data_dir}")
    previous = {}
    if (out / "summary.json").is_file():  # a clean clone has the results but not the checkpoints
        previous = {r["scale"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}
    rows = []
    for scale in SCALES:
        lr = [round(scale * r, 8) for r in base.estimator.lr]
        runs = {}
        for estimator in ("cep", "ep"):
            run_dir = out / f"{estimator}_x{scale:g}"
            overrides = common + [f"estimator.name={estimator}", f"estimator.lr={lr}"]
            if not (run_dir / "result.json").is_file():
                neurosim.train(BASE, out=run_dir, overrides=overrides, progress=False,
                               resume=(run_dir / "checkpoint.pt").is_file())
            history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            checkpoint = run_dir / "checkpoint.pt"
            weights = (torch.load(checkpoint, map_location="cpu", weights_only=False)["network"]["model"]
                       if checkpoint.is_file() else None)
            runs[estimator] = (history, weights)
        (cep_hist, cep_w), (ep_hist, ep_w) = runs["cep"], runs["ep"]
        if cep_w is None or ep_w is None:
            distance = previous[scale]["relative_weight_distance"]
        else:
            keys = sorted(k for k in cep_w if k.startswith("weights"))
            distance = (sum(float((cep_w[k] - ep_w[k]).norm() ** 2) for k in keys) ** 0.5
                        / sum(float(ep_w[k].norm() ** 2) for k in keys) ** 0.5)
        rows.append({"scale": scale, "eta": lr, "cep_test_error": cep_hist[-1]["test_error"],
                     "ep_test_error": ep_hist[-1]["test_error"], "relative_weight_distance": distance,
                     "cep_curve": [r["test_error"] for r in cep_hist],
                     "ep_curve": [r["test_error"] for r in ep_hist]})
        print(f"eta x{scale:g} {lr}: C-EP {cep_hist[-1]['test_error']:.2%}, EP {ep_hist[-1]['test_error']:.2%}, "
              f"||W_cep - W_ep|| / ||W_ep|| = {distance:.4f}", flush=True)
    atomic_write_json(out / "summary.json", {"base": BASE, "epochs": EPOCHS, "train_samples": TRAIN_SAMPLES,
                                             "rows": rows})
    plot(rows, out / "cep_eta_curves.png")


def plot(rows: list[dict], path: Path) -> None:
    series = []
    for i, row in enumerate(rows):
        label = f"eta x{row['scale']:g} (dist {row['relative_weight_distance']:.3f})"
        series.append({"label": f"C-EP {label}", "errors": row["cep_curve"], "color": f"C{i}"})
        series.append({"label": f"EP, lr = eta x{row['scale']:g}", "errors": row["ep_curve"], "style": "--",
                       "color": f"C{i}"})
    plot_error_curves(series, path, f"C-EP vs EP at the same rate ({BASE}, {TRAIN_SAMPLES} samples): test error",
                      size=(6, 4), legend_size=6, columns=2)


if __name__ == "__main__":
    main()
