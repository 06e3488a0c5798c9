"""Bit-for-bit fingerprints of fixed-seed runs, to hold a restructuring to "behaviour unchanged".

Trains a few short runs on the bundled MNIST sample (EP-1h, C-EP on a noisy device with
differential pairs, BPTT, C-VF, the Brian2 rate network, spiking EP on a device) and writes, per
run, the SHA-256 of every tensor of the final checkpoint and the exact errors of every epoch.
Run it before and after a change and compare the two JSON files (``--compare``):

    python experiments/refactor/fingerprints.py --out before.json
    python experiments/refactor/fingerprints.py --out after.json --compare before.json

``before.json`` is main before the 0.2 restructuring (issue 17: every run identical after it);
``reference.json`` is main after the fast device writes of issue 18, whose new pulse-count
sampler (same distribution, other random stream) changed cep_device and cep_pcmo only: compare a
change against ``reference.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

import neurosim

SAMPLE = ["data.name=mnist-sample", "data.test_subset=200", "train.check_every=5"]
CT = {"dynamics": "continuous", "layers": [784, 16, 10], "activation": "hard_sigmoid", "eps": 0.1, "clamp": True}
RUNS: dict[str, tuple[object, list[str]]] = {
    "ep_1h": ("mnist_fc1_ep", SAMPLE + ["train.epochs=2", "data.train_subset=400"]),
    "bptt_1h": ("mnist_fc1_bptt", SAMPLE + ["train.epochs=1", "data.train_subset=200"]),
    "cep_device": ("mnist_fc1_cep", SAMPLE + ["train.epochs=2", "data.train_subset=200", "estimator.T=10",
                                              "estimator.K=4", "synapses.device=levels_256",
                                              "synapses.params.mapping=differential",
                                              "synapses.params.refresh_threshold=0.5",
                                              "synapses.params.write_noise_std=0.5"]),
    "cep_pcmo": ("mnist_fc1_cep", SAMPLE + ["train.epochs=1", "data.train_subset=200", "estimator.T=10",
                                            "estimator.K=4", "synapses.device=pcmo"]),
    "cvf_1h": ("mnist_fc1_cvf", SAMPLE + ["train.epochs=1", "data.train_subset=200", "circuit.initial_angle=45"]),
    "brian2_rate": ({"name": "fp_brian2", "seed": 0, "circuit": CT,
                     "estimator": {"name": "ep", "T": 8, "K": 3, "beta": 0.5, "lr": [0.02, 0.01], "random_sign": True},
                     "data": {"name": "mnist-sample", "train_subset": 24, "test_subset": 12},
                     "train": {"batch_size": 1, "epochs": 2}, "compute": {"dtype": "float64"},
                     "backend": {"name": "brian2", "target": "numpy"}}, []),
    "spiking_device": ({"name": "fp_spiking", "seed": 0, "circuit": CT,
                        "estimator": {"name": "ep", "T": 40, "K": 20, "beta": 1.0, "lr": [0.1, 0.05]},
                        "data": {"name": "mnist-sample", "train_subset": 30, "test_subset": 10},
                        "train": {"batch_size": 1, "epochs": 1}, "compute": {"dtype": "float64"},
                        "synapses": {"device": "levels_64", "params": {}},
                        "backend": {"name": "brian2-spiking", "target": "numpy", "r_max_hz": 1000.0, "window": 20}}, []),
}


def _digest(value: object, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, torch.Tensor):
        out[prefix] = hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            _digest(value[key], f"{prefix}.{key}", out)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _digest(item, f"{prefix}[{i}]", out)
    elif isinstance(value, (int, float, str, bool)) or value is None:
        out[prefix] = repr(value)


def fingerprint(name: str, config: object, overrides: list[str], root: Path) -> dict:
    result = neurosim.train(config, out=root / name, overrides=overrides, progress=False)
    checkpoint = torch.load(root / name / "checkpoint.pt", weights_only=False)
    tensors: dict[str, str] = {}
    _digest(checkpoint["network"], "network", tensors)
    errors = [[r["train_error"], r["test_error"], r["train_loss"], r["test_loss"]] for r in result.history]
    return {"errors": errors, "tensors": tensors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--compare", help="an earlier output to compare against")
    parser.add_argument("--only", nargs="*", help="run only these (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    prints = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, overrides) in RUNS.items():
            if args.only and name not in args.only:
                continue
            prints[name] = fingerprint(name, config, overrides, Path(tmp))
            print(f"{name}: {len(prints[name]['tensors'])} tensors, errors {prints[name]['errors']}", file=sys.stderr)
    Path(args.out).write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n")
    if not args.compare:
        return 0
    before = json.loads(Path(args.compare).read_text())
    bad = 0
    for name, now in prints.items():
        old = before.get(name)
        if old is None:
            print(f"{name}: not in {args.compare}")
            continue
        same_errors = old["errors"] == now["errors"]
        differing = sorted(k for k in set(old["tensors"]) | set(now["tensors"])
                           if old["tensors"].get(k) != now["tensors"].get(k))
        verdict = "identical" if same_errors and not differing else "DIFFERENT"
        bad += verdict != "identical"
        print(f"{name}: {verdict} (errors {'equal' if same_errors else 'differ'}; "
              f"{len(now['tensors'])} tensors, {len(differing)} differ{': ' + ', '.join(differing[:5]) if differing else ''})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
