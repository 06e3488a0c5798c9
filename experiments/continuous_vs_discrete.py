"""Continuous vs discrete time: wall time of the same 1h MNIST network to the same test error.

Trains, one after the other and one thread each, epoch by epoch until the test error reaches
``--target`` (or ``--max-epochs``):

- P-1h, discrete-time prototypical EP (``mnist_fc1_ep``: T=40, K=15, batch 20);
- EB-1h, discrete-time energy-based EP (``mnist_eb1_ep``: eps 0.2, T=100, K=12, batch 20);
- CT-1h, continuous-time EP in torch (``mnist_ct1_ep``: eps 0.5, T=20, K=4, batch 20);
- CT-1h, continuous-time EP in Brian2 (``mnist_ct1_ep_brian2``: the same leaky integrators,
  online, cpp_standalone).

The source documents claim the discrete-time (prototypical) formulation is 5x to 8x faster;
``summary.json`` gives each run's wall time to the target and its ratio to P-1h. An epoch's
time includes its evaluation on the test set (Brian2 evaluates inside the same run). The
Brian2 project is compiled once: its build time is counted once, in the first epoch, and the
seconds spent re-checking the cached build when the run continues at the next epoch are left
out. Under a shared machine's load wall time varies by 2x between epochs: every epoch also
records the CPU seconds of its process and children (the Brian2 binary, the compiler), and the
summary gives both. With ``--twin-samples N`` it also measures the samples/s of the torch model on exactly the
Brian2 computation (batch 1, float64) on N training samples.

    python experiments/continuous_vs_discrete.py --data-dir ../shared/data \\
        --out experiments/results/continuous_vs_discrete --target 0.03

Interrupted? Run it again: finished runs are read back, a started one continues.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import neurosim
from neurosim.io import atomic_write_json

RUNS = [
    ("P-1h discrete prototypical EP (torch, batch 20)", "mnist_fc1_ep"),
    ("EB-1h discrete energy-based EP (torch, batch 20)", "mnist_eb1_ep"),
    ("CT-1h continuous-time EP (torch, batch 20)", "mnist_ct1_ep"),
    ("CT-1h continuous-time EP (Brian2 cpp_standalone, online)", "mnist_ct1_ep_brian2"),
]


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def train_to_target(name: str, run_dir: Path, data_dir: str | None, target: float, max_epochs: int,
                    extra: list[str]) -> list[dict]:
    """Train epoch by epoch (resuming the run folder) until the test error reaches ``target``."""
    history = _history(run_dir)
    while not history or (history[-1]["test_error"] > target and len(history) < max_epochs):
        overrides = [f"train.epochs={len(history) + 1}", "compute.threads=1", *extra]
        if data_dir:
            overrides.append(f"data.dir={data_dir}")
        cpu0, children0 = time.process_time(), os.times()
        neurosim.train(name, out=run_dir, resume=bool(history), overrides=overrides, progress=False)
        children = os.times()
        cpu = (time.process_time() - cpu0 + children.children_user - children0.children_user
               + children.children_system - children0.children_system)
        history = _history(run_dir)
        row = history[-1]
        if len(history) > 1:  # the Brian2 project is compiled once: leave out the cached re-check
            cpu -= row.get("brian2_build_cpu_seconds", 0.0)
        load = os.getloadavg()[0]
        print(f"{name} epoch {row['epoch']}: test error {row['test_error']:.2%} ({row['seconds']:.0f} s wall, "
              f"{cpu:.0f} s CPU, load {load:.1f})", flush=True)
        atomic_write_json(run_dir / "epochs.json", _epochs(run_dir) + [{"load_1min": load, "cpu_seconds": cpu}])
    return history


def _epochs(run_dir: Path) -> list[dict]:
    """Per epoch: the 1-minute load average after it and the CPU seconds of the training call."""
    path = run_dir / "epochs.json"
    return json.loads(path.read_text()) if path.exists() else []


def time_to_target(history: list[dict], epochs: list[dict], target: float) -> dict:
    """Wall and CPU seconds (training + evaluation) until the first epoch at or under the target."""
    seconds = cpu = 0.0
    for i, row in enumerate(history):
        seconds += row["seconds"] - (row.get("brian2_build_seconds", 0.0) if i > 0 else 0.0)
        cpu += epochs[i]["cpu_seconds"] if i < len(epochs) else float("nan")
        if row["test_error"] <= target:
            break
    return {"reached": bool(history) and history[i]["test_error"] <= target, "epochs": i + 1,
            "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "test_error": history[i]["test_error"]}


def twin_throughput(data_dir: str | None, samples: int) -> dict:
    """samples/s of torch's ContinuousModel on the Brian2 run's computation (batch 1, float64)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        overrides = ["backend.name=torch", "train.epochs=1", f"data.train_subset={samples}",
                     "data.test_subset=1000", "compute.threads=1"] + ([f"data.dir={data_dir}"] if data_dir else [])
        t0 = time.perf_counter()
        result = neurosim.train("mnist_ct1_ep_brian2", out=Path(tmp) / "twin", overrides=overrides, progress=False)
        return {"samples": samples, "samples_per_second": result.history[0]["samples_per_second"],
                "wall_seconds": round(time.perf_counter() - t0, 1), "load": os.getloadavg()[0]}


