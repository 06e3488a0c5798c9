"""Copy a long training run's small outputs into experiments/results/NAME, never replacing a
longer record with a shorter one, and keep its checkpoint there when it is small.

The machines these runs live on are not always kept from one sitting to the next, so a run
folder outside the work tree can be lost with its checkpoint. A small model's checkpoint (the
P-conv network's is 0.25 MB) is therefore published beside its outputs, and
``experiments/long_runs.sh`` continues a lost run from it. When a run had to start again (its
machine was lost before such a checkpoint existed), the published metrics.jsonl of the earlier
attempt stays until the new run has trained as many epochs; the checkpoint is the new run's.

    python experiments/publish_run.py ~/neurosim-runs/mnist_conv_ep_tol [--max-checkpoint-bytes N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
OUTPUTS = ("config.yaml", "metrics.jsonl", "curves.png", "result.json")
CHECKPOINT = "checkpoint.pt"


def epochs_in(metrics: Path) -> int:
    """Epochs recorded in a metrics.jsonl (0 when there is none)."""
    if not metrics.is_file():
        return 0
    return sum(1 for line in metrics.read_text().splitlines() if line.strip())


def checkpoint_epoch(path: Path) -> int:
    """The epoch a checkpoint was saved after (0 when there is none or it does not load)."""
    if not path.is_file():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])
    except Exception:  # a partial copy or another file: treated as absent, so it gets replaced
        return 0


def copy_atomic(source: Path, target: Path) -> None:
    """Copy so that a reader never sees half a file (a checkpoint is what a later sitting resumes from)."""
    partial = target.with_name(target.name + ".partial")
    shutil.copy2(source, partial)
    os.replace(partial, target)


def publish(run_dir: Path, max_checkpoint_bytes: int, results: Path = RESULTS) -> list[str]:
    """Publish ``run_dir`` into ``results/<its name>``; returns what was done, one line each."""
    if not (run_dir / "metrics.jsonl").is_file():
        return [f"{run_dir}: no epoch finished yet, nothing published"]
    out = results / run_dir.name
    out.mkdir(parents=True, exist_ok=True)
    done = []
    ran, kept = epochs_in(run_dir / "metrics.jsonl"), epochs_in(out / "metrics.jsonl")
    if ran >= kept:
        for name in OUTPUTS:
            if (run_dir / name).is_file():
                copy_atomic(run_dir / name, out / name)
        done.append(f"{out}: outputs of {ran} epochs")
    else:
        done.append(f"{out}: keeps the {kept} epochs of an earlier attempt (this run is at {ran})")
    checkpoint = run_dir / CHECKPOINT
    if checkpoint.is_file():
        size = checkpoint.stat().st_size
        epoch, published = checkpoint_epoch(checkpoint), checkpoint_epoch(out / CHECKPOINT)
        if size > max_checkpoint_bytes:
            done.append(f"{checkpoint}: {size / 2**20:.1f} MB, over the {max_checkpoint_bytes / 2**20:.1f} MB kept; not published")
        elif epoch < published:
            done.append(f"{out / CHECKPOINT}: kept (epoch {published}; this run's is epoch {epoch})")
        else:
            copy_atomic(checkpoint, out / CHECKPOINT)
            done.append(f"{out / CHECKPOINT}: epoch {epoch} ({size / 2**20:.2f} MB)")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--max-checkpoint-bytes", type=int, default=2_000_000,
                        help="publish the checkpoint only up to this size (default 2 MB)")
    args = parser.parse_args()
    run_dir = args.run_dir.expanduser()
    if not run_dir.is_dir():
        print(f"{run_dir}: no such run folder, nothing published", file=sys.stderr)
        return
    for line in publish(run_dir, args.max_checkpoint_bytes):
        print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
