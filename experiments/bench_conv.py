"""P-conv (``mnist_conv_ep``) training speed on the CPU, before and after the fast conv step.

The model module of ``--before`` (a git revision) and the current one train the same network
side by side in one process: each round times every variant once, in turn (``neurosim bench``'s
timing: ``train_step`` as the trainer runs it, after a warm-up), so a drift of a shared machine's
speed hits all of them; the ratios are taken within a round and their median is quoted. Each
variant is timed at fixed T (the config's) and with each ``--tols`` (``estimator.tol``: a phase
stops when max |s_{t+1} - s_t| < tol, T and K as caps; the steps used are recorded). The two codes
give the same states bit for bit, so they also use the same number of steps; the script checks
that their logits agree before timing.

How many free steps a tolerance saves depends on how far training has gone (the bench starts from
the initial weights), so the script also trains a fresh network ``--convergence-batches`` batches
(batch 20, fixed T) and counts, over the next 20 batches, the free steps each tolerance needs: for
the whole batch (what ``estimator.tol`` does) and per sample.

An idle 2-core epoch is estimated as 60,000 / (baseline x ratio): the baseline is the EP, batch-20,
2-thread row of ``--baseline-rev``'s results/bench_conv.json (measured on the idle machine), the
ratio the one measured here (1 thread unless ``--threads`` says otherwise: on a machine with a busy
core two threads measure the contention, not the code). With a tolerance after n training batches,
the fixed-T estimate is scaled by (free steps + K) / (T + K).

    python experiments/bench_conv.py --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neurosim.backends.torch import TorchBackend
from neurosim.config import load_config
from neurosim.io import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).parent / "results" / "bench_conv.json"
MODULE = "neurosim/core/models/convolutional.py"


def git_show(rev: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def old_model_class(rev: str) -> type:
    """ConvolutionalModel as module ``MODULE`` had it at ``rev``."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(git_show(rev, MODULE))
    spec = importlib.util.spec_from_file_location(f"conv_{rev}", f.name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(f.name)
    return module.ConvolutionalModel


def backend(config: str, overrides: list[str], model_class: type | None) -> TorchBackend:
    b = TorchBackend(load_config(config, overrides))
    b.build()
    if model_class is not None:  # same weights and attributes, the old methods
        b.network.model.__class__ = model_class
    return b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", default="mnist_conv_ep")
    parser.add_argument("--before", default="853d831", help="git revision of the old model module")
    parser.add_argument("--baseline-rev", default="34cf047",
                        help="revision whose results/bench_conv.json holds the idle 2-core measurement")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--tols", default="1e-6", help="comma-separated estimator.tol values (besides none)")
    parser.add_argument("--threads", default="1", help="comma-separated compute.threads values")
    parser.add_argument("--convergence-batches", default="0,300",
                        help="comma-separated training batches before counting the free steps to settle")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    old_class = old_model_class(args.before)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", MODULE], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip())
    baseline_rows = json.loads(git_show(args.baseline_rev, "experiments/results/bench_conv.json"))
    baseline = next(r for r in baseline_rows if r["estimator"] == "ep" and r["batch_size"] == 20)
    tols = [None] + [float(t) for t in args.tols.split(",") if t]
    codes = {f"before ({args.before})": old_class, f"after ({head}{' + changes' if dirty else ''})": None}
    load = [os.getloadavg()[0]]
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        variants = {}
        for tol in tols:
            for code, cls in codes.items():
                overrides = [f"data.dir={args.data_dir}", f"data.train_subset={args.samples}", "data.test_subset=1",
                             "estimator.name=ep", f"compute.threads={threads}"]
                if tol is not None:
                    overrides.append(f"estimator.tol={tol}")
                variants[(code, tol)] = backend(args.config, overrides, cls)
        check_same_logits(variants)
        times: dict[tuple, list[dict]] = {key: [] for key in variants}
        for r in range(args.rounds):
            for key, b in variants.items():
                torch.set_num_threads(threads)
                b.network.estimator.counter.clear()
                row = b.bench(args.samples)
                row["steps"] = b.network.estimator.counter.summary()
                times[key].append(row)
                print(f"threads {threads} round {r + 1} {key[0]:<24} tol {key[1]}: "
                      f"{row['samples_per_second']:.1f} samples/s {row['steps']}", flush=True)
        reference = (list(codes)[0], None)
        for key, runs in times.items():
            row = dict(runs[0])
            speeds = [run["samples_per_second"] for run in runs]
            row["samples_per_second"] = round(statistics.median(speeds), 1)
            row["seconds_per_60k_epoch"] = round(60000 / row["samples_per_second"], 1)
            row["rounds_samples_per_second"] = speeds
            # per round: this variant's speed over the old code's at fixed T (same round)
            ratios = [s / ref["samples_per_second"] for s, ref in zip(speeds, times[reference])]
            row["speedup_vs_before_fixed_T"] = round(statistics.median(ratios), 3)
            row["code"], row["tol"] = key
            row["steps"] = runs[-1]["steps"]
            row["idle_2core_epoch_estimate_s"] = round(
                60000 / (baseline["samples_per_second"] * row["speedup_vs_before_fixed_T"]), 1)
            rows.append(row)
    convergence = {n: free_steps_to_settle(args.config, args.data_dir, n, [t for t in tols if t])
                   for n in [int(n) for n in args.convergence_batches.split(",") if n]}
    fixed = {r["threads"]: r for r in rows if r["tol"] is None and r["code"].startswith("after")}
    for row in rows:
        if row["tol"] is None or not convergence:
            continue
        row["free_steps_to_settle"] = {f"after {n} batches": c[row["tol"]] for n, c in convergence.items()}
        if row["code"].startswith("after"):
            T, K, base = row["T"], row["K"], fixed[row["threads"]]["idle_2core_epoch_estimate_s"]
            row["idle_2core_epoch_estimate_s_trained"] = {
                f"after {n} batches": round(base * (c[row["tol"]]["batch_mean"] + K) / (T + K), 1)
                for n, c in convergence.items()}
    load.append(os.getloadavg()[0])
    for row in rows:
        row["measured"] = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, "
                           f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at start and {load[1]:.1f} at end",
                           "torch": torch.__version__, "command": " ".join(["python", *sys.argv]),
                           "baseline": f"{baseline['samples_per_second']} samples/s, {args.baseline_rev}, "
                                       f"{baseline['threads']} threads, idle"}
    atomic_write_json(Path(args.out), rows)
    for row in rows:
        print(f"threads {row['threads']} {row['code']:<24} tol {row['tol']}: {row['samples_per_second']:7.1f} "
              f"samples/s, x{row['speedup_vs_before_fixed_T']:.2f} vs before at fixed T, steps {row['steps']}"
              + f", idle 2-core epoch ~{row['idle_2core_epoch_estimate_s']:.0f} s"
              + (f" (trained: {row['idle_2core_epoch_estimate_s_trained']})"
                 if "idle_2core_epoch_estimate_s_trained" in row else ""))
    return 0