def plot(rows: list[dict], histories: dict[str, list[dict]], target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for row in rows:
        history = histories[row["config"]]
        seconds, elapsed = [], 0.0
        for i, r in enumerate(history):
            elapsed += r["seconds"] - (r.get("brian2_build_seconds", 0.0) if i > 0 else 0.0)
            seconds.append(elapsed / 60)
        ax1.plot(seconds, [100 * r["test_error"] for r in history], "o-", label=row["config"])
    ax1.axhline(100 * target, color="gray", ls="--", lw=1)
    ax1.set(xlabel="wall time (min, training + evaluation)", ylabel="test error (%)", yscale="log",
            title="MNIST test error against wall time")
    ax1.legend(fontsize=7)
    ys = list(range(len(rows)))
    ax2.barh([y - 0.2 for y in ys], [r["seconds_to_target"] / 60 for r in rows], height=0.4, label="wall",
             color=["C0" if r["reached"] else "lightgray" for r in rows])
    ax2.barh([y + 0.2 for y in ys], [r["cpu_seconds_to_target"] / 60 for r in rows], height=0.4, label="CPU",
             color=["C1" if r["reached"] else "silver" for r in rows])
    ax2.set_yticks(ys, [r["config"] for r in rows], fontsize=7)
    ax2.set(xlabel=f"minutes to {100 * target:.1f}% test error", title="time to target (gray: not reached)")
    ax2.legend(fontsize=7)
    ax2.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="experiments/results/continuous_vs_discrete")
    parser.add_argument("--target", type=float, default=0.03, help="test error to reach (0.03 = 3%%)")
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--only", nargs="*", help="config names to run (default: all four)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key in every run (e.g. data.train_subset=2000 for a quick check)")
    parser.add_argument("--twin-samples", type=int, default=0,
                        help="also time the torch batch-1 float64 twin of the Brian2 run on N samples")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from neurosim.data import load_splits

    load_splits("mnist", root=args.data_dir)  # parse the files once, outside every run's CPU time
    rows, histories = [], {}
    for label, name in RUNS:
        if args.only and name not in args.only:
            continue
        run_dir = out / name
        history = train_to_target(name, run_dir, args.data_dir, args.target, args.max_epochs, args.overrides)
        histories[name] = history
        epochs = _epochs(run_dir)
        reach = time_to_target(history, epochs, args.target)
        loads = [e["load_1min"] for e in epochs]
        rows.append({"run": label, "config": name, "reached": reach["reached"], "epochs": reach["epochs"],
                     "seconds_to_target": reach["seconds"], "cpu_seconds_to_target": reach["cpu_seconds"],
                     "test_error_at_target": reach["test_error"],
                     "samples_per_second": round(sum(r["samples_per_second"] for r in history) / len(history), 1),
                     "mean_load_1min": round(sum(loads) / len(loads), 2) if loads else None})
    base = next((r for r in rows if r["config"] == "mnist_fc1_ep" and r["reached"]), None)
    for row in rows:
        row["ratio_to_P1h"] = round(row["seconds_to_target"] / base["seconds_to_target"], 2) if base else None
        row["cpu_ratio_to_P1h"] = (round(row["cpu_seconds_to_target"] / base["cpu_seconds_to_target"], 2)
                                   if base else None)
    summary = {"target_test_error": args.target, "max_epochs": args.max_epochs, "overrides": args.overrides,
               "rows": rows,
               "machine": {"cpu_count": os.cpu_count(), "threads_per_run": 1},
               "note": ("runs one after the other, one thread each, on a shared machine (mean_load_1min): "
                        "wall seconds depend on the load; CPU seconds (the process and its children, e.g. "
                        "the Brian2 binary and its compiler) much less")}
    if args.twin_samples:
        summary["torch_twin_of_brian2"] = twin_throughput(args.data_dir, args.twin_samples)
    atomic_write_json(out / "summary.json", summary)
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, histories, args.target, out / "time_to_target.png")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
