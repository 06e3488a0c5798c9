"""EP-1h (``mnist_fc1_ep``) with ``estimator.tol``: does stopping settled phases pay, and how
often should the check run (``estimator.tol_every``)?

Each variant is a short real training (``neurosim.train``: the first ``--subset`` MNIST training
samples, ``--epochs`` epochs, 1 torch thread, the same seed), and the variants run in turn, round
after round, so a drift of a shared machine's speed hits all of them; the ratios of training
seconds (metrics.jsonl's ``train_seconds``, evaluation excluded) to the fixed-T run of the same
round are taken within a round and their median is quoted. Recorded per variant: training
seconds, test error after the last epoch, free and nudged steps used (mean over batches of the
last epoch).

    python experiments/bench_tol.py --data-dir /work/shared/data

writes experiments/results/bench_tol.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import neurosim
from neurosim.io import atomic_write_json

OUT = Path(__file__).parent / "results" / "bench_tol.json"


def variants(tols: list[float], everies: list[int]) -> dict[str, list[str]]:
    out = {"fixed T": []}
    for tol in tols:
        for every in everies:
            out[f"tol {tol:g}, every {every}"] = [f"estimator.tol={tol}", f"estimator.tol_every={every}"]
    return out


def one(config: str, overrides: list[str], base: list[str], out: Path) -> dict:
    result = neurosim.train(config, out=out, overrides=base + overrides, progress=False)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = lines[-1]
    return {"train_seconds": sum(m["train_seconds"] for m in lines), "test_error": result.test_error,
            "free_steps_mean": last.get("free_steps_mean"), "nudged_steps_mean": last.get("nudged_steps_mean"),
            "eval_steps_mean": last.get("eval_steps_mean")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="mnist_fc1_ep")
    parser.add_argument("--data-dir", default=os.environ.get("NEUROSIM_DATA"))
    parser.add_argument("--subset", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tols", default="1e-3,1e-4")
    parser.add_argument("--every", default="1,4,8")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    base = [f"train.epochs={args.epochs}", f"data.train_subset={args.subset}", "compute.threads=1"]
    if args.data_dir:
        base.append(f"data.dir={args.data_dir}")
    table = variants([float(t) for t in args.tols.split(",")], [int(k) for k in args.every.split(",")])
    load_start = os.getloadavg()[0]
    rounds: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            row = {}
            for name, overrides in table.items():
                row[name] = one(args.config, overrides, base, Path(tmp) / f"r{r}" / name.replace(" ", "_").replace(",", ""))
                row[name]["ratio"] = row[name]["train_seconds"] / row["fixed T"]["train_seconds"]
                print(f"round {r + 1}/{args.rounds} {name:<20} {row[name]['train_seconds']:7.1f} s  "
                      f"x{row[name]['ratio']:.3f}  test error {row[name]['test_error']:.2%}  "
                      f"free {row[name]['free_steps_mean']}  nudged {row[name]['nudged_steps_mean']}", flush=True)
            rounds.append(row)
    summary = {}
    for name in table:
        runs = [row[name] for row in rounds]
        summary[name] = {"time_ratio_median": round(statistics.median(r["ratio"] for r in runs), 3),
                         "train_seconds_median": round(statistics.median(r["train_seconds"] for r in runs), 2),
                         "test_error": [r["test_error"] for r in runs],
                         "free_steps_mean": runs[-1]["free_steps_mean"], "nudged_steps_mean": runs[-1]["nudged_steps_mean"],
                         "eval_steps_mean": runs[-1]["eval_steps_mean"]}
    record = {"command": "python experiments/bench_tol.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "config": args.config, "subset": args.subset, "epochs": args.epochs, "threads": 1,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load": f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end",
              "written": datetime.datetime.now().isoformat(timespec="seconds"), "summary": summary, "rounds": rounds}
    atomic_write_json(args.out, record)
    for name, s in summary.items():
        print(f"{name:<20} x{s['time_ratio_median']:.3f}  errors {', '.join(f'{e:.2%}' for e in s['test_error'])}  "
              f"free {s['free_steps_mean']}  nudged {s['nudged_steps_mean']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