@torch.no_grad()
def free_steps_to_settle(config: str, data_dir: str, n_train: int, tols: list[float]) -> dict:
    """Train ``n_train`` batches of 20 at fixed T, then count on the next 20 batches the free steps
    until max |s_{t+1} - s_t| < tol: over the batch (``estimator.tol``'s rule) and per sample."""
    b = backend(config, [f"data.dir={data_dir}", f"data.train_subset={20 * (n_train + 20)}", "data.test_subset=1",
                         "estimator.name=ep", "train.batch_size=20"], None)
    model, estimator = b.network.model, b.network.estimator
    batches = list(b.train_set.batches(20, shuffle=False))
    generator = torch.Generator().manual_seed(0)
    for x, labels in batches[:n_train]:
        with torch.enable_grad():
            estimator.train_step(x, torch.nn.functional.one_hot(labels, 10).to(x.dtype), generator)
    per_batch: dict[float, list[int]] = {t: [] for t in tols}
    per_sample: dict[float, list[int]] = {t: [] for t in tols}
    T, at_T = b.config.estimator.T, 0.0
    for x, _ in batches[n_train:]:
        drive, state, residuals = model.prepare(x), model.init_state(x.shape[0]), []
        for _ in range(T):
            new = model.step(state, drive)
            residuals.append(torch.stack([(a - s).abs().flatten(1).amax(1) for a, s in zip(new, state)]).amax(0))
            state = new
        r = torch.stack(residuals)  # [T, batch]
        at_T = max(at_T, float(r[-1].max()))
        for tol in tols:
            below = r < tol
            per_batch[tol].append(int(below.all(1).int().argmax()) + 1 if below.all(1).any() else T)
            per_sample[tol] += [int(below[:, i].int().argmax()) + 1 if below[:, i].any() else T
                                for i in range(r.shape[1])]
    print(f"after {n_train} batches: free residual at step T {at_T:.1e}", flush=True)
    return {tol: {"batch_mean": round(statistics.mean(per_batch[tol]), 1), "batch_max": max(per_batch[tol]),
                  "per_sample_mean": round(statistics.mean(per_sample[tol]), 1),
                  "residual_at_T": float(f"{at_T:.2g}")} for tol in tols}


def check_same_logits(variants: dict) -> None:
    """Both codes' first training steps agree bit for bit (each variant on copies of its weights)."""
    by_tol: dict = {}
    for (code, tol), b in variants.items():
        model = b.network.model
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        x, labels = next(b.train_set.batches(b.config.train.batch_size, shuffle=False))
        y = torch.nn.functional.one_hot(labels, b.train_set.num_classes).to(x.dtype)
        logits = b.network.estimator.train_step(x, y, torch.Generator().manual_seed(0)).logits
        model.load_state_dict(saved)
        b.network.estimator.counter.clear()
        if tol in by_tol and not torch.equal(by_tol[tol], logits):
            raise SystemExit(f"{code} and the other code disagree at tol {tol}: not the same computation")
        by_tol[tol] = logits


if __name__ == "__main__":
    t0 = time.time()
    status = main()
    print(f"{time.time() - t0:.0f} s")
    sys.exit(status)
