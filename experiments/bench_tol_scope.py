"""Per-batch against per-sample settling (``estimator.tol_scope``) on a trained network.

A tolerance stops a phase once max |s_{t+1} - s_t| is below ``estimator.tol``. Per batch, one slow
sample keeps the whole batch stepping; per sample, settled samples leave the batch and the rest
step on as a smaller one. How much that saves depends on how unequal the samples' settling times
are, which changes with training, so the network is a trained one: a run's checkpoint
(``--checkpoint``, e.g. of ``neurosim train mnist_conv_ep_tol``), or ``--train-batches`` batches
of training at the config's own settings from its initial weights.

Both scopes then compute EP's updates (``estimator.compute``: free and nudged phases, no weight
change, so every round sees the same network) on the same ``--batches`` training batches, and
evaluate the first ``--eval-samples`` test digits at the config's evaluation batch size, in turn,
round after round (1 torch thread), so a drift of a shared machine's speed hits both. Recorded:
seconds per training batch and per evaluation, their ratio (batch / sample) within each round and
its median, the steps each phase used (per batch, per sample) and the evaluation errors.

    python experiments/bench_tol_scope.py --data-dir /work/shared/data --checkpoint RUN/checkpoint.pt

writes experiments/results/bench_tol_scope.json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from neurosim.backends.torch import TorchBackend, evaluate, one_hot
from neurosim.config import load_config
from neurosim.io import atomic_write_json

OUT = Path(__file__).parent / "results" / "bench_tol_scope.json"
SCOPES = ("batch", "sample")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="mnist_conv_ep_tol")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--checkpoint", help="a run's checkpoint.pt whose network to measure")
    parser.add_argument("--train-batches", type=int, default=300,
                        help="without --checkpoint: train this many batches first")
    parser.add_argument("--batches", type=int, default=8, help="training batches timed per round")
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    base = [f"data.dir={args.data_dir}", f"data.test_subset={args.eval_samples}", "compute.threads=1"]
    backends = {}
    trained_from = None
    saved = torch.load(args.checkpoint, map_location="cpu", weights_only=False) if args.checkpoint else None
    for scope in SCOPES:
        b = TorchBackend(load_config(args.config, [*base, f"estimator.tol_scope={scope}"]))
        b.build()
        if saved is not None:
            b.load_state_dict(saved["network"])
            trained_from = f"checkpoint after epoch {saved['epoch']} ({Path(args.checkpoint).name})"
        backends[scope] = b
    if saved is None:  # train the first backend, copy its network to the other
        first = backends["batch"]
        gen = torch.Generator().manual_seed(0)
        batch_size = first.config.train.batch_size
        for i, (x, labels) in enumerate(first.train_set.batches(batch_size, shuffle=False)):
            if i == args.train_batches:
                break
            first.network.estimator.train_step(x, one_hot(labels, first.train_set.num_classes, x.dtype), gen)
        backends["sample"].load_state_dict(first.state_dict())
        trained_from = f"{args.train_batches} training batches from the initial weights (seed {first.config.seed})"
    config = backends["batch"].config
    some = backends["batch"].train_set
    batches = [(x, one_hot(labels, some.num_classes, x.dtype))
               for _, (x, labels) in zip(range(args.batches), some.batches(config.train.batch_size, shuffle=False))]
    rounds = []
    for r in range(args.rounds):
        row = {}
        for scope, b in backends.items():
            est, e = b.network.estimator, b.config.estimator
            est.counter.clear()
            t = time.perf_counter()
            for x, y in batches:
                est.compute(x, y)
            train_s = (time.perf_counter() - t) / len(batches)
            train_steps = est.counter.summary()
            est.counter.clear()
            t = time.perf_counter()
            error, loss = evaluate(b.network.model, b.network.cost, b.test_set, e.T, b.config.train.eval_batch_size,
                                   e.tol, est.counter, e.tol_every, scope == "sample")
            row[scope] = {"seconds_per_train_batch": round(train_s, 4), "eval_seconds": round(time.perf_counter() - t, 2),
                          "eval_error": error, "eval_loss": loss, "steps": {**train_steps, **est.counter.summary()}}
            est.counter.clear()
            print(f"round {r + 1} {scope}: {train_s:.3f} s per training batch, evaluation "
                  f"{row[scope]['eval_seconds']:.1f} s, error {error:.2%}", flush=True)
        row["train_ratio"] = round(row["batch"]["seconds_per_train_batch"] / row["sample"]["seconds_per_train_batch"], 3)
        row["eval_ratio"] = round(row["batch"]["eval_seconds"] / row["sample"]["eval_seconds"], 3)
        rounds.append(row)
    e = config.estimator
    summary = {"train_ratio_median": statistics.median(r["train_ratio"] for r in rounds),
               "eval_ratio_median": statistics.median(r["eval_ratio"] for r in rounds),
               **{f"{scope}_seconds_per_train_batch_median": statistics.median(
                   r[scope]["seconds_per_train_batch"] for r in rounds) for scope in SCOPES},
               **{f"{scope}_eval_seconds_median": statistics.median(r[scope]["eval_seconds"] for r in rounds)
                  for scope in SCOPES}}
    argv = list(sys.argv[1:])
    if "--checkpoint" in argv[:-1]:  # a path on this machine: shown as the run it came from
        argv[argv.index("--checkpoint") + 1] = "RUN/checkpoint.pt"
    command = "python experiments/bench_tol_scope.py " + " ".join(argv)
    data = {"config": args.config, "T": e.T, "K": e.K, "tol": e.tol, "tol_every": e.tol_every,
            "batch_size": config.train.batch_size, "eval_batch_size": config.train.eval_batch_size,
            "train_batches": len(batches), "eval_samples": len(backends["batch"].test_set), "network": trained_from,
            "threads": 1, "rounds": rounds, "summary": summary, "command": command,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
            "load": f"load average {load_start:.1f} at start and {os.getloadavg()[0]:.1f} at end",
            "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    atomic_write_json(args.out, data)
    print(f"train {summary['train_ratio_median']:.2f}x, evaluation {summary['eval_ratio_median']:.2f}x faster "
          f"per sample; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
